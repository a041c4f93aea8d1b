// The download engine's inner parts (see impact/transfer.hpp): one Job per source to fetch, its Parts, and
// the steps the engine runs on them (plan.cpp, disk.cpp, engine.cpp).
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fs/safe_dir.hpp"
#include "impact/transfer.hpp"
#include "transfer/hash.hpp"

namespace impact::transfer {

constexpr std::uint64_t kMiB = 1u << 20;
// Ranged parts of one object in flight at once. The trailing hash follows only the contiguous prefix on disk,
// so the bytes in flight beyond it are what is left to hash after the last byte arrives (8 x 8 MiB: ~0.1 s),
// and fewer streams cost the storage less CPU: for 1 GiB on loopback, 32 parts in flight took 3.6 s, 8 took 3.3.
constexpr std::size_t kPartsInFlight = 8;
constexpr std::string_view kPartSuffix = ".impact-part";
constexpr std::string_view kStateSuffix = ".impact-state";

struct Part {
  std::uint64_t first = 0, last = 0;  // inclusive
  std::uint64_t received = 0;         // bytes received, the last pending.size() of them not yet written
  std::string pending;                // libcurl hands over 16 KiB at a time: collected for fewer, larger writes
  bool done = false;
  bool renew = false;                 // refused (401/403): fetched again once the source has a fresh URL
  std::shared_ptr<Filter> filter;     // this attempt's (Source::filter), and what it gave last
  std::string filtered;
  std::uint64_t length() const { return last - first + 1; }
  std::uint64_t on_disk() const { return received - pending.size(); }
};

struct Job {
  std::size_t index = 0;  // in the sources and the results
  std::size_t group = 0;  // 1, 2, ...: the http::Request::group of its ranged parts
  Source src;
  const SafeDir* root = nullptr;  // the destination: every file below is reached through it (no links)
  std::filesystem::path rel, temp, state;  // the file, "<file>.impact-part", "<file>.impact-state"
  std::uint64_t size = 0;
  bool size_known = true;
  std::uint64_t part_size = 0;    // 0 = not split into a grid of parts (one request, or the rest after a prefix)
  std::vector<Part> parts;
  int fd = -1;
  bool own_temp = false;          // the .impact-part was opened by this run
  bool discard = false;           // on failure, remove the .impact-part and state too (they cannot be resumed)
  std::size_t pending = 0;        // parts not yet processed in this run
  std::vector<std::string> algos; // checksums computed while the file fills
  std::unique_ptr<Hasher> inline_hash;  // one request from byte 0: hashed as the bytes arrive
  std::unique_ptr<TrailingHash> trail;  // otherwise: hashed on a thread behind the contiguous prefix
  std::size_t first_open = 0;     // the first part not completely on disk
  std::uint64_t published = 0;    // what `trail` was last told is on disk
  std::uint64_t fetched = 0;      // bytes received in this run
  Checksums declared;             // what responses declared for the whole object (Source::inspect)
  bool renew_asked = false;
  bool overflowed = false;        // the server sent more than a part's length (it ignored the Range)
  bool restarting = false;        // refetched from byte 0 in the next round (a resumed prefix was refused)
  bool restarted = false;
  std::exception_ptr refusal;     // the 401/403 that asked for a renewal, as an Error
  Result result;
  bool grid() const { return part_size != 0; }
  bool resumable() const { return grid() || parts.front().first > 0 || parts.size() > 1; }
  bool failed() const { return result.status == Result::Status::failed; }
};

void fail(Job& j, std::string message, std::string hint = {}, ErrorKind kind = ErrorKind::protocol);
void fail(Job& j, const Error& e);

// plan.cpp: the job for a source, or nullptr when its result is already final (skipped, refused).
std::unique_ptr<Job> plan_job(Source src, std::size_t index, std::optional<SafeDir>& root, const Options& options,
                              Result& result);
// disk.cpp
void open_temp(Job& j);
void close_fd(Job& j);
void write_part(Job& j, Part& p, std::string_view chunk);
void end_part(Job& j, Part& p);  // writes what is still buffered
void save_state(const Job& j);
void finish(Job& j, Observer* observer);
std::size_t fitting_parallel(std::size_t parallel);
std::string read_small(const SafeDir& root, const std::filesystem::path& rel, std::size_t max);

}  // namespace impact::transfer
