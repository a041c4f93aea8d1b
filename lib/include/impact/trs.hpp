// GA4GH Tool Registry Service (TRS 2.x): the model, a client for one registry, and fetching a workflow
// version's files into a folder. Registries differ (docs/servers.md): WorkflowHub uses numeric ids and
// versions 1, 2, ...; Dockstore ids such as `#workflow/github.com/org/repo` go percent-encoded into paths,
// and the two disagree on what `offset` means, so listings follow the `next_page` header, never computed
// offsets.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/http.hpp"

namespace impact::trs {

struct Checksum {
  std::string type, checksum;  // type as the registry names it ("sha-256", "sha256", "md5", ...)
};

struct ToolVersion {
  std::string id, name, url;
  std::vector<std::string> descriptor_types;  // CWL, WDL, NFL, SMK, GALAXY ...
  std::vector<std::string> authors;
  std::vector<std::string> images;            // image names, for information
  std::optional<bool> is_production, verified;
  std::string meta_version;
};

struct Tool {
  std::string id, url, name, description, organization, tool_class, meta_version;
  std::vector<std::string> aliases;
  std::vector<ToolVersion> versions;
  std::vector<std::string> authors() const;       // authors over all versions, in order, without repeats
  std::vector<std::string> descriptor_types() const;
};

// One entry of `/files`: a path relative to the primary descriptor's folder and its role.
struct ToolFile {
  std::string path;
  std::string file_type;  // PRIMARY_DESCRIPTOR, SECONDARY_DESCRIPTOR, TEST_FILE, CONTAINERFILE, OTHER
  std::vector<Checksum> checksums;
};

// A descriptor or other file as the registry wraps it.
struct FileWrapper {
  std::optional<std::string> content;
  std::string url;
  std::vector<Checksum> checksums;
};

// Parsers, lenient with what they do not need; a document of the wrong shape throws Error(protocol) naming
// `origin`. Strings are bounded (ids, names 4 KiB; descriptions 64 KiB; lists 10000 entries).
Tool parse_tool(const nlohmann::json& doc, std::string_view origin);
ToolVersion parse_version(const nlohmann::json& doc, std::string_view origin);
std::vector<Tool> parse_tools(const nlohmann::json& doc, std::string_view origin);
std::vector<ToolFile> parse_files(const nlohmann::json& doc, std::string_view origin);
FileWrapper parse_file_wrapper(const nlohmann::json& doc, std::string_view origin);
void to_json(nlohmann::json& j, const Checksum& c);
void to_json(nlohmann::json& j, const ToolVersion& v);
void to_json(nlohmann::json& j, const Tool& t);
void to_json(nlohmann::json& j, const ToolFile& f);

// "ID[:VERSION]": the version follows the last ':' (ids such as Dockstore's hold '/' and '#', not ':').
// Throws Error(usage) for an empty id or an empty version after a ':'.
struct Ref {
  std::string id, version;  // version empty: none given
};
Ref parse_ref(std::string_view text);

// Descriptor types: "CWL", "WDL", "NFL", "SMK", "GALAXY" (upper-cased); anything else throws Error(usage).
std::string normalize_type(std::string_view type);

// The path of a tool below the registry's base URL: `tools/<id>` with the id percent-encoded as ONE
// segment (Dockstore's `#workflow/github.com/org/repo` -> `tools/%23workflow%2Fgithub.com%2Forg%2Frepo`).
std::string tool_path(std::string_view id);
std::string version_path(std::string_view id, std::string_view version);

// A relative file path from a registry made safe to write below a folder: '/'-separated, no empty, "."
// or ".." component, no leading '/', no backslash or control character, not impact's temporary names.
// nullopt when it cannot be made safe.
std::optional<std::string> safe_relative_path(std::string_view path);

// The TRS URI of a version, in the form WESkit reads: trs://HOST[:PORT]/<base path>/<id>/<version>/<type>
// (id and version percent-encoded).
std::string trs_uri(const std::string& base_url, const std::string& id, const std::string& version,
                    const std::string& type);

struct Registry {
  std::string name;  // the profile's name for it
  std::string url;   // base URL (…/ga4gh/trs/v2)
};

struct Query {
  std::string name, description, tool_class, descriptor_type;
  std::size_t page_size = 100;        // `limit` asked for (Dockstore caps it at 100)
  std::size_t max_items = 200;        // stop after this many tools
  std::size_t max_pages = 20;         // and after this many pages
  std::chrono::seconds deadline{60};  // and once this much time has passed
};

struct SearchResult {
  std::vector<Tool> tools;
  std::size_t pages = 0;
  bool truncated = false;  // a bound stopped the listing while the registry offered more
  std::string stopped_by;  // why, when truncated: "items", "pages", "time"
};

// Lower-case hex digest of `data` for a checksum type impact can compute (sha-512, sha-256, sha1, md5;
// spellings as drs::verifiable_checksum accepts them); nullopt for others.
std::optional<std::string> digest(std::string_view data, std::string_view type);

// Checks `data` against every checksum of a type impact can compute. Returns the type verified (the
// strongest), "" when none could be; throws Error(protocol) naming `what` on a mismatch.
std::string verify(std::string_view data, const std::vector<Checksum>& sums, std::string_view what);

class Client {
 public:
  // `http` must outlive the client. Requests are anonymous (public registries need no token).
  Client(http::Client& http, Registry registry);

  const Registry& registry() const noexcept { return registry_; }
  SearchResult search(const Query& q);
  Tool tool(const std::string& id);
  ToolVersion version(const std::string& id, const std::string& version);
  // `/files` of a version; nullopt when the registry does not offer it (404, 405, 501).
  std::optional<std::vector<ToolFile>> files(const std::string& id, const std::string& version, const std::string& type);
  // The primary descriptor (`relative_path` empty) or a file relative to it.
  FileWrapper descriptor(const std::string& id, const std::string& version, const std::string& type,
                         const std::string& relative_path = {});

 private:
  nlohmann::json get_json(const std::string& url, std::string_view what, bool server_url = false);
  http::Client& http_;
  Registry registry_;
};

struct FetchedFile {
  std::string path;       // relative to the folder
  std::string file_type;  // PRIMARY_DESCRIPTOR ...
  std::uint64_t size = 0;
  std::string verified;   // checksum type verified, "" when the registry gave none impact can check
  std::string sha256;     // computed by impact
};

struct Fetched {
  std::string id, version, type;
  std::string primary;          // the primary descriptor's path
  std::string descriptor_checksum;  // "sha-256:<hex>" of the primary descriptor
  std::vector<FetchedFile> files;
  std::vector<std::string> notes;   // files skipped, and why
};
void to_json(nlohmann::json& j, const Fetched& f);

struct FetchOptions {
  std::size_t max_files = 500;
  std::uint64_t max_total = 64u << 20;  // bytes over all files
};

// Writes the primary descriptor and every file `/files` lists (containerfiles too) below `dir` (created),
// each with its relative path, through a descriptor-held folder (nothing outside it, no link followed),
// each atomically (a temporary renamed into place after its checksum was verified). A registry without
// `/files` gives the primary descriptor alone. Throws Error(protocol) for unsafe paths or a checksum that
// does not match (files already written stay; none is half-written).
Fetched fetch(Client& client, const std::string& id, const std::string& version, const std::string& type,
              const std::filesystem::path& dir, const FetchOptions& options = {});

}  // namespace impact::trs
