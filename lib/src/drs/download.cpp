// Downloads: plan (resolve URIs, expand bundles, name files inside the folder), get access URLs, transfer
// in parallel into NAME.impact-part (resuming with Range), verify size and checksum, rename into place.
// Every file below the folder is reached through a SafeDir: a link planted there is refused, never followed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "fs/safe_dir.hpp"
#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"

namespace impact::drs {
namespace {

namespace fs = std::filesystem;

// One transfer: the whole object into NAME.impact-part, or one segment of a large object into
// NAME.impact-part.K.
struct Piece {
  fs::path file;                     // below the download folder
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

void write_all(int fd, const char* data, std::size_t n, std::uint64_t at, const fs::path& shown) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", shown.string(), std::strerror(errno)), "check the free space of the folder");
    data += w;
    n -= static_cast<std::size_t>(w);
    at += static_cast<std::uint64_t>(w);
  }
}

// The temporary file of one transfer, opened on the first byte (through the SafeDir: never through a
// link), holding bytes [offset, capacity) of its piece: what the server sends beyond `capacity` ends the
// transfer before it is written. A retry of the same request starts over from `offset`.
class PartFile {
 public:
  PartFile(const SafeDir& root, fs::path rel, std::uint64_t offset, std::uint64_t capacity)
      : root_(root), rel_(std::move(rel)), offset_(offset), capacity_(capacity) {}

  void write(std::string_view chunk) {
    if (chunk.size() > capacity_ - offset_ - written_) {
      overflowed_ = true;
      throw Error(ErrorKind::protocol, "the server sent more data than the object's declared size");
    }
    if (!fd_) open();
    write_all(fd_.get(), chunk.data(), chunk.size(), offset_ + written_, root_.path_of(rel_));
    written_ += chunk.size();
  }
  void restart() {
    written_ = 0;
    if (fd_ && ::ftruncate(fd_.get(), static_cast<off_t>(offset_)) != 0) fd_.reset();  // reopened (and cut) on the next byte
  }
  void close() { fd_.reset(); }
  bool overflowed() const noexcept { return overflowed_; }

 private:
  void open() {
    fd_ = root_.open_file(rel_, O_WRONLY | O_CREAT, 0644);
    if (::ftruncate(fd_.get(), static_cast<off_t>(offset_)) != 0)
      throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", root_.path_of(rel_).string(), std::strerror(errno)),
                  "check the free space of the folder");
  }
  const SafeDir& root_;
  fs::path rel_;
  std::uint64_t offset_, capacity_;
  std::uint64_t written_ = 0;
  bool overflowed_ = false;
  Fd fd_;
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

// NAME.impact-part: safe_name() never gives an object a name holding ".impact-part", so a temporary file
// can never be, or replace, another object's file.
fs::path part_of(const fs::path& rel) { return rel.string() + ".impact-part"; }

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

// The pieces of an object: its .impact-part file when there is one or the object is small, else segments
// of `segment` bytes (0 = never split), each resumed from what its file already holds.
std::vector<Piece> pieces_for(const SafeDir& root, const fs::path& rel, std::uint64_t size, std::uint64_t segment) {
  const auto have = [&](const fs::path& f, std::uint64_t want) -> std::uint64_t {
    root.require_file_or_nothing(f);  // a link there fails the object now, before anything is fetched
    const auto st = root.stat(f);
    if (!st) return 0;
    const auto n = static_cast<std::uint64_t>(st->st_size);
    return n > want ? 0 : n;  // a file longer than its range is rewritten
  };
  const fs::path part = part_of(rel);
  if (segment == 0 || size < 2 * segment || root.stat(part)) return {Piece{part, 0, size, have(part, size), false}};
  std::vector<Piece> out;
  for (std::uint64_t b = 0, k = 0; b < size; b += segment, ++k) {
    const std::uint64_t e = std::min(size, b + segment);
    fs::path f = part.string() + "." + std::to_string(k);
    out.push_back(Piece{f, b, e, have(f, e - b), true});
  }
  return out;
}

// Makes `part` the whole object: segments are appended in order and removed; a lone empty piece is created.
void assemble(const SafeDir& root, const std::vector<Piece>& pieces, const fs::path& part) {
  if (pieces.size() == 1 && pieces.front().file == part) {
    (void)root.open_file(part, O_WRONLY | O_CREAT);  // there already, or an empty object
    return;
  }
  {
    Fd out = root.open_file(part, O_WRONLY | O_CREAT | O_TRUNC);
    std::vector<char> buf(1u << 16);
    std::uint64_t at = 0;
    for (const auto& q : pieces) {
      Fd in = root.open_file(q.file, O_RDONLY);
      for (;;) {
        const ssize_t n = ::read(in.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ErrorKind::io, fmt::format("cannot read {}: {}", root.path_of(q.file).string(), std::strerror(errno)));
        if (n == 0) break;
        write_all(out.get(), buf.data(), static_cast<std::size_t>(n), at, root.path_of(part));
        at += static_cast<std::uint64_t>(n);
      }
    }
  }
  for (const auto& q : pieces) root.remove(q.file);
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

// Checks a finished .impact-part against the object and renames it into place; deletes it when it is wrong.
void verify_and_place(const SafeDir& root, const Plan& p, DownloadResult& r) {
  const Object& o = *p.object;
  const fs::path part = part_of(p.rel);
  const auto sum = verifiable_checksum(o.checksums);
  std::uint64_t got = 0;
  std::string have;
  {
    Fd fd = root.open_file(part, O_RDONLY);
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) throw Error(ErrorKind::io, fmt::format("cannot inspect {}", root.path_of(part).string()));
    got = static_cast<std::uint64_t>(st.st_size);
    if (got == o.size && sum) have = file_digest(fd.get(), sum->type);
  }
  if (got != o.size) {
    root.remove(part);
    throw Error(ErrorKind::protocol, fmt::format("{}: received {} bytes, the DRS object says {}", p.uri, got, o.size),
                "the partial file was removed; run the command again");
  }
  if (sum) {
    if (have != sum->checksum) {
      root.remove(part);
      throw Error(ErrorKind::protocol,
                  fmt::format("{}: {} checksum mismatch (got {}, the DRS object says {})", p.uri, sum->type, have, sum->checksum),
                  "the corrupt download was removed (nothing else was touched); run the command again, and tell the "
                  "data provider if it persists");
    }
    r.checksum_type = sum->type;
  }
  root.rename(part, p.rel);  // a link at the final name is replaced, never followed
}

bool already_present(const SafeDir& root, const Object& o, const fs::path& rel, DownloadResult& r) {
  const auto st = root.stat(rel);
  if (!st || !S_ISREG(st->st_mode) || static_cast<std::uint64_t>(st->st_size) != o.size) return false;
  auto sum = verifiable_checksum(o.checksums);
  if (!sum) return false;
  Fd fd = root.open_file(rel, O_RDONLY);
  if (file_digest(fd.get(), sum->type) != sum->checksum) return false;
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
std::pair<std::uint64_t, std::uint64_t> prepare(Client& c, const SafeDir& root, std::vector<Plan>& plans,
                                                std::vector<DownloadResult>& results, const DownloadOptions& opt) {
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
      root.require_file_or_nothing(p.rel);  // a link at the name, or at a folder on the way: refused
      if (already_present(root, o, p.rel, r)) {
        r.status = DownloadResult::Status::present;
        return;
      }
      if (!verifiable_checksum(o.checksums) && !opt.allow_unverified) {
        std::vector<std::string> types;
        for (const auto& k : o.checksums) types.push_back(k.type);
        r.no_checksum = true;
        throw Error(ErrorKind::protocol,
                    fmt::format("{}: the DRS object has no checksum impact can verify (offered: {}); not downloaded, so "
                                "that no unverified file gets its name",
                                p.uri, types.empty() ? std::string("none") : fmt::format("{}", fmt::join(types, ", "))),
                    "ask the data provider to publish a sha-256 or md5 checksum");
      }
      if (p.rel.has_parent_path()) (void)root.dir(p.rel.parent_path(), true);
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
    capture(p, [&] { p.pieces = pieces_for(root, p.rel, p.object->size, opt.segment_bytes); });
    if (p.error) {
      p.transfer = false;
      total -= p.object->size;
      continue;
    }
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
void transfer(Client& c, const SafeDir& root, std::vector<Plan>& plans, std::vector<DownloadResult>& results,
              const DownloadOptions& opt, Progress* progress, std::uint64_t done_before) {
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
        auto file = std::make_unique<PartFile>(root, q.file, q.have, q.end - q.start);
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
        const bool ranged = p.pieces[j].segment || p.pieces[j].have > 0;
        if (files[k]->overflowed()) {
          // More than asked for: a server that ignored the Range sends the whole object (start over from
          // byte 0, in one piece); one that keeps sending past the declared size fails the object.
          if (ranged) {
            restart.insert(i);
            return;
          }
          root.remove(p.pieces[j].file);
          throw Error(ErrorKind::protocol,
                      fmt::format("{}: the server sent more than the {} bytes the DRS object declares", p.uri, p.object->size),
                      "nothing beyond the declared size was written and the partial file was removed; tell the data "
                      "provider if it persists");
        }
        if (out.error) std::rethrow_exception(out.error);
        const long st = out.response->status;
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
        for (const auto& q : p.pieces) root.remove(q.file);
        p.pieces = {Piece{part_of(p.rel), 0, p.object->size, 0, false}};
        r.resumed_from = 0;
        p.transfer = true;
      }
      if (p.transfer) continue;
      capture(p, [&] {
        assemble(root, p.pieces, part_of(p.rel));
        verify_and_place(root, p, r);
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
  // The folder the user named, held open: every name below it is reached without following a link.
  const SafeDir root = SafeDir::open(opt.dir, true);
  const auto [total, done_before] = prepare(c, root, plans, results, opt);
  if (progress) progress->on_total(plans.size(), total);
  transfer(c, root, plans, results, opt, progress, done_before);
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
