#include "impact/paths.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "impact/error.hpp"

namespace fs = std::filesystem;

namespace impact {
namespace {

fs::path home() {
  const char* h = std::getenv("HOME");
  if (!h || !*h) throw Error(ErrorKind::config, "HOME is not set", "set HOME or the XDG_*_HOME variables");
  return h;
}

fs::path xdg(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  // The XDG spec says relative paths are invalid and must be ignored.
  if (v && *v == '/') return fs::path(v) / "impact";
  return home() / fallback / "impact";
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

fs::path config_home() { return xdg("XDG_CONFIG_HOME", ".config"); }
fs::path state_home() { return xdg("XDG_STATE_HOME", ".local/state"); }
fs::path cache_home() { return xdg("XDG_CACHE_HOME", ".cache"); }
fs::path data_home() { return xdg("XDG_DATA_HOME", ".local/share"); }

void create_private_dirs(const fs::path& dir) {
  // From the top down: mkdir each prefix; one that exists (or that another process creates meanwhile) is
  // kept as it is, provided it is a folder (a link to one counts).
  fs::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (part.empty() || part == "/" || part == "." || part == "..") continue;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      if (::chmod(prefix.c_str(), 0700) != 0)  // a umask like 0277 would leave it unusable
        throw Error(ErrorKind::io, "cannot set permissions on " + prefix.string() + ": " + errno_text());
      continue;
    }
    const int err = errno;
    struct stat st {};
    if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    throw Error(ErrorKind::io, "cannot create " + prefix.string() + ": " +
                                   (err == EEXIST ? std::string("it exists and is not a folder") : std::strerror(err)));
  }
}

void ensure_private_dir(const fs::path& dir, unsigned mode) {
  create_private_dirs(dir);
  if (::chmod(dir.c_str(), mode) != 0)
    throw Error(ErrorKind::io, "cannot set permissions on " + dir.string() + ": " + errno_text());
}

void write_file_atomic(const fs::path& path, std::string_view data, unsigned mode) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::random_device rd;
  const fs::path tmp = dir / fmt::format(".{}.tmp{}-{}", path.filename().string(), ::getpid(), rd() & 0xffffff);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw Error(ErrorKind::io, "cannot write " + path.string() + ": " + errno_text());
  auto fail = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::io, what + " " + path.string() + ": " + reason);
  };
  if (::fchmod(fd, mode) != 0) fail("cannot set permissions on");
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write");
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("cannot flush");
  if (::close(fd) != 0) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::io, "cannot write " + path.string() + ": " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::io, "cannot replace " + path.string() + ": " + reason);
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

namespace {

int open_for_reading(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
  if (fd >= 0) return fd;
  if (errno == ELOOP)
    throw Error(ErrorKind::io, path.string() + " is a symbolic link; impact does not follow links to its private files",
                "remove the link");
  ErrorKind k = errno == ENOENT ? ErrorKind::not_found : ErrorKind::io;
  throw Error(k, "cannot read " + path.string() + ": " + errno_text());
}

// Reads `fd` to the end and closes it.
std::string read_all(int fd, const fs::path& path, std::size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = errno_text();
      ::close(fd);
      throw Error(ErrorKind::io, "cannot read " + path.string() + ": " + reason);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      throw Error(ErrorKind::io, path.string() + " is larger than expected; refusing to read it");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string read_file(const fs::path& path, std::size_t max_bytes) {
  return read_all(open_for_reading(path, 0), path, max_bytes);
}

std::string read_private_file(const fs::path& path, std::size_t max_bytes) {
  int fd = open_for_reading(path, O_NOFOLLOW | O_NONBLOCK);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    ::close(fd);
    throw Error(ErrorKind::io, path.string() + " is not a regular file of yours; impact does not read private data from it",
                "remove it");
  }
  // As OpenSSH does for private keys: a file other users may read or change, or one in a folder they may
  // write to (and so swap the file), is refused rather than trusted.
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    throw Error(ErrorKind::io,
                fmt::format("{} can be read or changed by other users (mode {:04o}); impact does not use private data from it",
                            path.string(), st.st_mode & 07777),
                fmt::format("run: chmod 600 {} (and treat what it holds as exposed: log in again, replace the keys)", path.string()));
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) == 0 && (ds.st_mode & 022) != 0 && (ds.st_mode & S_ISVTX) == 0) {
    ::close(fd);
    throw Error(ErrorKind::io,
                fmt::format("the folder {} can be written by other users (mode {:04o}); impact does not use the private file {} in it",
                            dir.string(), ds.st_mode & 07777, path.filename().string()),
                fmt::format("run: chmod 700 {}", dir.string()));
  }
  return read_all(fd, path, max_bytes);
}

}  // namespace impact
