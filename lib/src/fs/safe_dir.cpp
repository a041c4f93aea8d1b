#include "fs/safe_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "impact/error.hpp"

namespace impact {
namespace fs = std::filesystem;

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}
int Fd::release() noexcept { return std::exchange(fd_, -1); }
void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool is_temporary_name(std::string_view name) noexcept {
  return name.find(".impact-part") != std::string_view::npos || name.find(".impact-state") != std::string_view::npos;
}

namespace {

constexpr std::string_view kHint =
    "remove it; if you did not put it there, someone who can write to the folder may have planted it";

// The components of a relative path; anything that could leave the folder is a programming error here
// (callers map names from servers to safe components first), refused all the same.
std::vector<std::string> components(const fs::path& rel) {
  std::vector<std::string> out;
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory())
    throw Error(ErrorKind::generic, fmt::format("refusing the absolute path {} below a folder", rel.string()));
  for (const auto& c : rel) {
    const std::string s = c.string();
    if (s.empty()) continue;  // a trailing slash
    if (s == "." || s == "..") throw Error(ErrorKind::generic, fmt::format("refusing the path {}: it contains '{}'", rel.string(), s));
    out.push_back(s);
  }
  return out;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

struct SafeDir::Parent {
  Fd fd;              // the folder holding the last component (empty when a folder on the way is missing)
  std::string leaf;   // the last component
  fs::path folder;    // the folders on the way, relative to this one
};

std::string SafeDir::shown(const fs::path& rel) const { return (below_ / rel).lexically_normal().string(); }

void SafeDir::refuse(const fs::path& rel, std::string_view why) const {
  throw Error(ErrorKind::io,
              fmt::format("{} {}; impact does not follow links or write through them inside the destination folder ({})",
                          shown(rel), why, root_.string()),
              std::string(kHint));
}

SafeDir SafeDir::open(const fs::path& root, bool create) {
  const fs::path where = root.empty() ? fs::path(".") : root;
  if (create) {
    std::error_code ec;
    fs::create_directories(where, ec);
    if (ec) throw Error(ErrorKind::io, fmt::format("cannot create {}: {}", where.string(), ec.message()), "check the folder's permissions");
  }
  const int fd = ::open(where.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw Error(e == ENOENT ? ErrorKind::not_found : ErrorKind::io, fmt::format("cannot open the folder {}: {}", where.string(), errno_text(e)));
  }
  return SafeDir(Fd(fd), where, {});
}

Fd SafeDir::walk(const fs::path& rel, bool create, bool& missing) const {
  missing = false;
  Fd cur(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!cur) {
    const std::string why = errno_text(errno);
    throw Error(ErrorKind::io, fmt::format("cannot open {}: {}", root_.string(), why));
  }
  fs::path done;
  for (const auto& c : components(rel)) {
    done /= c;
    int next = ::openat(cur.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c.c_str(), 0777) != 0 && errno != EEXIST) {
        const std::string why = errno_text(errno);
        throw Error(ErrorKind::io, fmt::format("cannot create {} in {}: {}", shown(done), root_.string(), why),
                    "check the folder's permissions");
      }
      next = ::openat(cur.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      const int e = errno;
      if (e == ENOENT) {
        missing = true;
        return Fd();
      }
      struct stat st{};
      if ((e == ELOOP || e == ENOTDIR) && ::fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) refuse(done, "is a symbolic link");
        refuse(done, "is not a folder");
      }
      throw Error(ErrorKind::io, fmt::format("cannot open {} in {}: {}", shown(done), root_.string(), errno_text(e)));
    }
    cur = Fd(next);
  }
  return cur;
}

SafeDir::Parent SafeDir::parent_of(const fs::path& rel, bool create) const {
  auto parts = components(rel);
  if (parts.empty()) throw Error(ErrorKind::generic, "an empty file name below a folder");
  Parent p;
  p.leaf = parts.back();
  parts.pop_back();
  for (const auto& c : parts) p.folder /= c;
  bool missing = false;
  p.fd = walk(p.folder, create, missing);
  return p;
}

SafeDir SafeDir::dir(const fs::path& rel, bool create) const {
  bool missing = false;
  Fd fd = walk(rel, create, missing);
  if (missing) throw Error(ErrorKind::not_found, fmt::format("{} does not exist in {}", shown(rel), root_.string()));
  return SafeDir(std::move(fd), root_, (below_ / rel).lexically_normal());
}

Fd SafeDir::open_file(const fs::path& rel, int flags, mode_t mode) const {
  Parent p = parent_of(rel, false);
  if (!p.fd) {
    if (flags & O_CREAT)
      throw Error(ErrorKind::io, fmt::format("cannot create {}: its folder {} is missing", shown(rel), shown(p.folder)));
    throw Error(ErrorKind::not_found, fmt::format("{} does not exist in {}", shown(rel), root_.string()));
  }
  // O_NONBLOCK: a FIFO planted in the file's place must not block the open (it is refused just below).
  const int fd = ::openat(p.fd.get(), p.leaf.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
  if (fd < 0) {
    const int e = errno;
    struct stat st{};
    const bool there = ::fstatat(p.fd.get(), p.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (there && S_ISLNK(st.st_mode)) refuse(rel, "is a symbolic link");
    if (there && !S_ISREG(st.st_mode)) refuse(rel, "is not a regular file");
    if (e == ENOENT && !(flags & O_CREAT))
      throw Error(ErrorKind::not_found, fmt::format("{} does not exist in {}", shown(rel), root_.string()));
    throw Error(ErrorKind::io,
                fmt::format("cannot {} {} in {}: {}", flags & O_CREAT ? "create" : "open", shown(rel), root_.string(),
                            errno_text(e)),
                e == EACCES || e == EROFS ? "check the folder's permissions" : "");
  }
  Fd out(fd);
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text(errno);
    throw Error(ErrorKind::io, fmt::format("cannot inspect {}: {}", shown(rel), why));
  }
  if (!S_ISREG(st.st_mode)) refuse(rel, "is not a regular file");
  if ((flags & O_ACCMODE) != O_RDONLY) {
    if (st.st_uid != ::geteuid()) refuse(rel, "belongs to another user");
    if (st.st_nlink > 1) refuse(rel, "has other hard links");
  }
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    const std::string why = errno_text(errno);
    throw Error(ErrorKind::io, fmt::format("cannot use {}: {}", shown(rel), why));
  }
  return out;
}

std::optional<struct stat> SafeDir::stat(const fs::path& rel) const {
  Parent p = parent_of(rel, false);
  if (!p.fd) return std::nullopt;
  struct stat st{};
  if (::fstatat(p.fd.get(), p.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    const std::string why = errno_text(errno);
    throw Error(ErrorKind::io, fmt::format("cannot inspect {} in {}: {}", shown(rel), root_.string(), why));
  }
  return st;
}

void SafeDir::require_file_or_nothing(const fs::path& rel) const {
  const auto st = stat(rel);
  if (!st || S_ISREG(st->st_mode)) return;
  if (S_ISLNK(st->st_mode)) refuse(rel, "is a symbolic link");
  refuse(rel, "is not a regular file");
}

void SafeDir::rename(const fs::path& from, const fs::path& to) const {
  Parent a = parent_of(from, false), b = parent_of(to, false);
  if (a.fd && b.fd && ::renameat(a.fd.get(), a.leaf.c_str(), b.fd.get(), b.leaf.c_str()) == 0) return;
  const std::string why = a.fd && b.fd ? errno_text(errno) : "a folder is missing";
  throw Error(ErrorKind::io, fmt::format("cannot move {} into place in {}: {}", shown(to), root_.string(), why));
}

bool SafeDir::remove(const fs::path& rel) const noexcept {
  try {
    Parent p = parent_of(rel, false);
    return p.fd && ::unlinkat(p.fd.get(), p.leaf.c_str(), 0) == 0;
  } catch (...) {
    return false;
  }
}

}  // namespace impact
