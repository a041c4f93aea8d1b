// The one download engine. A caller describes each thing to fetch as a Source (where it goes below the
// destination, its size, the checksums to expect, and how to make the request for a byte range); the engine
// does the rest for every kind of source alike (S3 objects, presigned URLs, DRS objects, ...):
//
// - plan: files already there and identical are skipped; large ones are split into ranged parts;
// - transfer: at most Options::parallel requests at once, at most 8 parts of one object, each part written
//   in place (pwrite at its offset) into "<file>.impact-part";
// - resume: each finished part is recorded in "<file>.impact-state", so a run killed at any moment (even
//   kill -9) fetches only what is missing next time; a "<file>.impact-part" without a state (one request
//   cut off, or left by impact's earlier DRS engine) is resumed from its length;
// - hash while the file fills (the contiguous prefix on disk, on a second thread for ranged parts);
// - check the free space before a large file; never write outside the destination (no link is followed);
// - verify size and checksums, then rename into place; a failed file leaves nothing at its final name.
//
// Unsafe names are refused, never rewritten: a Source whose path is absolute, holds "..", ".", an empty
// segment, a backslash, a control character, a reserved device name or impact's temporary suffixes fails
// with Error(protocol) naming it; the other sources go on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/error.hpp"
#include "impact/http.hpp"

namespace impact::transfer {

using Range = std::pair<std::uint64_t, std::uint64_t>;  // first and last byte, inclusive
// Algorithm -> expected value. Algorithms: md5, sha1, sha256, sha512, crc32, crc32c (also written "sha-256",
// upper case, ...). Values: hex (any case) or base64 of the digest. An empty value is a checksum that was
// declared but cannot be computed from the file (an S3 composite checksum of parts): noted, not checked.
using Checksums = std::map<std::string, std::string>;

// Turns the bytes of one response into the file's bytes (a Crypt4GH stream decrypted on the fly). Made for
// each attempt; `update` may keep bytes back (a partial segment) and `finish`, at the end of a successful
// response, gives what is left. Either throws Error to fail the source.
class Filter {
 public:
  virtual ~Filter() = default;
  virtual void update(std::string_view in, std::string& out) = 0;
  virtual void finish(std::string& out) = 0;
};

struct Source {
  std::string id;                      // what the results name (an S3 key, a DRS URI)
  std::filesystem::path path;          // below the destination; refused when unsafe (see above)
  std::optional<std::uint64_t> size;   // unknown: one plain request, checked by checksum only
  Checksums checksums;
  // What identifies this content (an S3 ETag, a DRS checksum): a resume state recorded for another version
  // is dropped, and a file already there with this version recorded (xattr) is skipped without reading it.
  std::string version;
  // The request for a byte range (nullopt: the whole object). Called just before each attempt.
  std::function<http::Request(std::optional<Range>)> request;
  // Optional: looks at every response before the engine does. Throws an Error to fail the source (a status
  // it understands, a changed version); returns the checksums the response declares for the whole object
  // (`whole`: it was a request for all of it), which are checked too.
  std::function<Checksums(const http::Response&, bool whole)> inspect;
  // Optional: a 401 or 403 may mean the URL expired: gets a fresh one for `request` (true) or cannot
  // (false). Asked at most once per source; the refused parts are then fetched again.
  std::function<bool()> renew;
  // Optional: called once while planning a source that will be fetched in ranged parts, to add checksums
  // that only a separate look-up gives (S3 HeadObject). Throwing fails the source.
  std::function<void(Checksums&)> more_checksums;
  // Optional: the response's bytes are not the file's. Called after `request` for the same range (file
  // offsets; nullopt: the whole file); what the filter gives is written at the range's offsets. `size`,
  // `checksums` and the ranges are then the file's, and `request` maps them to the wire.
  std::function<std::unique_ptr<Filter>(std::optional<Range>)> filter;
};

struct Result {
  std::string id;
  std::string path;  // relative to the destination
  std::uint64_t size = 0;
  enum class Status { downloaded, skipped, failed } status = Status::downloaded;
  std::string error;  // for failed
  std::string hint;
  ErrorKind error_kind = ErrorKind::generic;
  std::string verified;  // what was checked: "size,md5", "size,sha256", ...
  bool resumed = false;  // bytes of an earlier run were kept
};
std::string_view to_string(Result::Status s) noexcept;
// {"path", "size", "status", "verified", "resumed", "error", "hint"} (the adapters add what names the source).
void to_json(nlohmann::json& j, const Result& r);

// Progress of one download, called from the thread that called download().
class Observer {
 public:
  virtual ~Observer() = default;
  // More to transfer (skipped ones excluded): once per batch of sources, with what that batch adds.
  virtual void on_plan(std::size_t /*items*/, std::uint64_t /*bytes*/) {}
  virtual void on_bytes(std::uint64_t /*delta*/) {}
  virtual void on_rewind(std::uint64_t /*bytes*/) {}  // a retry drops bytes counted before
  virtual void on_item(const Result&) {}              // one source is finished (any status)
};

struct Options {
  std::filesystem::path dest = ".";
  // Requests in flight at once over all sources (at most 8 ranged parts of any one). For many small objects
  // more is quicker, also for the storage: 1,000 x 64 KiB from Ceph RGW on loopback took 0.82 s with 32,
  // 0.74 s with 64. Lowered to what the open-files limit allows.
  std::size_t parallel = 64;
  std::uint64_t part_size = 0;  // 0 = chosen per object (one request up to 16 MiB, then parts of 8 MiB or more)
};
constexpr std::size_t kMaxParallel = 256;

struct Summary {
  // One per source, in the order given (skipped and failed included); empty for a SourceStream, whose
  // results are only handed to Observer::on_item.
  std::vector<Result> results;
  std::uint64_t bytes = 0;      // received in this run
  double seconds = 0;
  std::size_t tally[3] = {};    // by Result::Status
  std::size_t count(Result::Status s) const { return tally[static_cast<int>(s)]; }
};

// Sources in batches (a listing's pages): the next batch, nullopt once there are no more (an empty batch is
// fine). The engine asks for the next batch only when every request of the earlier ones has started, so
// the first transfers run before a second page is listed, and only a batch or so is held at a time.
using SourceStream = std::function<std::optional<std::vector<Source>>()>;

// Downloads every source into options.dest. Per-source failures are in the summary; Ctrl-C throws
// Error(cancelled) after keeping what was finished (and the resume state of what was not).
Summary download(std::vector<Source> sources, const http::Options& http, const Options& options,
                 Observer* observer = nullptr);
// The same for sources pulled from `next_batch` as the transfers go: memory stays bounded by the batches
// and the transfers in flight, whatever the number of sources; results go to the observer only.
Summary download(SourceStream next_batch, const http::Options& http, const Options& options,
                 Observer* observer = nullptr);

// `rel` as a path below a destination, or Error(protocol) saying why it is refused (the rule above), naming
// it as `name` (default: `rel`).
std::filesystem::path check_path(std::string_view rel, std::string_view name = {});

}  // namespace impact::transfer
