// Checksums computed while a download fills its file: MD5, SHA-1/256/512 (OpenSSL EVP) and CRC-32/-32C,
// several at once, inline for one request or on a thread that follows the contiguous prefix on disk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace impact::transfer {

using Digests = std::map<std::string, std::vector<unsigned char>>;  // canonical algorithm -> raw digest

// "SHA-256", "sha256" -> "sha256"; "" for an algorithm impact cannot compute.
std::string canonical_algorithm(std::string_view algo);
// Whether `expected` (hex in any case, or base64) is `digest`.
bool digest_matches(const std::vector<unsigned char>& digest, std::string_view expected);
std::string hex(const std::vector<unsigned char>& digest);
// `digest` written as `like` is (hex or base64), for messages.
std::string encode_like(const std::vector<unsigned char>& digest, std::string_view like);

// Several digests over the same bytes.
class Hasher {
 public:
  explicit Hasher(std::vector<std::string> algorithms);  // canonical names
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view data);
  void reset();
  Digests final();
  bool empty() const noexcept { return algos_.empty(); }

 private:
  struct One;
  std::vector<std::string> algos_;
  std::vector<std::unique_ptr<One>> ones_;
};

// Bytes [0, size) of `fd` through `hasher`, a piece at a time (throws Error(io), Error(cancelled)).
void hash_file(int fd, std::uint64_t size, Hasher& hasher);

// Hashes a file being written in ranged parts on a second thread that follows the contiguous prefix already
// on disk: hashing overlaps the download instead of coming after it.
class TrailingHash {
 public:
  TrailingHash(int fd, std::uint64_t size, std::vector<std::string> algorithms);
  ~TrailingHash() { stop(); }
  TrailingHash(const TrailingHash&) = delete;
  TrailingHash& operator=(const TrailingHash&) = delete;
  // Bytes [0, ready) are on disk (never goes backwards).
  void advance(std::uint64_t ready);
  // Waits for the whole file to be hashed (advance(size) must have been called).
  Digests result();
  void stop();

 private:
  void run();
  void hash_up_to(std::uint64_t ready, std::uint64_t& done, std::vector<char>& buf);
  int fd_;
  std::uint64_t size_;
  std::uint64_t ready_ = 0;
  Hasher hasher_;
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  Digests digests_;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once everything above is set up
};

}  // namespace impact::transfer
