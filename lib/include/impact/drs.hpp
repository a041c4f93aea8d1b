// GA4GH Data Repository Service (DRS 1.x) client: URIs, objects, passport-aware access, verified downloads.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/config.hpp"
#include "impact/credentials.hpp"
#include "impact/http.hpp"

namespace impact::drs {

// drs://host[:port]/id (hostname-based; the id percent-decoded) or drs://prefix:accession (compact).
struct Uri {
  std::string text;
  bool compact = false;
  std::string host;                // hostname-based: host[:port] as written
  std::string id;                  // hostname-based: the object id
  std::string prefix, accession;   // compact
};
Uri parse_uri(std::string_view text);  // throws Error(usage)

struct Checksum {
  std::string type, checksum;
};
struct AccessUrl {
  std::string url;
  std::vector<std::string> headers;  // "Name: value", to send with the URL (and only with it)
};
// What a server says it accepts for an object (OPTIONS /objects/{id}); `known` is false when it did not say.
struct Authorizations {
  bool known = false;
  std::vector<std::string> supported_types, passport_auth_issuers, bearer_auth_issuers;
};
struct AccessMethod {
  std::string type, access_id, region;
  std::optional<AccessUrl> access_url;
  bool available = true;
};
struct ContentsObject {
  std::string name, id;
  std::vector<std::string> drs_uri;
  std::vector<ContentsObject> contents;
};
struct Object {
  std::string id, name, self_uri, version, mime_type, description, created_time, updated_time;
  std::uint64_t size = 0;
  std::vector<Checksum> checksums;
  std::vector<AccessMethod> access_methods;
  std::vector<ContentsObject> contents;
  std::vector<std::string> aliases;
  bool bundle = false;   // has `contents` (bundles are deprecated but live)
  std::string server;    // the DRS base URL it came from
};
Object parse_object(const nlohmann::json& doc, std::string_view origin);  // throws Error(protocol)
Authorizations parse_authorizations(const nlohmann::json& doc);
void to_json(nlohmann::json& j, const Object& o);

// One path component safe to create under the download folder: `name` unless it is empty, "." / "..",
// holds a slash, backslash or control character, or is named like impact's temporary files
// (".impact-part", ".impact-state"); then `fallback` with every unsafe byte replaced (and ".impact-" made
// "_impact-").
std::string safe_name(std::string_view name, std::string_view fallback);

// The checksum impact can verify, strongest first (sha-512, sha-256, sha-1, md5); nullopt if none.
std::optional<Checksum> verifiable_checksum(const std::vector<Checksum>& sums);
// Lower-case hex digest of a file for a DRS checksum type ("sha-256", "md5", ...). Throws Error(io/usage).
std::string file_digest(const std::filesystem::path& file, std::string_view type);
std::string file_digest(int fd, std::string_view type);  // the same, for an open file, read from its start
std::string bytes_digest(std::string_view data, std::string_view type);  // the same, for bytes in memory

// Where an object is served: the DRS base URL (…/ga4gh/drs/v1), the id, and whether that server is one
// of the profile's services (auth::is_profile_service: only then may a token or passport go there).
struct Location {
  std::string uri;
  std::string base_url;
  std::string id;
  bool trusted = false;
};

struct Settings {
  http::Options http;
  Profile profile;
  auth::Credentials* credentials = nullptr;          // null: anonymous
  std::chrono::seconds max_pending_wait{60};         // bound on 202 + Retry-After waits per request
  std::chrono::seconds resolver_ttl{24 * 3600};      // compact-prefix cache lifetime
  std::filesystem::path cache_dir;                   // resolver cache on disk; empty = memory only
};

// An object fetched for one requested location, or why it could not be.
struct Fetched {
  Location where;
  std::optional<Object> object;
  std::exception_ptr error;
};

class Client {
 public:
  explicit Client(Settings settings);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Maps a URI to its server: a profile DRS with the same origin, else https://host/ga4gh/drs/v1
  // (http for loopback hosts); compact ids go through the profile's resolver (cached).
  Location locate(const Uri& uri);

  // Fetches the objects, in order. Several objects on one server use the bulk endpoints when the server
  // offers them (chunked by maxBulkRequestLength, 413 handled). Credentials follow each object's
  // declared authorizations. `expand` expands nested bundles.
  std::vector<Fetched> objects(const std::vector<Location>& where, bool expand = false);

  // Access URLs for (object, access method) pairs, in order; bulk where offered, 202 waited for.
  struct AccessRequest {
    Location where;
    std::string access_id;
  };
  struct AccessResult {
    std::optional<AccessUrl> url;
    std::exception_ptr error;
  };
  std::vector<AccessResult> access_urls(const std::vector<AccessRequest>& requests);

  const Settings& settings() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Downloads ------------------------------------------------------------------------------------------

struct DownloadOptions {
  std::filesystem::path dir = ".";
  std::size_t parallel = 4;
  std::uint64_t segment_bytes = 64u << 20;  // objects of at least twice this are fetched in ranged segments
  // An object with no checksum impact can verify is refused (not fetched) unless this is set; then it is
  // downloaded, checked by size only, and its DownloadResult::checksum_type stays empty.
  bool allow_unverified = false;
};

struct DownloadResult {
  std::string uri;                   // the object's drs URI (for bundle members, the member's)
  std::string id;
  std::filesystem::path path;        // where the file is (or would have been)
  std::uint64_t size = 0;
  std::string checksum_type;         // what was verified; empty when nothing could be
  enum class Status { downloaded, present, failed } status = Status::failed;
  std::uint64_t resumed_from = 0;    // bytes kept from an earlier .impact-part file
  bool no_checksum = false;          // refused: no checksum impact can verify (see allow_unverified)
  std::exception_ptr error;
};

class Progress {
 public:
  virtual ~Progress() = default;
  virtual void on_total(std::size_t /*files*/, std::uint64_t /*bytes*/) {}
  virtual void on_bytes(std::uint64_t /*done*/) {}
  virtual void on_file_done(const DownloadResult&) {}
};

// Resolves every URI (bundles into folders), fetches access URLs and downloads at most `parallel` files
// at once into `dir`: each into NAME.impact-part (resumed with Range when one is there), verified against
// the object's checksum and size, and only then renamed to NAME. A file already present and matching is
// kept. Large objects are fetched as parallel ranged segments (NAME.impact-part.K, each resumable), joined
// before the check. No transfer writes beyond the object's declared size, and nothing below `dir` is
// reached through a symbolic link (a link there fails that object with Error(io) naming it).
std::vector<DownloadResult> download(Client& client, const std::vector<std::string>& uris,
                                     const DownloadOptions& options, Progress* progress = nullptr);

std::string_view to_string(DownloadResult::Status s) noexcept;

}  // namespace impact::drs
