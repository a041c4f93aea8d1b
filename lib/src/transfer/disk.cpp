// The download engine's files: the temporary file a job fills in place, its resume state, the check of a
// finished file and its move into place.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "transfer/job.hpp"

namespace impact::transfer {
namespace fs = std::filesystem;

namespace {

constexpr const char* kVersionXattr = "user.impact.etag";  // the name S3 downloads have always used
constexpr std::size_t kWriteBuffer = 256u << 10;  // received data is written to disk in pieces of this size
// The checksums in the order they are checked and named in Result::verified.
constexpr std::array<std::string_view, 6> kOrder = {"md5", "sha1", "sha256", "sha512", "crc32", "crc32c"};

void write_at(int fd, std::string_view data, std::uint64_t off) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(ErrorKind::io, std::string("cannot write the download: ") + std::strerror(errno), "check free disk space");
    data.remove_prefix(static_cast<std::size_t>(n));
    off += static_cast<std::uint64_t>(n);
  }
}

// Tells the trailing hash how far the contiguous prefix on disk reaches (at most every MiB).
void publish_progress(Job& j) {
  if (!j.trail) return;
  while (j.first_open < j.parts.size() && j.parts[j.first_open].on_disk() == j.parts[j.first_open].length()) ++j.first_open;
  const std::uint64_t ready =
      j.first_open == j.parts.size() ? j.size : j.parts[j.first_open].first + j.parts[j.first_open].on_disk();
  if (ready >= j.published + kMiB || ready == j.size) {
    j.trail->advance(ready);
    j.published = ready;
  }
}

// Writes what a part has received but not yet written, at its offset.
void flush(Job& j, Part& p) {
  if (p.pending.empty()) return;
  write_at(j.fd, p.pending, p.first + p.on_disk());
  p.pending.clear();
  publish_progress(j);
}

// A download in ranged parts checks the free space first: a full disk fails now, not after minutes of transfer.
// (fallocate would also reserve it, but on tmpfs it zeroes every page first: 0.13 s per GiB measured.)
void check_space(const Job& j) {
  std::uint64_t missing = 0;
  for (const auto& p : j.parts) missing += p.done ? 0 : p.length();
  if (!j.grid()) return;  // one request: a full disk fails it as the disk fills (ENOSPC)
  struct statvfs vfs{};
  const auto avail = [&] { return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize; };
  if (::fstatvfs(j.fd, &vfs) == 0 && avail() < missing)
    throw Error(ErrorKind::io,
                fmt::format("not enough free space for {}: {} bytes to write, {} free", j.root->path_of(j.rel).string(), missing, avail()),
                "free some space or download to another folder");
}

// The checksums to check: the source's, then what responses declared (for an algorithm the source did not
// name), each under its canonical name; unknown algorithms are left out.
std::vector<std::pair<std::string, std::string>> expected(const Job& j) {
  std::map<std::string, std::string> all;
  for (const auto* sums : {&j.src.checksums, &j.declared})
    for (const auto& [algo, value] : *sums)
      if (const auto c = canonical_algorithm(algo); !c.empty()) all.emplace(c, value);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto algo : kOrder)
    if (auto it = all.find(std::string(algo)); it != all.end()) out.emplace_back(it->first, it->second);
  return out;
}

// The digests computed while the file filled (waiting for the trailing hash to catch up).
Digests computed(Job& j) {
  if (j.inline_hash) return j.inline_hash->final();
  if (!j.trail) return {};
  j.trail->advance(j.size);
  return j.trail->result();
}

// Checks size and checksums of the finished temporary file; returns what was checked ("size,md5").
std::string verify(Job& j) {
  struct stat st{};
  if (::fstat(j.fd, &st) != 0) throw Error(ErrorKind::io, "cannot inspect " + j.root->path_of(j.temp).string());
  const auto have = static_cast<std::uint64_t>(st.st_size);
  if (j.size_known && have != j.size)
    throw Error(ErrorKind::protocol, fmt::format("size mismatch: {} bytes on disk, the source says {}", have, j.size));
  j.size = have;
  std::vector<std::string> checks;
  if (j.size_known) checks.push_back("size");
  Digests got = computed(j);
  for (const auto& [algo, value] : expected(j)) {
    if (value.empty()) {
      checks.push_back(algo + "(composite: not checked)");
      continue;
    }
    if (!got.count(algo)) {
      Hasher h({algo});
      hash_file(j.fd, have, h);
      got[algo] = h.final()[algo];
    }
    if (!digest_matches(got[algo], value))
      throw Error(ErrorKind::protocol, fmt::format("{} checksum mismatch (got {}, expected {})", algo, encode_like(got[algo], value), value),
                  "the data was corrupted in transit; run the command again");
    checks.push_back(algo);
  }
  return fmt::format("{}", fmt::join(checks, ","));
}

// Moves a verified file into place; on any mismatch nothing is left at the final name.
void place(Job& j) {
  try {
    if (!std::all_of(j.parts.begin(), j.parts.end(), [](const Part& p) { return p.done; }))
      throw Error(ErrorKind::protocol, "incomplete download");
    j.result.verified = verify(j);
    if (!j.src.version.empty())  // best effort; moves with the file
      ::fsetxattr(j.fd, kVersionXattr, j.src.version.data(), j.src.version.size(), 0);
    close_fd(j);
    j.root->rename(j.temp, j.rel);  // a link at the final name is replaced, never followed
    j.root->remove(j.state);
    j.result.size = j.size;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    j.result.verified.clear();
    fail(j, e);
    close_fd(j);
    if (j.own_temp) j.root->remove(j.temp);
    if (j.own_temp) j.root->remove(j.state);
  }
}

}  // namespace

void fail(Job& j, std::string message, std::string hint, ErrorKind kind) {
  if (j.failed()) return;  // keep the first reason
  j.result.status = Result::Status::failed;
  j.result.error = std::move(message);
  j.result.hint = std::move(hint);
  j.result.error_kind = kind;
}
void fail(Job& j, const Error& e) { fail(j, e.what(), e.hint(), e.kind()); }

void close_fd(Job& j) {
  j.trail.reset();  // stops its thread before the descriptor goes
  if (j.fd >= 0) ::close(j.fd);
  j.fd = -1;
}

void open_temp(Job& j) {
  if (j.fd >= 0) return;
  // The folders on the way and the file itself are opened without following links (a link planted there
  // is an error naming it); ftruncate works on the descriptor, never on a path.
  if (j.rel.has_parent_path()) (void)j.root->dir(j.rel.parent_path(), true);
  const bool keep = j.result.resumed;
  try {
    j.fd = j.root->open_file(j.temp, O_RDWR | O_CREAT | (keep ? 0 : O_TRUNC), 0644).release();
  } catch (const Error& e) {
    // A file that cannot be made is named as the file asked for, not the ".impact-part" file impact writes
    // it through; a link or odd file planted at that name is named as it is (the user must look at it).
    std::string msg = e.what();
    if (msg.rfind("cannot create ", 0) != 0) throw;
    const std::string temp = j.temp.string(), rel = j.rel.string();
    for (auto at = msg.find(temp); at != std::string::npos; at = msg.find(temp, at + rel.size())) msg.replace(at, temp.size(), rel);
    throw Error(e.kind(), msg, e.hint());
  }
  j.own_temp = true;
  try {
    if (j.grid() && ::ftruncate(j.fd, static_cast<off_t>(j.size)) != 0)
      throw Error(ErrorKind::io, fmt::format("cannot size {}: {}", j.root->path_of(j.temp).string(), std::strerror(errno)));
    check_space(j);
    if (j.grid() && keep) save_state(j);  // the parts kept from a file without a state are recorded at once
  } catch (const Error&) {
    // The file was just made (and sized, sparse) for nothing: it goes, unless it holds an earlier run's parts.
    if (!keep) {
      close_fd(j);
      j.root->remove(j.temp);
      j.own_temp = false;
    }
    throw;
  }
  if (j.algos.empty()) return;
  if (!j.resumable()) j.inline_hash = std::make_unique<Hasher>(j.algos);
  else j.trail = std::make_unique<TrailingHash>(j.fd, j.size, j.algos);
  publish_progress(j);
}

void write_part(Job& j, Part& p, std::string_view chunk) {
  if (p.received + chunk.size() > p.length()) {
    j.overflowed = true;
    j.discard = true;  // a server that ignores Range would do it again: the next run starts over
    throw Error(ErrorKind::protocol, "the server sent more data than the object's size");
  }
  if (j.inline_hash) j.inline_hash->update(chunk);
  if (p.pending.size() + chunk.size() > kWriteBuffer) flush(j, p);
  if (p.pending.empty()) p.pending.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(kWriteBuffer, p.length())));
  p.pending.append(chunk);
  p.received += chunk.size();
  j.fetched += chunk.size();
  if (p.received == p.length()) {
    flush(j, p);
    std::string().swap(p.pending);  // the part is complete: free its buffer
    if (j.resumable()) p.done = true;  // every byte of the part is on disk: record it for a resumed run
    if (j.grid()) save_state(j);
  }
}

void end_part(Job& j, Part& p) { flush(j, p); }

void save_state(const Job& j) {
  nlohmann::json done = nlohmann::json::array();
  for (std::size_t i = 0; i < j.parts.size(); ++i)
    if (j.parts[i].done) done.push_back(i);
  // Temp + rename, without fsync: it guards against a killed process (the page cache survives), and the
  // data file it describes is not synced either.
  const std::string text =
      nlohmann::json{{"etag", j.src.version}, {"size", j.size}, {"part_size", j.part_size}, {"done", done}}.dump();
  fs::path tmp = j.state;
  tmp += ".tmp";
  {
    Fd fd = j.root->open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", j.root->path_of(j.state).string(), std::strerror(errno)),
                  "check free disk space");
  }
  j.root->rename(tmp, j.state);
}

void finish(Job& j, Observer* observer) {
  if (!j.failed()) {
    place(j);
  } else {
    close_fd(j);
    // A job in ranged parts keeps its finished parts (and their state) for the next run, unless they cannot be
    // resumed; any other partial file goes (with no state to check it against, it might never complete).
    if (j.own_temp && (!j.grid() || j.discard)) j.root->remove(j.temp);
    if (j.own_temp && j.discard) j.root->remove(j.state);
  }
  if (observer) observer->on_item(j.result);
}

// Transfers in flight at once: each holds a connection and a file, so both must fit under the open-files
// limit (often 1024 on login nodes), beside a margin for everything else.
std::size_t fitting_parallel(std::size_t parallel) {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return parallel;
  const auto limit = static_cast<std::size_t>(rl.rlim_cur);
  return std::clamp<std::size_t>(limit > 64 ? (limit - 64) / 2 : 1, 1, std::max<std::size_t>(parallel, 1));
}

// Reads a small file below `root` (at most `max` bytes), never through a link.
std::string read_small(const SafeDir& root, const fs::path& rel, std::size_t max) {
  Fd fd = root.open_file(rel, O_RDONLY);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || out.size() + static_cast<std::size_t>(n) > max) throw Error(ErrorKind::io, "cannot read " + rel.string());
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace impact::transfer
