// Reading a file or standard input in large chunks for a streaming consumer (encrypt, decrypt): read() into
// buffers, never a mapping, so a file that another process truncates while it is read is an error that says
// so rather than a SIGBUS. A regular file is read ahead on a second thread (copying from the page cache costs
// about a third of what decrypting does, and now overlaps it); anything else is read as it comes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace impact::cli {

class FileInput {
 public:
  static constexpr std::size_t default_chunk = 1u << 20;
  static constexpr int read_ahead = 3;  // buffers of a regular file: one being consumed, two being filled

  // FILE, or standard input for "-". Throws Error(not_found | io).
  explicit FileInput(const std::string& path);
  ~FileInput();
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;

  // Calls `consume` with each chunk (at most `chunk` bytes; a regular file's are all full but the last) until
  // the end. A regular file that ends before the size it had when opened throws Error(io) naming both sizes.
  // Ctrl-C: Error(cancelled). What `consume` throws ends the reading and is thrown on.
  void each(const std::function<void(std::string_view)>& consume, std::size_t chunk = default_chunk);

  const std::string& name() const { return name_; }

 private:
  void each_ahead(const std::function<void(std::string_view)>& consume, std::size_t chunk);
  std::size_t fill(char* buf, std::size_t want);  // bytes read: fewer than `want` only at the end
  std::string name_;
  int fd_ = -1;
  bool own_ = false;
  bool regular_ = false;
  std::uint64_t size_ = 0;  // of a regular file, when opened
};

}  // namespace impact::cli
