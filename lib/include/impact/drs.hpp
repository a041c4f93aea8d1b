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

#include "impact/crypt4gh.hpp"
#include "impact/config.hpp"
#include "impact/credentials.hpp"
#include "impact/http.hpp"
#include "impact/transfer.hpp"

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
  std::filesystem::path dest = ".";
  std::size_t parallel = transfer::Options{}.parallel;  // requests at once (see transfer::Options)
  std::uint64_t part_size = 0;                          // 0 = chosen per object
  // An object with no checksum impact can verify is refused (not fetched) unless this is set; then it is
  // downloaded and checked by size only (its `verified` says "size").
  bool allow_unverified = false;
  // With a key: an object whose bytes are a Crypt4GH stream for it is written decrypted (its name without
  // ".c4gh"): the header read once from the first bytes, the segments in ranges decrypted on the fly, each
  // authenticated; the object's checksums are of the encrypted bytes, so the file is checked by size and the
  // segments' MACs (`verified` "size,crypt4gh"). Other objects are written as they are.
  const crypt4gh::KeyPair* decrypt_with = nullptr;
};

// One object's outcome: the engine's result with its `id` the DRS URI (for bundle members, the member's).
struct DownloadResult : transfer::Result {
  std::string object_id;
  bool no_checksum = false;  // refused: no checksum impact can verify (see allow_unverified)
};
// The engine's fields, "uri" and "id" (the object id).
void to_json(nlohmann::json& j, const DownloadResult& r);

// Resolves every URI (bundles into folders named after them), gets access URLs (bulk where offered) and
// downloads through the engine (impact/transfer.hpp) into options.dest: each file named after the object
// (else its id; an unsafe name is refused), verified against the strongest checksum the object declares
// (sha-512, sha-256, sha-1, md5) and its size, resumable, the access URL asked for again once when refused.
std::vector<DownloadResult> download(Client& client, const std::vector<std::string>& uris,
                                     const DownloadOptions& options, transfer::Observer* observer = nullptr);

}  // namespace impact::drs
