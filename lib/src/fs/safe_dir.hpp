// A folder held open by its descriptor, below which nothing is looked up through a symbolic link.
//
// Downloads write into folders other people may share (group scratch, /tmp). Every name below the folder
// is resolved one component at a time relative to a descriptor (openat/mkdirat/renameat/unlinkat with
// O_NOFOLLOW), so a link planted there - at a file, or at a folder on the way - is an error naming it,
// never a way to write, truncate, create or delete anything outside. Engine-agnostic: used by the S3 and
// the DRS download engines alike.
#pragma once
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string_view>

namespace impact {

// An owned file descriptor.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept;
  void reset() noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// True for a name impact uses for its own temporary files (it contains ".impact-part" or ".impact-state"):
// such names are never given to downloaded objects, so a temporary can never be mistaken for, or replace,
// a file the user asked for.
bool is_temporary_name(std::string_view name) noexcept;

class SafeDir {
 public:
  // Opens the folder `root` as the user named it (a link in `root` itself is the user's choice and is
  // followed), creating it and its parents first when `create`. Throws Error(io), or Error(not_found)
  // when it does not exist and !create.
  static SafeDir open(const std::filesystem::path& root, bool create);

  // The folder `rel` below this one. Each component is opened without following a link, and made
  // (mkdirat, 0777 less the umask) when missing and `create`. "" is this folder.
  SafeDir dir(const std::filesystem::path& rel, bool create) const;

  // Opens the file `rel` (its folders must exist) with `flags` | O_NOFOLLOW | O_CLOEXEC. A link, anything
  // but a regular file, or - when opened for writing - a file of another user or one with other hard
  // links is refused. Throws Error(io), Error(not_found) when it is missing and O_CREAT is not given.
  Fd open_file(const std::filesystem::path& rel, int flags, mode_t mode = 0644) const;

  // What is at `rel`, without following a link there (lstat); nullopt when nothing is (or a folder on
  // the way is missing). A link at a folder on the way is refused (Error(io)).
  std::optional<struct stat> stat(const std::filesystem::path& rel) const;

  // Throws Error(io) when something other than a regular file (a link, a folder, a device) is at `rel`.
  void require_file_or_nothing(const std::filesystem::path& rel) const;

  // Renames `from` to `to` (renameat): a link at `to` is replaced, never followed.
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) const;

  // Removes the name `rel` (unlinkat: a link itself, never what it points to). False when nothing was
  // removed; never throws.
  bool remove(const std::filesystem::path& rel) const noexcept;

  // The folder's path, as given to open() (for messages), and the path of `rel` below it.
  const std::filesystem::path& path() const noexcept { return root_; }
  std::filesystem::path path_of(const std::filesystem::path& rel) const { return root_ / below_ / rel; }
  int fd() const noexcept { return fd_.get(); }

 private:
  SafeDir(Fd fd, std::filesystem::path root, std::filesystem::path below)
      : fd_(std::move(fd)), root_(std::move(root)), below_(std::move(below)) {}
  struct Parent;
  Parent parent_of(const std::filesystem::path& rel, bool create) const;
  Fd walk(const std::filesystem::path& rel, bool create, bool& missing) const;
  [[noreturn]] void refuse(const std::filesystem::path& rel, std::string_view why) const;
  std::string shown(const std::filesystem::path& rel) const;  // the path relative to the root

  Fd fd_;
  std::filesystem::path root_;   // the folder open() was given
  std::filesystem::path below_;  // this folder, relative to root_ ("" for the root itself)
};

}  // namespace impact
