// Archive files as sources of the transfer engine (impact/transfer.hpp). Each file's header is fetched once,
// re-encrypted by the archive for the user's key (v2: GET files/{id}/header with X-C4GH-Public-Key; v1: the
// first bytes of /s3/{dataset}/{path} with Client-Public-Key). The engine then asks for plaintext ranges; each
// becomes the range of whole encrypted segments that holds it (v2: files/{id}/content with If-Range; v1: past
// the header in the /s3 stream), decrypted on the fly, so the file fills with plaintext at its own offsets and
// the listing's plaintext checksum is verified before the rename. With keep_encrypted the file is the header
// and the segments as served.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/archive.hpp"
#include "impact/error.hpp"
#include "impact/url.hpp"

namespace impact::archive {
namespace {

namespace c4 = crypt4gh;
constexpr std::uint64_t kSeg = c4::segment_size;
constexpr std::uint64_t kSealed = c4::cipher_segment_size;

// The encrypted size of `plain` bytes in segments.
std::uint64_t sealed_size(std::uint64_t plain) { return plain + (plain + kSeg - 1) / kSeg * c4::segment_overhead; }

class Decrypting final : public transfer::Filter {
 public:
  Decrypting(std::shared_ptr<const c4::Header> h, std::uint64_t seg, std::uint64_t skip, std::uint64_t length)
      : h_(std::move(h)), seg_(seg), skip_(skip), left_(length) {}
  void update(std::string_view in, std::string& out) override {
    while (!in.empty()) {
      if (buf_.empty() && in.size() >= kSealed) {
        take(in.substr(0, kSealed), out);
        in.remove_prefix(kSealed);
        continue;
      }
      const std::size_t n = std::min<std::size_t>(kSealed - buf_.size(), in.size());
      buf_.append(in.substr(0, n));
      in.remove_prefix(n);
      if (buf_.size() == kSealed) {
        take(buf_, out);
        buf_.clear();
      }
    }
  }
  void finish(std::string& out) override {
    if (!buf_.empty()) take(buf_, out);  // the short last segment (a truncated one fails its MAC)
    buf_.clear();
  }

 private:
  void take(std::string_view sealed, std::string& out) {
    if (left_ == 0) return;  // past the range: the engine reports a server that sends too much
    plain_.clear();
    c4::decrypt_segment(*h_, seg_++, sealed, plain_);
    std::string_view p = plain_;
    const auto drop = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, p.size()));
    p.remove_prefix(drop);
    skip_ -= drop;
    if (p.size() > left_) p = p.substr(0, static_cast<std::size_t>(left_));
    out.append(p);
    left_ -= p.size();
  }
  std::shared_ptr<const c4::Header> h_;
  std::uint64_t seg_, skip_, left_;
  std::string buf_, plain_;
};

// The header bytes first (from `first` on), then the body as served, `length` bytes in all.
class Passing final : public transfer::Filter {
 public:
  Passing(std::string prefix, std::uint64_t body) : prefix_(std::move(prefix)), left_(body) {}
  void update(std::string_view in, std::string& out) override {
    flush(out);
    if (in.size() > left_) in = in.substr(0, static_cast<std::size_t>(left_));
    out.append(in);
    left_ -= in.size();
  }
  void finish(std::string& out) override { flush(out); }

 private:
  void flush(std::string& out) {
    out.append(prefix_);
    prefix_.clear();
  }
  std::string prefix_;
  std::uint64_t left_;
};

// One file of the download: what the engine needs to ask for its ranges.
struct Item {
  File file;
  std::string dataset;
  Api api = Api::v2;
  std::string key_b64;  // the user's public key, raw 32 bytes in base64
  const c4::KeyPair* key = nullptr;
  std::shared_ptr<const c4::Header> header;
  std::string header_bytes;
  std::string etag;       // of the content (v2), for If-Range
  std::uint64_t body = 0; // encrypted body bytes
};

std::string s3_path(const Item& it) { return "s3/" + percent_encode(it.dataset) + "/" + percent_encode(it.file.path, true); }

[[noreturn]] void refuse_edit_list(std::string_view what) {
  throw Error(ErrorKind::protocol, fmt::format("{}: the header has an edit list, which impact does not apply to ranged downloads", what),
              "keep the file encrypted and decrypt it whole");
}

// The header re-encrypted for the user's key, fetched once.
void fetch_header(Client& c, Item& it) {
  if (it.header) return;
  const std::string what = fmt::format("fetching the header of {}/{}", it.dataset, it.file.path);
  if (it.api == Api::v2) {
    std::string bytes;
    std::size_t need = 0;
    auto req = c.request("files/" + percent_encode(it.file.id) + "/header");
    req.headers.push_back({"X-C4GH-Public-Key", it.key_b64});
    auto r = c.http().send(std::move(req));
    if (!r.ok()) http::throw_for_status(r, what);
    if (auto e = r.header("SDA-Content-ETag")) it.etag = std::string(*e);
    bytes = std::move(r.body);
    auto h = c4::parse_header(bytes, *it.key, &need);
    if (!h) throw Error(ErrorKind::protocol, fmt::format("{}: the archive sent a truncated Crypt4GH header", what));
    if (h->edit_list) refuse_edit_list(what);
    bytes.resize(static_cast<std::size_t>(h->length));
    it.header_bytes = std::move(bytes);
    it.header = std::make_shared<const c4::Header>(std::move(*h));
  } else {
    auto parsed = read_stream_header(
        [&](std::size_t want) {
          auto req = c.request(s3_path(it));
          req.headers.push_back({"Client-Public-Key", it.key_b64});
          req.headers.push_back({"Range", fmt::format("bytes=0-{}", want - 1)});
          auto r = c.http().send(std::move(req));
          if (!r.ok()) http::throw_for_status(r, what);
          return std::move(r.body);
        },
        *it.key, what, &it.header_bytes);
    if (!parsed) throw Error(ErrorKind::protocol, fmt::format("{}: the archive did not send a Crypt4GH file", what));
    it.header = std::move(parsed);
  }
}

// The request for encrypted body bytes [a, b] (nullopt: all of them).
http::Request body_request(Client& c, const Item& it, std::optional<transfer::Range> r) {
  if (it.api == Api::v2) {
    auto req = c.request("files/" + percent_encode(it.file.id) + "/content");
    if (r) {
      req.headers.push_back({"Range", fmt::format("bytes={}-{}", r->first, r->second)});
      if (!it.etag.empty()) req.headers.push_back({"If-Range", it.etag});
    }
    return req;
  }
  auto req = c.request(s3_path(it));
  req.headers.push_back({"Client-Public-Key", it.key_b64});
  const std::uint64_t h = it.header_bytes.size();
  if (r) req.headers.push_back({"Range", fmt::format("bytes={}-{}", h + r->first, h + r->second)});
  else req.headers.push_back({"Range", fmt::format("bytes={}-", h)});
  return req;
}

transfer::Source decrypted_source(Client& c, std::shared_ptr<Item> it) {
  transfer::Source s;
  s.id = it->dataset + "/" + it->file.path;
  s.path = it->file.path;
  s.size = it->file.decrypted_size;
  for (const auto& sum : it->file.checksums) s.checksums[sum.type] = sum.value;
  s.version = "sda:" + it->file.id + ":" + std::to_string(it->file.decrypted_size);
  s.request = [&c, it](std::optional<transfer::Range> r) {
    fetch_header(c, *it);
    if (!r) return body_request(c, *it, std::nullopt);
    return body_request(c, *it, segments_range(*r, it->body));
  };
  s.filter = [it](std::optional<transfer::Range> r) -> std::unique_ptr<transfer::Filter> {
    const std::uint64_t first = r ? r->first : 0;
    const std::uint64_t length = r ? r->second - r->first + 1 : it->file.decrypted_size;
    return decrypting_filter(it->header, first / kSeg, first % kSeg, length);
  };
  s.renew = [&c] { return c.renew_token(); };
  return s;
}

transfer::Source encrypted_source(Client& c, std::shared_ptr<Item> it) {
  fetch_header(c, *it);
  const std::uint64_t h = it->header_bytes.size();
  transfer::Source s;
  s.id = it->dataset + "/" + it->file.path;
  s.path = it->file.path;
  s.size = h + it->body;
  s.version = "sda-c4gh:" + it->file.id + ":" + std::to_string(h + it->body);
  s.request = [&c, it, h](std::optional<transfer::Range> r) {
    if (!r) return body_request(c, *it, std::nullopt);
    if (r->second < h) return body_request(c, *it, transfer::Range(0, 0));  // only header bytes: one byte, dropped
    return body_request(c, *it, transfer::Range(std::max(r->first, h) - h, r->second - h));
  };
  s.filter = [it, h](std::optional<transfer::Range> r) -> std::unique_ptr<transfer::Filter> {
    const std::uint64_t first = r ? r->first : 0, last = r ? r->second : h + it->body - 1;
    std::string prefix = first < h ? it->header_bytes.substr(first, std::min(last + 1, h) - first) : std::string();
    const std::uint64_t body = last >= h ? last - std::max(first, h) + 1 : 0;
    return std::make_unique<Passing>(std::move(prefix), body);
  };
  s.renew = [&c] { return c.renew_token(); };
  return s;
}

std::string normal_checksum_type(std::string t) {
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return t;
}

}  // namespace

std::shared_ptr<const crypt4gh::Header> read_stream_header(const std::function<std::string(std::size_t)>& read_prefix,
                                                           const crypt4gh::KeyPair& reader, std::string_view what,
                                                           std::string* bytes) {
  std::size_t want = 65536;
  for (int round = 0; round < 8; ++round) {
    std::string got = read_prefix(want);
    if (got.size() < 8 || got.compare(0, 8, "crypt4gh") != 0) return nullptr;
    std::size_t need = 0;
    auto h = c4::parse_header(got, reader, &need);
    if (h) {
      if (h->edit_list) refuse_edit_list(what);
      if (bytes) *bytes = got.substr(0, static_cast<std::size_t>(h->length));
      return std::make_shared<const c4::Header>(std::move(*h));
    }
    if (got.size() < want || need > c4::max_header_bytes)
      throw Error(ErrorKind::protocol, fmt::format("{}: the Crypt4GH header is truncated", what));
    want = std::max(need, want * 2);
  }
  throw Error(ErrorKind::protocol, fmt::format("{}: the Crypt4GH header did not end", what));
}

std::optional<std::uint64_t> plaintext_size(std::uint64_t body) {
  const std::uint64_t segments = (body + kSealed - 1) / kSealed;
  if (body % kSealed != 0 && body % kSealed <= c4::segment_overhead) return std::nullopt;
  return body - segments * c4::segment_overhead;
}

transfer::Range segments_range(transfer::Range plain, std::uint64_t body) {
  const std::uint64_t first = plain.first / kSeg, last = plain.second / kSeg;
  return {first * kSealed, std::min((last + 1) * kSealed, body) - 1};
}

std::unique_ptr<transfer::Filter> decrypting_filter(std::shared_ptr<const crypt4gh::Header> header,
                                                    std::uint64_t first_segment, std::uint64_t skip, std::uint64_t length) {
  return std::make_unique<Decrypting>(std::move(header), first_segment, skip, length);
}

void to_json(nlohmann::json& j, const DownloadResult& r) {
  transfer::to_json(j, static_cast<const transfer::Result&>(r));
  j["fileId"] = r.file_id;
}

std::vector<DownloadResult> download(Client& c, const std::string& dataset, const std::vector<File>& files,
                                     const crypt4gh::KeyPair& key, const DownloadOptions& options,
                                     transfer::Observer* observer) {
  const Api api = c.api();
  std::vector<DownloadResult> results(files.size());
  std::vector<transfer::Source> sources;
  std::vector<std::size_t> index;
  std::vector<std::shared_ptr<Item>> items;  // kept alive while the engine runs
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto it = std::make_shared<Item>();
    it->file = files[i];
    for (auto& sum : it->file.checksums) sum.type = normal_checksum_type(sum.type);
    it->dataset = dataset;
    it->api = api;
    it->key = &key;
    it->key_b64 = c4::base64_public_key(key.public_key);
    it->body = sealed_size(it->file.decrypted_size);
    results[i].id = dataset + "/" + files[i].path;
    results[i].path = files[i].path;
    results[i].file_id = files[i].id;
    try {
      // v2 lists the archived body's size: a listing that does not add up is refused before any byte is written
      if (api == Api::v2 && it->file.size != 0 && it->file.size != it->body)
        throw Error(ErrorKind::protocol, fmt::format("{}: the archive lists {} encrypted bytes for {} plaintext bytes (expected {})",
                                                     results[i].id, it->file.size, it->file.decrypted_size, it->body));
      if (!options.keep_encrypted && it->file.checksums.empty())
        throw Error(ErrorKind::protocol, fmt::format("{}: the archive lists no checksum for it; not downloaded, so that no unverified file gets its name", results[i].id));
      sources.push_back(options.keep_encrypted ? encrypted_source(c, it) : decrypted_source(c, it));
      index.push_back(i);
      items.push_back(std::move(it));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      results[i].status = transfer::Result::Status::failed;
      results[i].error = e.what();
      results[i].hint = e.hint();
      results[i].error_kind = e.kind();
      if (observer) observer->on_item(results[i]);
    }
  }
  transfer::Options t;
  t.dest = options.dest;
  t.parallel = options.parallel;
  t.part_size = options.part_size;
  auto done = transfer::download(std::move(sources), c.http().options(), t, observer);
  for (std::size_t k = 0; k < index.size(); ++k) {
    DownloadResult& r = results[index[k]];
    static_cast<transfer::Result&>(r) = std::move(done.results[k]);
  }
  return results;
}

}  // namespace impact::archive
