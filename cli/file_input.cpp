#include "file_input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "impact/cancel.hpp"
#include "impact/error.hpp"

namespace impact::cli {

FileInput::FileInput(const std::string& path) : name_(path == "-" ? "standard input" : path) {
  if (path == "-") {
    fd_ = 0;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw Error(errno == ENOENT ? ErrorKind::not_found : ErrorKind::io,
                  fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    own_ = true;
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
    regular_ = true;
    // What is left to read: stdin may be a file already partly read (`{ head -c 10 >/dev/null; impact …; } < f`).
    const off_t at = ::lseek(fd_, 0, SEEK_CUR);
    size_ = static_cast<std::uint64_t>(st.st_size) - (at > 0 && at <= st.st_size ? static_cast<std::uint64_t>(at) : 0);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);  // a hint: a larger read-ahead
  }
}

FileInput::~FileInput() {
  if (own_) ::close(fd_);
}

std::size_t FileInput::fill(char* buf, std::size_t want) {
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ::read(fd_, buf + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorKind::io, fmt::format("cannot read {}: {}", name_, std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (!regular_) break;  // a pipe or terminal: what it has now, so that a slow stream keeps flowing
  }
  return got;
}

void FileInput::each(const std::function<void(std::string_view)>& consume, std::size_t chunk) {
  chunk = std::max<std::size_t>(chunk, 1);
  if (regular_) return each_ahead(consume, chunk);
  std::unique_ptr<char[]> buf(new char[chunk]);
  while (true) {
    throw_if_cancelled();
    std::size_t n = fill(buf.get(), chunk);
    if (n == 0) return;
    consume(std::string_view(buf.get(), n));
  }
}

// A reader thread fills a ring of buffers while this thread consumes them. Reads of a regular file always end
// (no pipe to wait on), so the reader is joined promptly whatever happens here.
void FileInput::each_ahead(const std::function<void(std::string_view)>& consume, std::size_t chunk) {
  struct Slot {
    std::unique_ptr<char[]> data;
    std::size_t len = 0;
  };
  std::vector<Slot> ring(read_ahead);
  for (auto& s : ring) s.data.reset(new char[chunk]);
  std::mutex m;
  std::condition_variable cv;
  std::uint64_t produced = 0, consumed = 0, total = 0;
  bool done = false, stop = false;
  std::exception_ptr failure;

  std::thread reader([&] {
    try {
      while (true) {
        {
          std::unique_lock lock(m);
          cv.wait(lock, [&] { return stop || produced - consumed < ring.size(); });
          if (stop) break;
        }
        Slot& s = ring[produced % ring.size()];  // not touched by the consumer until `produced` passes it
        s.len = fill(s.data.get(), chunk);
        std::lock_guard lock(m);
        total += s.len;
        if (s.len == 0) break;
        ++produced;
        cv.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(m);
      failure = std::current_exception();
    }
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });
  struct Join {
    std::thread& t;
    std::mutex& m;
    std::condition_variable& cv;
    bool& stop;
    ~Join() {
      {
        std::lock_guard lock(m);
        stop = true;
      }
      cv.notify_all();
      t.join();
    }
  } join{reader, m, cv, stop};

  while (true) {
    throw_if_cancelled();
    Slot* s = nullptr;
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return produced > consumed || done; });
      if (produced > consumed) s = &ring[consumed % ring.size()];
      else if (failure) std::rethrow_exception(failure);
      else break;
    }
    consume(std::string_view(s->data.get(), s->len));
    std::lock_guard lock(m);
    ++consumed;
    cv.notify_all();
  }
  if (total < size_)
    throw Error(ErrorKind::io, fmt::format("{} shrank while it was read: it ended after {} of its {} bytes (another "
                                           "program truncated or rewrote it)", name_, total, size_));
}

}  // namespace impact::cli
