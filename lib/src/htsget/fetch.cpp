// htsget: the blocks of a ticket fetched in parallel and written in order, in bounded memory.
//
// Every block becomes one or more parts: a data: block is a part already done; a byte range longer than
// FetchOptions::part_size is split into sub-ranges (htsget.md allows it); any other block is one request with
// exactly its ticket's headers. Parts are requested in order through an http::Batch feed that holds back
// while the bytes fetched ahead of the output would pass the window, and each finished part is checked
// (status, Content-Range, length), asked again when short, and written once every part before it is.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <random>
#include <fmt/format.h>

#include "fs/safe_dir.hpp"
#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/redact.hpp"
#include "internal.hpp"
#include "text.hpp"
#include "transfer/hash.hpp"

namespace impact::htsget {

namespace {

struct Part {
  std::size_t block = 0;
  bool last_of_block = true;
  const std::string* data = nullptr;      // inline bytes (a data: block)
  const Block* source = nullptr;
  std::optional<transfer::Range> range;   // what the request asks: the block's range or a sub-range of it
  bool own_range = false;                 // `range` replaces the ticket's Range header value
  std::uint64_t expected = 0;             // bytes of `range` (0: unknown)
  std::string buffer;
  bool done = false;
  int attempts = 0;
};

// "bytes FIRST-LAST/TOTAL" (TOTAL may be "*").
struct ContentRange {
  std::uint64_t first = 0, last = 0;
  std::optional<std::uint64_t> total;
};
std::optional<ContentRange> parse_content_range(std::string_view v) {
  v = text::trim(v);
  if (v.size() < 6 || !text::iequals(v.substr(0, 6), "bytes ")) return std::nullopt;
  v.remove_prefix(6);
  const auto dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) return std::nullopt;
  auto a = parse_byte_offset(v.substr(0, dash)), b = parse_byte_offset(v.substr(dash + 1, slash - dash - 1));
  if (!a || !b || *b < *a) return std::nullopt;
  ContentRange cr{*a, *b, std::nullopt};
  if (v.substr(slash + 1) != "*") {
    cr.total = parse_byte_offset(v.substr(slash + 1));
    if (!cr.total) return std::nullopt;
  }
  return cr;
}

// At most this many parts in one fetch: a ticket cannot make impact plan without bound (a range of 10^18
// bytes would be 10^11 parts before the first request).
constexpr std::uint64_t kMaxParts = 1u << 20;

std::vector<Part> plan(const std::vector<Block>& blocks, const FetchOptions& o) {
  std::vector<Part> parts;
  const std::uint64_t size = std::max<std::uint64_t>(o.part_size, 64u << 10);
  std::uint64_t count = 0;
  for (const Block& blk : blocks) {
    count += blk.range ? (blk.range->second - blk.range->first) / size + 1 : 1;
    if (count > kMaxParts)
      throw Error(ErrorKind::protocol,
                  fmt::format("the htsget ticket's byte ranges add up to more than {} parts of {} bytes", kMaxParts, size));
  }
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const Block& blk = blocks[b];
    Part p;
    p.block = b;
    p.source = &blk;
    if (blk.data) {
      p.data = &*blk.data;
      p.done = true;
      parts.push_back(std::move(p));
      continue;
    }
    if (!blk.range) {
      parts.push_back(std::move(p));
      continue;
    }
    const auto [first, last] = *blk.range;
    for (std::uint64_t at = first; at <= last; at += size) {
      Part q = p;
      const std::uint64_t end = std::min(last, at + size - 1);
      q.range = transfer::Range{at, end};
      q.own_range = !(at == first && end == last);
      q.expected = end - at + 1;
      q.last_of_block = end == last;
      parts.push_back(std::move(q));
      if (end == last) break;
    }
  }
  return parts;
}

class Assembler {
 public:
  Assembler(const std::vector<Block>& blocks, const FetchOptions& o, const std::function<void(std::string_view)>& sink,
            transfer::Observer* observer, const std::string& md5)
      : blocks_(blocks), o_(o), sink_(sink), observer_(observer), parts_(plan(blocks, o)),
        hasher_(md5.empty() ? std::vector<std::string>{} : std::vector<std::string>{"md5"}), md5_(md5) {}

  FetchSummary run(const http::Options& http) {
    if (observer_) {
      std::uint64_t known = 0;
      for (const auto& p : parts_) known += p.data ? p.data->size() : p.expected;
      observer_->on_plan(blocks_.size(), known);
    }
    flush();
    if (next_write_ < parts_.size()) {
      http::Batch batch(http, std::max<std::size_t>(1, o_.parallel));
      http::Batch::Feed feed;
      feed.lookahead = std::max<std::size_t>(1, o_.parallel);
      feed.next = [this] { return next(); };
      feed.hold = [this] { return hold(); };
      feed.done = [this](std::size_t i, http::Outcome out) { done(i, std::move(out)); };
      batch.run(std::move(feed));
    }
    throw_if_cancelled();
    if (next_write_ < parts_.size())
      throw Error(ErrorKind::generic, fmt::format("htsget: {} of {} parts were not fetched", parts_.size() - next_write_, parts_.size()));
    if (!md5_.empty()) {
      auto d = hasher_.final();
      summary_.md5 = transfer::hex(d["md5"]);
      if (!transfer::digest_matches(d["md5"], md5_))
        throw Error(ErrorKind::protocol, fmt::format("the assembled data has MD5 {}, the htsget ticket says {}", summary_.md5,
                                                     redact(md5_)));
    }
    return summary_;
  }

 private:
  bool can_issue(std::size_t p) const {
    const Part& part = parts_[p];
    if (p == next_write_) return true;
    if (!part.range) return false;  // a block of unknown size waits until it is the next to write
    return ahead_ + part.expected <= o_.window;
  }
  void skip_data() {
    while (next_issue_ < parts_.size() && parts_[next_issue_].data) ++next_issue_;
  }

  bool hold() {
    if (!retries_.empty()) return false;
    skip_data();
    if (next_issue_ == parts_.size()) return in_flight_ > 0;  // a part in flight may need asking again
    return !can_issue(next_issue_);
  }

  std::optional<http::Request> next() {
    if (!retries_.empty()) {
      const std::size_t p = retries_.front();
      retries_.pop_front();
      return request(p);
    }
    skip_data();
    if (next_issue_ == parts_.size()) return std::nullopt;
    const std::size_t p = next_issue_++;
    ahead_ += parts_[p].expected;
    return request(p);
  }

  http::Request request(std::size_t p) {
    Part& part = parts_[p];
    ++part.attempts;
    ++summary_.requests;
    ++in_flight_;
    part.buffer.clear();
    by_request_.push_back(p);
    http::Request rq;
    rq.url = part.source->url;
    rq.server_url = true;
    rq.listed_headers = true;
    for (const auto& h : part.source->headers) {
      if (part.own_range && text::iequals(h.name, "range"))
        rq.headers.push_back({h.name, fmt::format("bytes={}-{}", part.range->first, part.range->second)});
      else
        rq.headers.push_back(h);
    }
    const std::uint64_t cap = part.expected ? part.expected : o_.max_unranged;
    const std::size_t block = part.block, blocks = blocks_.size();
    std::string* buffer = &part.buffer;
    rq.sink = [buffer, cap, block, blocks](std::string_view chunk) {
      if (buffer->size() + chunk.size() > cap)
        throw Error(ErrorKind::protocol,
                    fmt::format("block {} of {}: the server sent more than the {} bytes asked for", block + 1, blocks, cap));
      buffer->append(chunk);
    };
    rq.on_retry = [buffer] { buffer->clear(); };
    return rq;
  }

  [[noreturn]] void fail(const Part& part, const Error& e) {
    Error out(e.kind(), fmt::format("block {} of {}: {}", part.block + 1, blocks_.size(), e.what()), e.hint());
    if (e.http_status()) out.with_status(*e.http_status());
    if (!e.url().empty()) out.with_url(e.url());
    out.with_remedy(e.remedy());
    for (const auto& [k, v] : e.facts()) out.with_fact(k, v);
    throw out;
  }

  // Why the body of a finished request is not the part asked for ("" when it is).
  std::string short_reason(const Part& part, const http::Response& r) const {
    const std::uint64_t got = part.buffer.size();
    if (!part.range) {
      if (auto cl = r.header("Content-Length"); cl && std::to_string(got) != text::trim(*cl))
        return fmt::format("{} of {} bytes", got, text::trim(*cl));
      return {};
    }
    const auto [first, last] = *part.range;
    if (r.status == 206) {
      if (auto h = r.header("Content-Range")) {
        auto cr = parse_content_range(*h);
        if (!cr || cr->first != first || cr->last > last)
          throw Error(ErrorKind::protocol, fmt::format("the server answered bytes {} for bytes {}-{}", redact(*h), first, last));
        if (got != cr->last - cr->first + 1) return fmt::format("{} of {} bytes", got, cr->last - cr->first + 1);
        if (cr->last < last && (!cr->total || cr->last + 1 < *cr->total))
          return fmt::format("bytes {}-{} of {}-{}", cr->first, cr->last, first, last);
        return {};
      }
      if (got != part.expected) return fmt::format("{} of {} bytes", got, part.expected);
      return {};
    }
    // 200: the whole object. Usable only when the range starts at 0 (the sink refused anything longer).
    if (first != 0)
      throw Error(ErrorKind::protocol, fmt::format("the server ignored the byte range {}-{} and sent the whole object", first, last));
    return {};
  }

  void done(std::size_t i, http::Outcome out) {
    const std::size_t p = by_request_.at(i);
    Part& part = parts_[p];
    --in_flight_;
    try {
      if (out.error) std::rethrow_exception(out.error);
      const http::Response& r = *out.response;
      if (!r.ok()) http::throw_for_status(r, "fetching the data");
      const std::string why = short_reason(part, r);
      if (!why.empty()) {
        if (part.attempts < std::max(1, o_.max_attempts)) {
          retries_.push_back(p);
          return;
        }
        throw Error(ErrorKind::protocol, fmt::format("the server sent {} (asked {} times)", why, part.attempts),
                    "the data server cuts its answers short; try again later");
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      fail(part, e);
    }
    part.done = true;
    flush();
  }

  void flush() {
    while (next_write_ < parts_.size() && parts_[next_write_].done) {
      Part& part = parts_[next_write_];
      const std::string_view bytes = part.data ? std::string_view(*part.data) : std::string_view(part.buffer);
      if (!bytes.empty()) {
        sink_(bytes);
        if (!hasher_.empty()) hasher_.update(bytes);
        summary_.bytes += bytes.size();
        if (observer_) observer_->on_bytes(bytes.size());
      }
      if (!part.data) ahead_ -= part.expected;
      if (part.last_of_block) {
        ++summary_.blocks;
        if (observer_) {
          transfer::Result res;
          res.id = std::to_string(part.block + 1);
          observer_->on_item(res);
        }
      }
      std::string().swap(part.buffer);
      ++next_write_;
    }
  }

  const std::vector<Block>& blocks_;
  const FetchOptions& o_;
  const std::function<void(std::string_view)>& sink_;
  transfer::Observer* observer_;
  std::vector<Part> parts_;
  transfer::Hasher hasher_;
  std::string md5_;
  std::size_t next_write_ = 0, next_issue_ = 0, in_flight_ = 0;
  std::uint64_t ahead_ = 0;  // bytes asked for (ranged parts) and not yet written
  std::deque<std::size_t> retries_;
  std::vector<std::size_t> by_request_;  // batch request index -> part
  FetchSummary summary_;
};

}  // namespace

FetchSummary fetch(const std::vector<Block>& blocks, const http::Options& http, const FetchOptions& options,
                   const std::function<void(std::string_view)>& sink, transfer::Observer* observer, const std::string& md5) {
  Assembler a(blocks, options, sink, observer, md5);
  return a.run(http);
}

// ---- AtomicFile -----------------------------------------------------------------------------------------

namespace {
std::mt19937_64& random_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}
}  // namespace

struct AtomicFile::Impl {
  SafeDir dir;
  std::filesystem::path name, temp, shown;
  Fd fd;
  bool committed = false;
};

AtomicFile::AtomicFile(const std::filesystem::path& path) {
  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const std::filesystem::path name = path.filename();
  if (name.empty() || name == "." || name == "..")
    throw Error(ErrorKind::usage, fmt::format("{} is not a file name", path.string()));
  SafeDir dir = SafeDir::open(parent, /*create=*/false);
  dir.require_file_or_nothing(name);
  // A name of this run's own (created, never reused): two runs writing the same output never share a temporary.
  const std::filesystem::path temp =
      fmt::format(".{}.{:016x}.impact-part", name.string(), std::uniform_int_distribution<std::uint64_t>()(random_engine()));
  Fd fd = dir.open_file(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
  impl_ = std::make_unique<Impl>(Impl{std::move(dir), name, temp, path, std::move(fd), false});
}

AtomicFile::~AtomicFile() {
  if (impl_ && !impl_->committed) {
    impl_->fd.reset();
    impl_->dir.remove(impl_->temp);
  }
}

void AtomicFile::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(impl_->fd.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", impl_->shown.string(), std::strerror(errno)));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AtomicFile::commit() {
  if (::fsync(impl_->fd.get()) != 0)
    throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", impl_->shown.string(), std::strerror(errno)));
  impl_->fd.reset();
  impl_->dir.rename(impl_->temp, impl_->name);
  impl_->committed = true;
}

}  // namespace impact::htsget
