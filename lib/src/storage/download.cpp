// Parallel, resumable, verified download of S3 objects into a folder.
//
// Each object is written to "<file>.impact-part" and renamed into place as soon as it is verified. Large
// objects are fetched as ranged parts written in place (pwrite at their offsets); each finished part is
// recorded in "<file>.impact-state" so an interrupted run (Ctrl-C, kill -9, network loss) restarts with the
// parts still missing, after checking that the object's size and ETag are unchanged.
#include <fcntl.h>
#include <fnmatch.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "fs/safe_dir.hpp"
#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/storage.hpp"
#include "json_fields.hpp"

namespace impact::storage {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPartSuffix = ".impact-part";
constexpr std::string_view kStateSuffix = ".impact-state";
constexpr const char* kEtagXattr = "user.impact.etag";
constexpr std::uint64_t kMiB = 1u << 20;
// Ranged parts of one object in flight at once. The trailing MD5 hashes only the contiguous prefix on disk,
// so the bytes in flight beyond it are what is left to hash after the last byte arrives (8 x 8 MiB: ~0.1 s),
// and fewer streams cost the storage less CPU: for 1 GiB on loopback, 32 parts in flight took 3.6 s, 8 took 3.3.
constexpr std::size_t kPartsInFlight = 8;
// Socket reads per transfer: 8 times libcurl's default cuts the system calls of a large download by as much;
// with the write buffer below, 64 transfers in flight hold at most 24 MiB (small objects need far less).
constexpr std::uint64_t kReceiveBuffer = 128u << 10;
constexpr std::size_t kWriteBuffer = 256u << 10;  // received data is written to disk in pieces of this size
// Data read back for hashing, a piece at a time: small enough to stay in the core's cache between the copy
// out of the page cache and the hash (1 GiB: 5% less CPU than with 1 MiB pieces).
constexpr std::size_t kHashBuffer = 64u << 10;

bool is_md5_etag(std::string_view etag) {
  return etag.size() == 32 && etag.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string base64(const unsigned char* p, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

// A streaming digest (MD5, SHA-1, SHA-256) over OpenSSL's EVP interface.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()), md_(md) { reset(); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void reset() {
    if (!ctx_ || !EVP_DigestInit_ex(ctx_, md_, nullptr)) throw Error(ErrorKind::generic, "OpenSSL digest setup failed");
  }
  void update(std::string_view d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::vector<unsigned char> final() {
    std::vector<unsigned char> out(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out.data(), &len);
    out.resize(len);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  const EVP_MD* md_;
};

// CRC-32 (IEEE) and CRC-32C (Castagnoli), reflected, as S3's x-amz-checksum-crc32 / -crc32c.
class Crc {
 public:
  explicit Crc(std::uint32_t poly) {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
      table_[i] = c;
    }
  }
  void update(std::string_view d) {
    for (unsigned char b : d) crc_ = table_[(crc_ ^ b) & 0xff] ^ (crc_ >> 8);
  }
  std::vector<unsigned char> final() const {
    const std::uint32_t v = ~crc_;
    return {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 8),
            static_cast<unsigned char>(v)};
  }

 private:
  std::array<std::uint32_t, 256> table_{};
  std::uint32_t crc_ = 0xffffffffu;
};

// Reads [0, size) of `fd` through `update`.
template <class F>
void read_back(int fd, std::uint64_t size, F&& update) {
  std::vector<char> buf(kHashBuffer);
  for (std::uint64_t off = 0; off < size;) {
    throw_if_cancelled();
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
    if (n <= 0) throw Error(ErrorKind::io, std::string("cannot read back the downloaded data: ") + std::strerror(errno));
    update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    off += static_cast<std::uint64_t>(n);
  }
}

std::string md5_of(int fd, std::uint64_t size) {
  Digest d(EVP_md5());
  read_back(fd, size, [&](std::string_view c) { d.update(c); });
  auto v = d.final();
  return hex(v.data(), v.size());
}

// The base64 checksum S3 would send in x-amz-checksum-<algo>, or "" for an algorithm we do not know.
std::string checksum_of(std::string_view algo, int fd, std::uint64_t size) {
  if (algo == "crc32" || algo == "crc32c") {
    Crc c(algo == "crc32" ? 0xEDB88320u : 0x82F63B78u);
    read_back(fd, size, [&](std::string_view d) { c.update(d); });
    auto v = c.final();
    return base64(v.data(), v.size());
  }
  const EVP_MD* md = algo == "sha256" ? EVP_sha256() : algo == "sha1" ? EVP_sha1() : nullptr;
  if (!md) return {};
  Digest d(md);
  read_back(fd, size, [&](std::string_view c) { d.update(c); });
  auto v = d.final();
  return base64(v.data(), v.size());
}

// The MD5 of a file being written in ranged parts, computed on a second thread that follows the contiguous
// prefix already on disk: hashing overlaps the download instead of coming after it.
class TrailingMd5 {
 public:
  TrailingMd5(int fd, std::uint64_t size, std::uint64_t ready)
      : fd_(fd), size_(size), ready_(ready), thread_([this] { run(); }) {}
  ~TrailingMd5() { stop(); }
  TrailingMd5(const TrailingMd5&) = delete;
  TrailingMd5& operator=(const TrailingMd5&) = delete;

  // Bytes [0, ready) are on disk (called from the transfer thread; never goes backwards).
  void advance(std::uint64_t ready) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (ready <= ready_) return;
      ready_ = ready;
    }
    cv_.notify_one();
  }
  // Waits for the whole file to be hashed (advance(size) must have been called).
  std::string result() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
    return digest_;
  }
  void stop() {
    stop_ = true;
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    try {
      Digest d(EVP_md5());
      std::vector<char> buf(kHashBuffer);
      std::uint64_t done = 0;
      while (done < size_ && !stop_) {
        std::uint64_t ready = 0;
        {
          std::unique_lock<std::mutex> lock(m_);
          cv_.wait(lock, [&] { return stop_ || ready_ > done; });
          ready = ready_;
        }
        while (done < ready && !stop_) {
          const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), ready - done));
          const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(done));
          if (n <= 0) throw Error(ErrorKind::io, std::string("cannot read back the download: ") + std::strerror(errno));
          d.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
          done += static_cast<std::uint64_t>(n);
        }
      }
      auto v = d.final();
      digest_ = hex(v.data(), v.size());
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  int fd_;
  std::uint64_t size_;
  std::uint64_t ready_;
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::string digest_;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once everything above is set up
};

struct Part {
  std::uint64_t first = 0, last = 0;  // inclusive
  std::uint64_t received = 0;         // bytes received, the last pending.size() of them not yet written
  std::string pending;                // libcurl hands over 16 KiB at a time: collected for fewer, larger writes
  bool done = false;
  std::uint64_t length() const { return last - first + 1; }
  std::uint64_t on_disk() const { return received - pending.size(); }
};

struct Job {
  std::size_t id = 0;  // 1, 2, ...: the http::Request::group of its ranged parts
  ObjectInfo obj;
  const SafeDir* root = nullptr;  // the destination: every file below is reached through it (no links)
  fs::path rel, temp, state;      // below the destination: the file, "<file>.impact-part", "<file>.impact-state"
  fs::path final_path;            // the destination / rel, for messages
  std::uint64_t part_size = 0;  // 0 = one plain GET
  std::vector<Part> parts;
  int fd = -1;
  bool own_temp = false;        // the .impact-part was opened by this run (only then is it removed)
  std::size_t pending = 0;      // parts not yet processed in this run
  std::unique_ptr<Digest> md5;  // inline MD5 for single-request objects
  std::unique_ptr<TrailingMd5> trail;  // MD5 of a ranged object with a single-part ETag
  std::size_t first_open = 0;   // the first part not completely received
  std::uint64_t published = 0;  // what `trail` was last told is on disk
  std::uint64_t fetched = 0;    // bytes received in this run
  http::Headers checksums;      // x-amz-checksum-* a response sent (see collect_checksums)
  std::string etag_seen;
  FileResult result;
  bool ranged() const { return part_size != 0; }
};

void close_fd(Job& j) {
  j.trail.reset();  // stops its thread before the descriptor goes
  if (j.fd >= 0) ::close(j.fd);
  j.fd = -1;
}

void fail(Job& j, std::string message, std::string hint = {}, ErrorKind kind = ErrorKind::protocol) {
  if (j.result.status == FileResult::Status::failed) return;  // keep the first reason
  j.result.status = FileResult::Status::failed;
  j.result.error = std::move(message);
  j.result.hint = std::move(hint);
  j.result.error_kind = kind;
}
void fail(Job& j, const Error& e) { fail(j, e.what(), e.hint(), e.kind()); }

void save_state(const Job& j) {
  nlohmann::json done = nlohmann::json::array();
  for (std::size_t i = 0; i < j.parts.size(); ++i)
    if (j.parts[i].done) done.push_back(i);
  // Temp + rename, without fsync: it guards against a killed process (the page cache survives), and the
  // data file it describes is not synced either.
  const std::string text = nlohmann::json{{"etag", j.obj.etag}, {"size", j.obj.size}, {"part_size", j.part_size},
                                          {"done", done}}.dump();
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

// Tells the trailing hash how far the contiguous prefix on disk reaches (at most every MiB).
void publish_progress(Job& j) {
  if (!j.trail) return;
  while (j.first_open < j.parts.size() && j.parts[j.first_open].on_disk() == j.parts[j.first_open].length()) ++j.first_open;
  const std::uint64_t ready = j.first_open == j.parts.size()
                                  ? j.obj.size
                                  : j.parts[j.first_open].first + j.parts[j.first_open].on_disk();
  if (ready >= j.published + kMiB || ready == j.obj.size) {
    j.trail->advance(ready);
    j.published = ready;
  }
}

std::string xattr_etag(int fd) {
  char buf[256];
  const ssize_t n = ::fgetxattr(fd, kEtagXattr, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Whether the file `rel` below `root` already holds this object: same size, and the ETag recorded at
// download time or (for single-part uploads) the same MD5. A link there is never followed (stat says no).
bool identical(const SafeDir& root, const fs::path& rel, const ObjectInfo& o) {
  const auto st = root.stat(rel);
  if (!st || !S_ISREG(st->st_mode) || static_cast<std::uint64_t>(st->st_size) != o.size) return false;
  try {
    Fd fd = root.open_file(rel, O_RDONLY);
    if (!o.etag.empty() && xattr_etag(fd.get()) == o.etag) return true;
    return is_md5_etag(o.etag) && md5_of(fd.get(), o.size) == o.etag;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    return false;
  }
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

bool matches(const std::vector<std::string>& globs, const std::string& rel) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) { return ::fnmatch(g.c_str(), rel.c_str(), 0) == 0; });
}

// Transfers in flight at once: each holds a connection and a file, so both must fit under the open-files
// limit (often 1024 on login nodes), beside a margin for everything else.
std::size_t fitting_parallel(std::size_t parallel) {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return parallel;
  const auto limit = static_cast<std::size_t>(rl.rlim_cur);
  return std::clamp<std::size_t>(limit > 64 ? (limit - 64) / 2 : 1, 1, std::max<std::size_t>(parallel, 1));
}

std::uint64_t choose_part_size(std::uint64_t size, const DownloadOptions& o) {
  if (o.part_size) return size > o.part_size ? o.part_size : 0;
  if (size <= 16 * kMiB) return 0;
  // Small parts finish roughly in order, so the trailing MD5 keeps up and an interrupted run loses little;
  // at most ~1000 parts per object.
  const std::uint64_t part = std::max<std::uint64_t>(8 * kMiB, (size + 999) / 1000);
  return (part + kMiB - 1) / kMiB * kMiB;
}

// Sets up the parts of a ranged job, reusing a previous run's finished parts when the object is unchanged.
void plan_parts(Job& j, std::uint64_t part_size) {
  j.part_size = part_size;
  std::set<std::size_t> done;
  try {
    auto s = impact::detail::parse_json(read_small(*j.root, j.state, 4u << 20));
    const auto st = j.root->stat(j.temp);
    if (s.at("etag") == j.obj.etag && s.at("size") == j.obj.size && st && S_ISREG(st->st_mode) &&
        static_cast<std::uint64_t>(st->st_size) == j.obj.size) {
      j.part_size = s.at("part_size");
      for (const auto& i : s.at("done")) done.insert(i.get<std::size_t>());
    }
  } catch (...) {
    done.clear();  // no state, or a state for another version of the object: start over
  }
  if (j.part_size == 0) j.part_size = part_size;
  for (std::uint64_t off = 0; off < j.obj.size; off += j.part_size) {
    Part p;
    p.first = off;
    p.last = std::min(j.obj.size, off + j.part_size) - 1;
    p.done = done.count(j.parts.size()) != 0;
    if (p.done) p.received = p.length();
    j.parts.push_back(p);
  }
  j.result.resumed = !done.empty();
}

void open_temp(Job& j) {
  if (j.fd >= 0) return;
  // The folders on the way and the file itself are opened without following links (a link planted there
  // is an error naming it); ftruncate works on the descriptor, never on a path.
  if (j.rel.has_parent_path()) (void)j.root->dir(j.rel.parent_path(), true);
  const bool keep = j.ranged() && j.result.resumed;
  j.fd = j.root->open_file(j.temp, O_RDWR | O_CREAT | (keep ? 0 : O_TRUNC), 0644).release();
  j.own_temp = true;
  try {
    if (j.ranged() && ::ftruncate(j.fd, static_cast<off_t>(j.obj.size)) != 0)
      throw Error(ErrorKind::io, fmt::format("cannot size {}: {}", j.root->path_of(j.temp).string(), std::strerror(errno)));
    // A large download checks the free space first: a full disk fails now, not after minutes of transfer.
    // (fallocate would also reserve it, but on tmpfs it zeroes every page first: 0.13 s per GiB measured.)
    if (j.ranged()) {
      std::uint64_t missing = 0;
      for (const auto& p : j.parts) missing += p.done ? 0 : p.length();
      struct statvfs vfs{};
      if (::fstatvfs(j.fd, &vfs) == 0 && static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize < missing)
        throw Error(ErrorKind::io,
                    fmt::format("not enough free space for {}: {} bytes to write, {} free", j.final_path.string(), missing,
                                static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize),
                    "free some space or download to another folder");
    }
  } catch (const Error&) {
    // The file was just made (and sized, sparse) for nothing: it goes, unless it holds an earlier run's parts.
    if (!keep) {
      close_fd(j);
      j.root->remove(j.temp);
      j.own_temp = false;
    }
    throw;
  }
  if (j.ranged() && is_md5_etag(j.obj.etag)) {
    j.trail = std::make_unique<TrailingMd5>(j.fd, j.obj.size, 0);
    publish_progress(j);
  }
}

void write_at(int fd, std::string_view data, std::uint64_t off) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(ErrorKind::io, std::string("cannot write the download: ") + std::strerror(errno), "check free disk space");
    data.remove_prefix(static_cast<std::size_t>(n));
    off += static_cast<std::uint64_t>(n);
  }
}

// Writes what a part has received but not yet written, at its offset.
void flush(Job& j, Part& p) {
  if (p.pending.empty()) return;
  write_at(j.fd, p.pending, p.first + p.on_disk());
  p.pending.clear();
  publish_progress(j);
}

// A composite checksum is a checksum of the parts' checksums ("...-N"): it cannot be computed from the file.
bool is_composite(std::string_view value) {
  const auto dash = value.rfind('-');
  return dash != std::string_view::npos && dash + 1 < value.size() &&
         value.find_first_not_of("0123456789", dash + 1) == std::string_view::npos;
}

// Checks the object's x-amz-checksum-*: those a single-request response sent, else the full-object ones
// HeadObject (or a ranged response) gave. Composite ones are named in `checks` as not checked.
void verify_checksums(const Job& j, std::vector<std::string>& checks) {
  const http::Headers& sums = j.checksums.empty() ? j.obj.checksums : j.checksums;
  constexpr std::string_view kType = "x-amz-checksum-type";
  const bool composite = std::any_of(sums.begin(), sums.end(), [&](const http::Header& h) {
    return h.name == kType && strcasecmp(h.value.c_str(), "COMPOSITE") == 0;
  });
  for (const auto& h : sums) {
    if (h.name == kType) continue;
    const std::string algo = h.name.substr(std::strlen("x-amz-checksum-"));
    if (composite || is_composite(h.value)) {
      checks.push_back(algo + "(composite: not checked)");
      continue;
    }
    const std::string got = checksum_of(algo, j.fd, j.obj.size);
    if (got.empty()) continue;
    if (got != h.value)
      throw Error(ErrorKind::protocol, fmt::format("{} checksum mismatch: got {}, the storage says {}", algo, got, h.value),
                  "the data was corrupted in transit; run the command again");
    checks.push_back(algo);
  }
}

// Keeps the x-amz-checksum-* of a response: all of a single request's; of a ranged part, only a declared
// full-object checksum (x-amz-checksum-type: FULL_OBJECT), the first one sent.
void collect_checksums(Job& j, const http::Response& r) {
  if (j.ranged() && !j.checksums.empty()) return;
  http::Headers sums = checksum_headers(r.headers);
  if (j.ranged() && std::none_of(sums.begin(), sums.end(), [](const http::Header& h) {
        return h.name == "x-amz-checksum-type" && strcasecmp(h.value.c_str(), "FULL_OBJECT") == 0;
      }))
    return;
  j.checksums = std::move(sums);
}

// For a ranged object whose listing says it has a checksum: asks for it now (DownloadOptions::full_checksum).
void ask_full_checksum(Job& j, const DownloadOptions& options) {
  if (!options.full_checksum || j.obj.checksum_algorithm.empty() || !j.obj.checksums.empty()) return;
  try {
    options.full_checksum(j.obj);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    fail(j, e);
  }
}

// Checks a finished job and moves it into place; on any mismatch nothing is left at the final path.
void finish(Job& j, DownloadObserver* observer) {
  const bool complete = std::all_of(j.parts.begin(), j.parts.end(), [](const Part& p) { return p.done; });
  if (j.result.status != FileResult::Status::failed && !complete) fail(j, "incomplete download");
  if (j.result.status != FileResult::Status::failed) {
    try {
      struct stat st{};
      if (::fstat(j.fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != j.obj.size)
        throw Error(ErrorKind::protocol, fmt::format("size mismatch: {} bytes on disk, the storage says {}", st.st_size, j.obj.size));
      std::vector<std::string> checks{"size"};
      if (is_md5_etag(j.obj.etag)) {
        std::string md5;
        if (j.md5) {
          auto v = j.md5->final();
          md5 = hex(v.data(), v.size());
        } else if (j.trail) {
          j.trail->advance(j.obj.size);
          md5 = j.trail->result();
        } else {
          md5 = md5_of(j.fd, j.obj.size);
        }
        if (md5 != j.obj.etag)
          throw Error(ErrorKind::protocol, fmt::format("MD5 mismatch: got {}, the ETag says {}", md5, j.obj.etag),
                      "the data was corrupted in transit; run the command again");
        checks.push_back("md5");
      }
      verify_checksums(j, checks);
      ::fsetxattr(j.fd, kEtagXattr, j.obj.etag.data(), j.obj.etag.size(), 0);  // best effort; moves with the file
      close_fd(j);
      j.root->rename(j.temp, j.rel);  // a link at the final name is replaced, never followed
      j.root->remove(j.state);
      j.result.verified = fmt::format("{}", fmt::join(checks, ","));
    } catch (const Error& e) {
      fail(j, e);
      close_fd(j);
      if (j.own_temp) j.root->remove(j.temp);
      if (j.own_temp) j.root->remove(j.state);
    }
  } else {
    close_fd(j);
    if (!j.ranged() && j.own_temp) j.root->remove(j.temp);  // a ranged job keeps its finished parts for the next run
  }
  if (observer) observer->on_file(j.result);
}

// Records what the response to one part says; returns false (and fails the job) when it is unusable.
void check_outcome(Job& j, Part& part, http::Outcome& out) {
  if (out.error) {
    try {
      std::rethrow_exception(out.error);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      fail(j, e);
    } catch (const std::exception& e) {
      fail(j, e.what());
    }
    return;
  }
  auto& r = *out.response;
  if (!r.ok()) {
    if (r.status == 412) return fail(j, "the object changed during the download", "run the command again");
    try {
      throw_s3_error(r, "downloading " + j.obj.key);
    } catch (const Error& e) {
      fail(j, e);
    }
    return;
  }
  const std::string etag = [&] {
    std::string e(r.header("ETag").value_or(""));
    if (e.size() >= 2 && e.front() == '"') e = e.substr(1, e.size() - 2);
    return e;
  }();
  if (!etag.empty() && !j.obj.etag.empty() && etag != j.obj.etag)
    return fail(j, "the object changed since it was listed (ETag differs)", "run the command again");
  if (j.ranged() && r.status != 206 && j.parts.size() > 1)
    return fail(j, "the storage ignored the Range header", "run again with --part-size larger than the object");
  if (part.received != part.length())
    return fail(j, fmt::format("truncated: received {} of {} bytes", part.received, part.length()), "run the command again");
  part.done = true;
  collect_checksums(j, r);
}

}  // namespace

std::size_t DownloadSummary::count(FileResult::Status s) const {
  return static_cast<std::size_t>(std::count_if(files.begin(), files.end(), [s](const FileResult& f) { return f.status == s; }));
}

void to_json(nlohmann::json& j, const FileResult& f) {
  static constexpr const char* names[] = {"downloaded", "skipped", "failed"};
  j = {{"key", f.key}, {"path", f.path}, {"size", f.size}, {"status", names[static_cast<int>(f.status)]}};
  if (!f.verified.empty()) j["verified"] = f.verified;
  if (f.resumed) j["resumed"] = true;
  if (!f.error.empty()) j["error"] = f.error;
  if (!f.hint.empty()) j["hint"] = f.hint;
}

fs::path safe_relative_path(std::string_view key, std::string_view prefix) {
  std::string_view rel = key;
  if (!prefix.empty() && key.rfind(prefix, 0) == 0) {
    // Strip the prefix up to its last '/', so "runs/r1/" and "runs/r1/out.txt" both keep the file name.
    const auto cut = prefix.back() == '/' ? prefix.size() : prefix.rfind('/') + 1;
    rel = key.substr(prefix.rfind('/') == std::string_view::npos && prefix.back() != '/' ? 0 : cut);
  }
  auto refuse = [&](std::string_view why) -> fs::path {
    std::string shown;
    for (char c : key) shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    throw Error(ErrorKind::protocol, fmt::format("refusing object key '{}': {}", shown, why),
                "the key cannot be written safely under the destination; exclude it with --exclude");
  };
  if (rel.empty()) return refuse("it names no file");
  if (rel.front() == '/') return refuse("it is an absolute path");
  for (unsigned char c : rel)
    if (c < 0x20 || c == 0x7f) return refuse("it contains a control character or NUL");
  if (rel.find('\\') != std::string_view::npos) return refuse("it contains a backslash");
  static constexpr std::array<std::string_view, 22> reserved = {
      "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
      "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"};
  std::string_view rest = rel;
  while (true) {
    const auto slash = rest.find('/');
    const auto seg = rest.substr(0, slash);
    if (seg.empty()) return refuse("it has an empty path segment ('//')");
    if (seg == "..") return refuse("it contains '..'");
    if (seg == ".") return refuse("it contains '.' as a path segment");
    if (seg.size() > 255) return refuse("a path segment is longer than 255 bytes");
    if (is_temporary_name(seg)) return refuse("it is named like impact's own temporary files");
    const auto stem = seg.substr(0, seg.find('.'));
    for (auto r : reserved)
      if (stem.size() == r.size() && strncasecmp(stem.data(), r.data(), r.size()) == 0)
        return refuse("it uses a reserved device name (" + std::string(r) + ")");
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return fs::path(std::string(rel));
}

DownloadSummary download(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                         const RequestFactory& make_request, const http::Options& http_options,
                         const DownloadOptions& options, DownloadObserver* observer) {
  const auto started = std::chrono::steady_clock::now();
  DownloadSummary summary;
  // The destination, held open: every name below it is reached without following a link. Made when the
  // first object needs it.
  std::optional<SafeDir> root;
  try {
    root.emplace(SafeDir::open(options.dest, false));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::not_found) throw;
  }
  std::vector<std::unique_ptr<Job>> jobs;
  std::uint64_t planned_bytes = 0;
  for (const auto& o : objects) {
    if (!o.key.empty() && o.key.back() == '/' && o.size == 0) continue;  // a "folder" marker, not a file
    FileResult res;
    res.key = o.key;
    res.size = o.size;
    fs::path rel;
    try {
      rel = safe_relative_path(o.key, prefix);
    } catch (const Error& e) {
      res.status = FileResult::Status::failed;
      res.error = e.what();
      res.hint = e.hint();
      res.error_kind = e.kind();
      summary.files.push_back(res);
      continue;
    }
    res.path = rel.string();
    if (!options.include.empty() && !matches(options.include, res.path)) continue;
    if (matches(options.exclude, res.path)) continue;
    auto j = std::make_unique<Job>();
    j->obj = o;
    j->rel = rel;
    j->final_path = options.dest / rel;
    j->temp = rel;
    j->temp += std::string(kPartSuffix);
    j->state = rel;
    j->state += std::string(kStateSuffix);
    j->result = res;
    try {
      if (!root) root.emplace(SafeDir::open(options.dest, true));
      j->root = &*root;
      root->require_file_or_nothing(rel);  // a link at the final name or a folder on the way: refused
    } catch (const Error& e) {
      fail(*j, e);
      summary.files.push_back(j->result);
      continue;
    }
    if (identical(*root, rel, o)) {
      j->result.status = FileResult::Status::skipped;
      summary.files.push_back(j->result);
      continue;
    }
    if (const auto ps = choose_part_size(o.size, options)) {
      plan_parts(*j, ps);
      ask_full_checksum(*j, options);
    } else {
      Part whole;
      whole.last = o.size ? o.size - 1 : 0;
      whole.done = o.size == 0;
      j->parts.push_back(whole);
      j->md5 = std::make_unique<Digest>(EVP_md5());
    }
    for (const auto& p : j->parts) planned_bytes += p.done ? 0 : p.length();
    j->id = jobs.size() + 1;
    jobs.push_back(std::move(j));
  }
  if (observer) {
    for (const auto& f : summary.files) observer->on_file(f);
    observer->on_plan(jobs.size(), planned_bytes);
  }

  // Work list: every part still missing, object by object.
  struct Item {
    Job* job;
    std::size_t part;
  };
  std::vector<Item> items;
  for (auto& j : jobs) {
    for (std::size_t i = 0; i < j->parts.size(); ++i)
      if (!j->parts[i].done) items.push_back({j.get(), i});
    j->pending = static_cast<std::size_t>(std::count_if(j->parts.begin(), j->parts.end(), [](const Part& p) { return !p.done; }));
    if (j->pending == 0) {  // everything was on disk already (or an empty object): just verify
      try {
        open_temp(*j);
      } catch (const Error& e) {
        fail(*j, e);
      }
      if (j->fd >= 0 || j->result.status == FileResult::Status::failed) finish(*j, observer);
    }
  }

  // Requests are made as places come free: the file is opened and the request signed just before it
  // starts (a signature stays fresh however long the queue), and each object is verified and moved into
  // place as soon as its last part ends, so files open at once stay near --parallel and an interrupted
  // run keeps every object it finished.
  auto part_processed = [&](Job& j) {
    if (--j.pending == 0) finish(j, observer);
  };
  std::size_t cursor = 0;  // one request per item, in order: request index = item index
  bool cancelled = false;
  http::Batch::Feed feed;
  feed.next = [&]() -> std::optional<http::Request> {
    if (cursor == items.size()) return std::nullopt;
    const Item it = items[cursor++];
    Job& j = *it.job;
    Part& part = j.parts[it.part];
    const auto range = j.ranged() ? std::optional(std::pair(part.first, part.last)) : std::nullopt;
    http::Request req;
    if (j.ranged()) req.group = j.id;
    req.receive_buffer = static_cast<std::size_t>(std::min<std::uint64_t>(part.length(), kReceiveBuffer));
    Job* jp = &j;
    Part* pp = &part;
    req.prepare = [jp, range, &make_request](http::Request& r) {
      // Another part of the object failed before this one started: the object is lost for this run.
      if (jp->result.status == FileResult::Status::failed) throw Error(ErrorKind::generic, "not fetched");
      open_temp(*jp);
      http::Request made = make_request(jp->obj, range);
      r.method = made.method;
      r.url = std::move(made.url);
      r.headers = std::move(made.headers);
      if (jp->ranged() && !jp->obj.etag.empty()) r.headers.push_back({"If-Match", "\"" + jp->obj.etag + "\""});
    };
    req.sink = [jp, pp, observer](std::string_view chunk) {
      if (pp->received + chunk.size() > pp->length())
        throw Error(ErrorKind::protocol, "the storage sent more data than the object's size");
      if (jp->md5) jp->md5->update(chunk);
      if (pp->pending.size() + chunk.size() > kWriteBuffer) flush(*jp, *pp);
      if (pp->pending.empty()) pp->pending.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(kWriteBuffer, pp->length())));
      pp->pending.append(chunk);
      pp->received += chunk.size();
      jp->fetched += chunk.size();
      if (pp->received == pp->length()) {
        flush(*jp, *pp);
        std::string().swap(pp->pending);  // the part is complete: free its buffer
      }
      if (observer) observer->on_bytes(chunk.size());
      if (jp->ranged() && pp->received == pp->length()) {
        pp->done = true;  // every byte of the part is on disk: record it for a resumed run
        save_state(*jp);
      }
    };
    req.on_retry = [jp, pp, observer] {
      if (observer) observer->on_rewind(pp->received);
      jp->fetched -= pp->received;
      pp->received = 0;
      std::string().swap(pp->pending);
      pp->done = false;
      if (jp->md5) jp->md5->reset();
    };
    return req;
  };
  feed.done = [&](std::size_t index, http::Outcome outcome) {
    const Item& it = items.at(index);
    try {
      check_outcome(*it.job, it.job->parts[it.part], outcome);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::cancelled) throw;
      cancelled = true;  // Ctrl-C: the batch is winding down; what was finished stays
      return;
    }
    part_processed(*it.job);
  };
  http::Batch batch(http_options, fitting_parallel(options.parallel), kPartsInFlight);
  batch.run(std::move(feed));
  if (cancelled || cancel_requested()) {
    // Interrupted: what was finished is in place; a single-request object's partial file goes, a ranged
    // one's stays with its state for the next run to resume.
    for (auto& j : jobs) {
      if (j->pending == 0) continue;
      close_fd(*j);
      if (!j->ranged() && j->own_temp) j->root->remove(j->temp);
    }
    throw Error(ErrorKind::cancelled, "interrupted");
  }
  for (auto& j : jobs) {
    summary.files.push_back(j->result);
    if (j->result.status == FileResult::Status::downloaded) summary.bytes += j->fetched;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace impact::storage
