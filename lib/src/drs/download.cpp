// Downloads: plan (resolve URIs, expand bundles, name files inside the folder), get access URLs, transfer
// in parallel into NAME.part (resuming with Range), verify size and checksum, rename into place.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"

namespace impact::drs {
namespace {

namespace fs = std::filesystem;

// One transfer: the whole object into NAME.part, or one segment of a large object into NAME.part.K.
struct Piece {
  fs::path file;
  std::uint64_t start = 0, end = 0;  // the object's bytes [start, end)
  std::uint64_t have = 0;            // already in `file` (from an earlier, interrupted run)
  bool segment = false;              // always sent with its Range
};

struct Plan {
  std::string uri;
  Location where;
  std::optional<Object> object;
  fs::path rel;  // below the download folder, built only from safe_name() components
  std::exception_ptr error;
  AccessUrl access;
  std::string access_id;  // set when `access` came from the access endpoint (it can be asked again)
  bool refreshed = false;
  std::vector<Piece> pieces;
  bool transfer = false;
};


template <class... A>
std::exception_ptr failure(ErrorKind k, fmt::format_string<A...> f, A&&... a) {
  return std::make_exception_ptr(Error(k, fmt::format(f, std::forward<A>(a)...)));
}

// The .part file of one transfer, opened on the first byte. A retry of the same request starts over from
// the offset the request's Range asked for.
class PartFile {
 public:
  PartFile(fs::path path, std::uint64_t offset) : path_(std::move(path)), offset_(offset) {}
  ~PartFile() { close(); }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  void write(std::string_view chunk) {
    if (!f_) open();
    if (std::fwrite(chunk.data(), 1, chunk.size(), f_) != chunk.size())
      throw Error(ErrorKind::io, fmt::format("cannot write {}", path_.string()), "check the free space of the folder");
  }
  void restart() {
    close();
    std::error_code ec;
    if (fs::exists(path_, ec)) fs::resize_file(path_, offset_, ec);
  }
  void close() {
    if (f_) std::fclose(f_);
    f_ = nullptr;
  }
  void ensure_exists() {
    if (!f_ && !fs::exists(path_)) open();
    close();
  }

 private:
  void open() {
    std::error_code ec;
    if (offset_ > 0) fs::resize_file(path_, offset_, ec);
    f_ = std::fopen(path_.c_str(), offset_ > 0 && !ec ? "r+b" : "wb");
    if (!f_) throw Error(ErrorKind::io, fmt::format("cannot create {}", path_.string()), "check the folder's permissions");
    if (offset_ > 0 && std::fseek(f_, static_cast<long>(offset_), SEEK_SET) != 0)
      throw Error(ErrorKind::io, fmt::format("cannot seek in {}", path_.string()));
  }
  fs::path path_;
  std::uint64_t offset_;
  std::FILE* f_ = nullptr;
};

// Forwards exchanges to the caller's observer and turns per-transfer byte counts into one running total.
class Bridge final : public http::Observer {
 public:
  Bridge(http::Observer* inner, Progress* progress, std::size_t n, std::uint64_t base)
      : inner_(inner), progress_(progress), now_(n, 0), base_(base) {}
  void on_exchange(const http::Exchange& ex) override {
    if (inner_) inner_->on_exchange(ex);
  }
  void on_progress(std::size_t index, std::uint64_t now, std::uint64_t total) override {
    if (inner_) inner_->on_progress(index, now, total);
    if (!progress_ || index >= now_.size()) return;
    sum_ += now - now_[index];
    now_[index] = now;
    progress_->on_bytes(base_ + sum_);
  }
  void next_round(std::size_t transfers) {  // transfer indices start again from 0
    base_ += sum_;
    sum_ = 0;
    now_.assign(transfers, 0);
  }

 private:
  http::Observer* inner_;
  Progress* progress_;
  std::vector<std::uint64_t> now_;
  std::uint64_t base_;
  std::uint64_t sum_ = 0;
};

fs::path part_of(const fs::path& p) { return p.string() + ".part"; }

// Runs `f`, recording an Error or a filesystem failure as the plan's error (Ctrl-C still ends everything).
template <class F>
void capture(Plan& p, F f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    p.error = std::current_exception();
  } catch (const fs::filesystem_error& e) {
    p.error = failure(ErrorKind::io, "{}: {}", p.uri, e.what());
  }
}

// Sorted usable access methods: available ones, https before http before anything else.
std::vector<const AccessMethod*> usable_methods(const Object& o) {
  std::vector<const AccessMethod*> out;
  for (const auto& m : o.access_methods)
    if (m.available && (m.access_url || !m.access_id.empty()) && (m.type == "https" || m.type == "http")) out.push_back(&m);
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->type == "https" && b->type != "https"; });
  return out;
}

// The pieces of an object: its .part file when there is one or the object is small, else segments of
// `segment` bytes (0 = never split), each resumed from what its file already holds.
std::vector<Piece> pieces_for(const fs::path& final_path, std::uint64_t size, std::uint64_t segment) {
  std::error_code ec;
  const auto have = [&](const fs::path& f, std::uint64_t want) {
    const std::uint64_t n = fs::is_regular_file(f, ec) ? fs::file_size(f, ec) : 0;
    return ec || n > want ? 0 : n;  // a file longer than its range is rewritten
  };
  const fs::path part = part_of(final_path);
  if (segment == 0 || size < 2 * segment || fs::exists(part, ec)) return {Piece{part, 0, size, have(part, size), false}};
  std::vector<Piece> out;
  for (std::uint64_t b = 0, k = 0; b < size; b += segment, ++k) {
    const std::uint64_t e = std::min(size, b + segment);
    fs::path f = part.string() + "." + std::to_string(k);
    out.push_back(Piece{f, b, e, have(f, e - b), true});
  }
  return out;
}

// Makes `part` the whole object: segments are appended in order and removed; a lone empty piece is created.
void assemble(const std::vector<Piece>& pieces, const fs::path& part) {
  if (pieces.size() == 1 && pieces.front().file == part) {
    if (!fs::exists(part)) std::ofstream(part, std::ios::binary);
    return;
  }
  {
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    for (const auto& q : pieces) {
      std::ifstream in(q.file, std::ios::binary);
      out << in.rdbuf();
    }
    if (!out) throw Error(ErrorKind::io, fmt::format("cannot write {}", part.string()), "check the free space of the folder");
  }
  for (const auto& q : pieces) fs::remove(q.file);
}

// A request for an access URL with the headers it lists (and nothing else: no token ever goes there).
http::Request access_request(const AccessUrl& a) {
  http::Request req;
  req.url = a.url;
  req.server_url = true;
  for (const auto& h : a.headers)
    if (auto colon = h.find(':'); colon != std::string::npos && colon > 0) {
      std::string_view v = std::string_view(h).substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      req.headers.push_back({h.substr(0, colon), std::string(v)});
    }
  return req;
}

// Checks a finished .part against the object and renames it into place; deletes it when it is wrong.
void verify_and_place(const Plan& p, const fs::path& final_path, DownloadResult& r) {
  const Object& o = *p.object;
  const fs::path part = part_of(final_path);
  const std::uint64_t got = fs::file_size(part);
  if (got != o.size) {
    fs::remove(part);
    throw Error(ErrorKind::protocol, fmt::format("{}: received {} bytes, the DRS object says {}", p.uri, got, o.size),
                "the partial file was removed; run the command again");
  }
  if (auto sum = verifiable_checksum(o.checksums)) {
    const std::string have = file_digest(part, sum->type);
    if (have != sum->checksum) {
      fs::remove(part);
      throw Error(ErrorKind::protocol,
                  fmt::format("{}: {} checksum mismatch (got {}, the DRS object says {})", p.uri, sum->type, have, sum->checksum),
                  "the corrupt download was removed (nothing else was touched); run the command again, and tell the "
                  "data provider if it persists");
    }
    r.checksum_type = sum->type;
  }
  fs::rename(part, final_path);
}

bool already_present(const Object& o, const fs::path& path, DownloadResult& r) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != o.size || ec) return false;
  auto sum = verifiable_checksum(o.checksums);
  if (!sum || file_digest(path, sum->type) != sum->checksum) return false;
  r.checksum_type = sum->type;
  return true;
}

void expand_bundle(Client& c, const std::vector<ContentsObject>& items, const fs::path& rel, const Location& parent,
                   int depth, std::vector<Plan>& plans) {
  for (const auto& item : items) {
    Plan p;
    p.rel = rel / safe_name(item.name, item.id);
    try {
      if (depth > 16) throw Error(ErrorKind::protocol, "bundle nested too deeply");
      if (!item.drs_uri.empty()) {
        p.uri = item.drs_uri.front();
        p.where = c.locate(parse_uri(p.uri));
      } else {
        if (item.id.empty()) throw Error(ErrorKind::protocol, "a bundle member has neither id nor drs_uri");
        p.where = parent;
        p.where.id = item.id;
        p.uri = item.id;
        p.where.uri = item.id;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      p.error = std::current_exception();
    }
    if (!item.contents.empty() && !p.error) {
      expand_bundle(c, item.contents, p.rel, p.where, depth + 1, plans);
      continue;
    }
    plans.push_back(std::move(p));
  }
}

std::vector<Plan> plan(Client& c, const std::vector<std::string>& uris) {
  std::vector<Plan> top(uris.size());
  std::vector<Location> locs;
  std::vector<std::size_t> located;
  for (std::size_t i = 0; i < uris.size(); ++i) {
    top[i].uri = uris[i];
    try {
      top[i].where = c.locate(parse_uri(uris[i]));
      locs.push_back(top[i].where);
      located.push_back(i);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      top[i].error = std::current_exception();
    }
  }
  auto fetched = c.objects(locs, true);
  std::vector<Plan> plans;
  for (std::size_t k = 0; k < fetched.size(); ++k) {
    Plan& p = top[located[k]];
    p.error = fetched[k].error;
    p.object = std::move(fetched[k].object);
  }
  for (auto& p : top) {
    if (p.object) p.rel = safe_name(p.object->name, p.object->id);
    if (p.object && p.object->bundle) expand_bundle(c, p.object->contents, p.rel, p.where, 0, plans);
    else plans.push_back(std::move(p));
  }
  // Bundle members are fetched now, all at once (bulk where the server offers it).
  std::vector<Location> more;
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (!plans[i].object && !plans[i].error) {
      more.push_back(plans[i].where);
      idx.push_back(i);
    }
  auto members = c.objects(more, false);
  for (std::size_t k = 0; k < members.size(); ++k) {
    Plan& p = plans[idx[k]];
    p.error = members[k].error;
    p.object = std::move(members[k].object);
    if (p.object && p.object->bundle)
      p.error = failure(ErrorKind::protocol, "{}: a bundle inside a bundle was not expanded by the server", p.uri);
  }
  return plans;
}

// Names each file, keeps files already present, picks an access method, gets access URLs (bulk where
// offered) and finds what earlier runs left in .part files. Returns the bytes still to transfer and those
// already on disk.
std::pair<std::uint64_t, std::uint64_t> prepare(Client& c, std::vector<Plan>& plans, std::vector<DownloadResult>& results,
                                                const DownloadOptions& opt) {
  std::set<fs::path> taken;
  std::vector<Client::AccessRequest> access;
  std::vector<std::size_t> access_idx;
  std::uint64_t total = 0, done_before = 0;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    Plan& p = plans[i];
    DownloadResult& r = results[i];
    r.uri = p.uri;
    if (!p.object) continue;
    const Object& o = *p.object;
    r.id = o.id;
    r.size = o.size;
    r.path = opt.dir / p.rel;
    capture(p, [&] {
      if (!taken.insert(r.path).second)
        throw Error(ErrorKind::usage, fmt::format("{}: another object of this download is also named {}", p.uri, p.rel.string()),
                    "download them into separate folders (-o DIR)");
      fs::create_directories(r.path.parent_path());
      if (already_present(o, r.path, r)) {
        r.status = DownloadResult::Status::present;
        return;
      }
      const auto methods = usable_methods(o);
      if (methods.empty()) {
        std::vector<std::string> types;
        for (const auto& m : o.access_methods) types.push_back(m.type + (m.available ? "" : " (unavailable)"));
        throw Error(ErrorKind::protocol,
                    fmt::format("{}: no access method impact can use (offered: {})", p.uri,
                                types.empty() ? std::string("none") : fmt::format("{}", fmt::join(types, ", "))));
      }
      if (methods.front()->access_url) {
        p.access = *methods.front()->access_url;
      } else {
        p.access_id = methods.front()->access_id;
        access.push_back({p.where, p.access_id});
        access_idx.push_back(i);
      }
      p.transfer = true;
      total += o.size;
    });
  }
  auto urls = c.access_urls(access);
  for (std::size_t k = 0; k < urls.size(); ++k) {
    Plan& p = plans[access_idx[k]];
    if (urls[k].url) p.access = *urls[k].url;
    else {
      p.error = urls[k].error;
      p.transfer = false;
      total -= p.object->size;
    }
  }
  for (std::size_t i = 0; i < plans.size(); ++i) {
    Plan& p = plans[i];
    if (!p.transfer) continue;
    p.pieces = pieces_for(results[i].path, p.object->size, opt.segment_bytes);
    for (const auto& q : p.pieces) results[i].resumed_from += q.have;
    done_before += results[i].resumed_from;
  }
  return {total, done_before};
}

// New access URLs for the plans in `which` (their signed URL was refused, probably expired).
void refresh_access(Client& c, std::vector<Plan>& plans, const std::set<std::size_t>& which) {
  std::vector<Client::AccessRequest> reqs;
  for (auto i : which) reqs.push_back({plans[i].where, plans[i].access_id});
  auto urls = c.access_urls(reqs);
  std::size_t k = 0;
  for (auto i : which) {
    Plan& p = plans[i];
    p.refreshed = true;
    if (urls[k].url) p.access = *urls[k].url;
    else p.error = urls[k].error;
    ++k;
  }
}

// Transfers every piece, at most opt.parallel at once, then joins, verifies and renames each object.
void transfer(Client& c, std::vector<Plan>& plans, std::vector<DownloadResult>& results, const DownloadOptions& opt,
              Progress* progress, std::uint64_t done_before) {
  http::Options hopt = c.settings().http;
  Bridge bridge(hopt.observer, progress, 0, done_before);
  hopt.observer = &bridge;
  // Later rounds retry what the first could not finish: objects whose server ignored or refused a Range
  // (from byte 0, in one piece) and signed URLs refused with 401/403 (expired: asked for again, once).
  for (int round = 0; round < 3; ++round) {
    std::vector<std::pair<std::size_t, std::size_t>> owner;  // request -> (plan, piece)
    std::vector<std::unique_ptr<PartFile>> files;
    std::vector<http::Request> reqs;
    std::vector<std::size_t> active;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      Plan& p = plans[i];
      if (!p.transfer) continue;
      p.transfer = false;
      active.push_back(i);
      for (std::size_t j = 0; j < p.pieces.size(); ++j) {
        const Piece& q = p.pieces[j];
        if (q.have == q.end - q.start) continue;
        auto file = std::make_unique<PartFile>(q.file, q.have);
        http::Request req = access_request(p.access);
        if (q.segment) req.headers.push_back({"Range", fmt::format("bytes={}-{}", q.start + q.have, q.end - 1)});
        else if (q.have > 0) req.headers.push_back({"Range", fmt::format("bytes={}-", q.have)});  // as curl -C
        PartFile* f = file.get();
        req.sink = [f](std::string_view chunk) { f->write(chunk); };
        req.on_retry = [f] { f->restart(); };
        req.max_body = 64u << 10;
        files.push_back(std::move(file));
        reqs.push_back(std::move(req));
        owner.emplace_back(i, j);
      }
    }
    if (active.empty()) break;
    bridge.next_round(reqs.size());
    http::Batch batch(hopt, opt.parallel);
    auto outcomes = reqs.empty() ? std::vector<http::Outcome>{} : batch.run(std::move(reqs));
    std::set<std::size_t> restart, refresh;
    for (std::size_t k = 0; k < owner.size(); ++k) {
      const std::size_t i = owner[k].first, j = owner[k].second;
      Plan& p = plans[i];
      files[k]->close();
      const auto& out = outcomes[k];
      if (p.error) continue;
      capture(p, [&] {
        if (out.error) std::rethrow_exception(out.error);
        const long st = out.response->status;
        const bool ranged = p.pieces[j].segment || p.pieces[j].have > 0;
        if ((st == 200 || st == 416) && ranged) {  // the server ignored or refused our Range: start over
          restart.insert(i);
          return;
        }
        if ((st == 401 || st == 403) && !p.access_id.empty() && !p.refreshed) {
          refresh.insert(i);
          return;
        }
        if (!out.response->ok()) http::throw_for_status(*out.response, fmt::format("downloading {}", p.uri));
        p.pieces[j].have = p.pieces[j].end - p.pieces[j].start;
      });
    }
    refresh_access(c, plans, refresh);
    for (auto i : active) {
      Plan& p = plans[i];
      DownloadResult& r = results[i];
      if (p.error) continue;
      p.transfer = refresh.count(i) > 0;
      if (restart.count(i)) {
        std::error_code rm;
        for (const auto& q : p.pieces) fs::remove(q.file, rm);
        p.pieces = {Piece{part_of(r.path), 0, p.object->size, 0, false}};
        r.resumed_from = 0;
        p.transfer = true;
      }
      if (p.transfer) continue;
      capture(p, [&] {
        assemble(p.pieces, part_of(r.path));
        verify_and_place(p, r.path, r);
        r.status = DownloadResult::Status::downloaded;
      });
    }
  }
  for (auto& p : plans)
    if (p.transfer && !p.error)
      p.error = failure(ErrorKind::protocol, "{}: the server kept refusing or ignoring ranged requests", p.uri);
}

}  // namespace

std::vector<DownloadResult> download(Client& c, const std::vector<std::string>& uris, const DownloadOptions& opt,
                                     Progress* progress) {
  std::vector<std::string> unique;  // the same URI twice is one download
  for (const auto& u : uris)
    if (std::find(unique.begin(), unique.end(), u) == unique.end()) unique.push_back(u);
  std::vector<Plan> plans = plan(c, unique);
  std::vector<DownloadResult> results(plans.size());
  std::error_code ec;
  fs::create_directories(opt.dir, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", opt.dir.string(), ec.message()));
  const auto [total, done_before] = prepare(c, plans, results, opt);
  if (progress) progress->on_total(plans.size(), total);
  transfer(c, plans, results, opt, progress, done_before);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].error) {
      results[i].error = plans[i].error;
      results[i].status = DownloadResult::Status::failed;
    }
    if (progress) progress->on_file_done(results[i]);
  }
  return results;
}

}  // namespace impact::drs
