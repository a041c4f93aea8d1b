// S3-compatible object storage: credentials (static, STS AssumeRoleWithWebIdentity, presigned URLs), the
// few S3 calls impact needs (ListObjectsV2, HeadObject, ranged GetObject), and the verified, resumable,
// parallel download of many objects into a folder.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/config.hpp"
#include "impact/error.hpp"
#include "impact/http.hpp"
#include "impact/sigv4.hpp"
#include "impact/transfer.hpp"

namespace impact::auth {
class Credentials;
}

namespace impact::storage {

// ---------------------------------------------------------------- credentials

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // Keys valid for at least a few more minutes.
  virtual sigv4::Credentials get() = 0;
  // The storage refused the keys (expired, revoked): forget any cached copy so get() fetches new ones.
  virtual void invalidate() {}
};

std::unique_ptr<CredentialSource> static_keys(sigv4::Credentials keys);
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), or nullptr when not set.
std::unique_ptr<CredentialSource> keys_from_environment();
// Static keys from a file of the profile: the access key id, the secret key and optionally a session token,
// one per line. The file must not be readable by others (like ~/.ssh keys); Error(config) otherwise.
std::unique_ptr<CredentialSource> keys_from_file(const std::filesystem::path& file);

struct StsOptions {
  std::string sts_url;
  std::function<std::string()> web_identity_token;  // the user's OIDC access token for sts_url
  std::filesystem::path cache_file;                  // empty = no cache; written 0600
  std::chrono::seconds duration{3600};
  std::chrono::seconds min_valid{300};               // fetch new keys when fewer seconds remain
  std::string role_arn = "arn:aws:iam:::role/impact";
};
// Temporary keys from AssumeRoleWithWebIdentity (MinIO, AWS, the federation's RGW front), cached on disk.
std::unique_ptr<CredentialSource> sts_keys(http::Options http, StsOptions options);

// Parses an STS AssumeRoleWithWebIdentityResponse (exposed for tests).
struct TemporaryKeys {
  sigv4::Credentials keys;
  std::chrono::system_clock::time_point expires;
};
TemporaryKeys parse_sts_response(const http::Response& r);

// ---------------------------------------------------------------- S3 calls

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;           // without quotes
  std::string last_modified;  // as the server wrote it
  std::string checksum_algorithm;  // the listing's ChecksumAlgorithm ("CRC32C", ...): the object has a checksum
  http::Headers checksums;    // x-amz-checksum-<algo> (and -type) from HeadObject, names in lower case
};
void to_json(nlohmann::json& j, const ObjectInfo& o);

struct Location {
  std::string bucket;
  std::string key;  // a key or a prefix; may be empty
};
// "s3://bucket/key" -> {bucket, key}; nullopt when `text` is not an s3:// URI. Throws Error(usage) when
// it is one but malformed.
std::optional<Location> parse_s3_uri(std::string_view text);
// A run id through the profile's result_prefix template ("runs/{run_id}/"). Throws Error(usage) for ids
// with characters outside [A-Za-z0-9._-].
Location run_location(const StorageConfig& storage, std::string_view run_id);
// Throws Error(usage) unless `run_id` could be a run id (1-128 of [A-Za-z0-9._-], not "." or "..").
void check_run_id(std::string_view run_id);
// Decodes %XX escapes (a URL path into an object key).
std::string percent_decode(std::string_view text);
// Whether `url` looks like a presigned URL: X-Amz-Signature in the query (Signature V4), or Signature and
// AWSAccessKeyId (V2, which boto3 still uses for us-east-1).
bool is_presigned_url(std::string_view url);

// Turns an S3 error response into an Error with a clear message and hint (NoSuchKey, AccessDenied,
// SignatureDoesNotMatch with the clock skew, ExpiredToken, ...).
[[noreturn]] void throw_s3_error(const http::Response& r, std::string_view what);
// The x-amz-checksum-* headers among `headers` (x-amz-checksum-type included), names in lower case.
http::Headers checksum_headers(const http::Headers& headers);
// The <Code> of an S3 error body, or "".
std::string s3_error_code(std::string_view body);

// One page of a ListObjectsV2 answer. Throws Error(protocol) for anything but ListBucketResult XML, and
// for sizes that are not decimal numbers or beyond S3's 5 TiB object limit.
struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;
};
ListPage parse_list_page(std::string_view body);

// A listing pulled page by page: the next page's objects, nullopt after the last.
using ObjectPages = std::function<std::optional<std::vector<ObjectInfo>>()>;

class S3Client {
 public:
  S3Client(std::string endpoint, std::string region, CredentialSource& creds, http::Options options);

  // Every object under `prefix`, following continuation tokens (bounded: at most 100,000 pages).
  std::vector<ObjectInfo> list(const std::string& bucket, const std::string& prefix, int page_size = 1000);
  // The same listing, one page per call, each requested only when asked for (the client must outlive it).
  ObjectPages list_pages(const std::string& bucket, const std::string& prefix, int page_size = 1000);
  // HeadObject, asking for the object's x-amz-checksum-* (x-amz-checksum-mode: ENABLED).
  ObjectInfo head(const std::string& bucket, const std::string& key);
  // A signed GET of the object (with a Range when `first..last` is given), ready for http::Batch.
  http::Request get_request(const std::string& bucket, const std::string& key,
                            std::optional<std::pair<std::uint64_t, std::uint64_t>> range = std::nullopt);
  CredentialSource& credentials() noexcept { return creds_; }
  const http::Options& options() const noexcept { return options_; }

 private:
  http::Request signed_request(http::Method method, const std::string& bucket, const std::string& key,
                               std::vector<std::pair<std::string, std::string>> query, http::Headers headers);
  http::Response send(http::Method method, const std::string& bucket, const std::string& key,
                      std::vector<std::pair<std::string, std::string>> query, std::string_view what,
                      const http::Headers& headers = {});
  std::string endpoint_;
  std::string host_;
  std::string region_;
  CredentialSource& creds_;
  http::Options options_;
  http::Client client_;
};

// ---------------------------------------------------------------- download

struct DownloadOptions {
  std::filesystem::path dest = ".";
  std::vector<std::string> include;  // globs on the path relative to the prefix; empty = everything
  std::vector<std::string> exclude;
  std::size_t parallel = transfer::Options{}.parallel;  // requests at once (see transfer::Options)
  std::uint64_t part_size = 0;       // 0 = chosen per object
  // Called while planning, for an object that will be fetched in ranged parts, whose listing names a
  // checksum algorithm and whose `checksums` are still empty: fills them (HeadObject with
  // x-amz-checksum-mode). Unset = no such look-up. Small objects never need it (their GET sends them).
  std::function<void(ObjectInfo&)> full_checksum;
  // For a listing pulled page by page: keep every object's result in DownloadSummary::files (a report that
  // names them all: memory grows with their number), or hand them to the observer only (bounded memory).
  bool keep_files = true;
};

// One object's outcome: the engine's result, its `id` the object key (named "key" in JSON).
struct FileResult : transfer::Result {};
void to_json(nlohmann::json& j, const FileResult& f);

// Where the bytes of one object come from: a signed S3 request, or a presigned URL.
using RequestFactory =
    std::function<http::Request(const ObjectInfo&, std::optional<std::pair<std::uint64_t, std::uint64_t>> range)>;

struct DownloadSummary {
  // Refused keys first, then every object in the order given; for a listing pulled page by page, sorted by
  // key, and only with DownloadOptions::keep_files.
  std::vector<FileResult> files;
  std::uint64_t bytes = 0;  // received in this run
  double seconds = 0;
  std::size_t tally[3] = {};  // by FileResult::Status, refused keys among the failed
  std::size_t count(FileResult::Status s) const { return tally[static_cast<int>(s)]; }
};

// Downloads `objects` (keys under `prefix`) into options.dest through the download engine
// (impact/transfer.hpp): keys made local paths (safe_relative_path), filtered by include/exclude, each
// object's ETag its version (resume, If-Match, skipping identical files) and, for single-part uploads, its
// MD5; x-amz-checksum-* checked when sent or known, composite ones noted as not checked.
// Per-object failures are reported in the summary; the caller decides the exit code.
DownloadSummary download(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                         const RequestFactory& make_request, const http::Options& http,
                         const DownloadOptions& options, transfer::Observer* observer = nullptr);

// The same for a listing pulled page by page: the first objects' GETs start before the next page is asked
// for, and only a page or so of objects is held at a time (see transfer::SourceStream).
DownloadSummary download(ObjectPages pages, const std::string& prefix, const RequestFactory& make_request,
                         const http::Options& http, const DownloadOptions& options,
                         transfer::Observer* observer = nullptr);

// The local path for `key` under `prefix`, or an Error(usage) explaining why the key is refused
// (.., absolute, NUL or control characters, reserved names). Exposed for tests.
std::filesystem::path safe_relative_path(std::string_view key, std::string_view prefix);

// Presigned URL download: probes size and ETag, then downloads like any object. An empty object (which
// S3 answers 416 for the probe's one-byte Range) is size 0.
ObjectInfo probe_presigned(const std::string& url, const http::Options& http);

// ---------------------------------------------------------------- a WES run's outputs

// What a run's `outputs` name in the profile's object storage: `s3://bucket/key` strings, and http(s) URLs
// path-style under the storage endpoint (`ENDPOINT/bucket/key`), anywhere in the JSON. A CWL File or
// Directory object (`class`) is taken by its `location`, else its `url`; a Directory, or a location that
// ends in '/', names everything under that prefix; a Directory outside the storage is searched through its
// `listing`. Any other URL (another host, file://, a malformed s3:// URI) is skipped with a reason.
struct OutputRef {
  Location where;      // key ends in '/' for a prefix
  std::string url;     // as the run wrote it
};
struct SkippedOutput {
  std::string url;
  std::string reason;
  std::string alone;  // a target that downloads it on its own (an s3:// URI, the URL), or ""
};
struct RunOutputs {
  std::vector<OutputRef> objects;
  std::vector<SkippedOutput> skipped;
  std::vector<std::string> presigned;  // presigned http(s) URLs (is_presigned_url), wherever they point
};
void to_json(nlohmann::json& j, const SkippedOutput& s);
RunOutputs find_output_objects(const nlohmann::json& outputs, std::string_view endpoint);
// The storage location `url` names (see above), or nullopt. Throws Error(usage) for a malformed s3:// URI.
std::optional<Location> storage_location(std::string_view url, std::string_view endpoint);
// The deepest folder ("a/b/", or "") that holds every name; a name ending in '/' is a folder, which is
// held by its parent, so that it keeps its own name below the result.
std::string common_folder(const std::vector<std::string>& keys);

// The objects a run's outputs name, in one bucket (the profile's `preferred` bucket when any output is in
// it, else the first output's): each named object (HeadObject), everything under each named prefix
// (listed). Outputs in other buckets, and objects that do not exist, are added to `found.skipped`.
// `prefix` becomes the common folder of the outputs, for the local names.
struct ResolvedOutputs {
  std::string bucket;
  std::string prefix;
  std::vector<ObjectInfo> objects;
};
ResolvedOutputs resolve_outputs(S3Client& s3, RunOutputs& found, const std::string& preferred);

// The objects behind a run's presigned output URLs, fetched with no credentials: each URL probed
// (probe_presigned), keyed by its decoded path so that `prefix` (their common folder) leaves each its last
// segment(s) as local name. A URL that names no object, or the same path as another, is added to
// `skipped`; so is one whose probe fails, unless every probe fails: that error is thrown.
struct PresignedOutputs {
  std::string prefix;
  std::vector<ObjectInfo> objects;
  std::map<std::string, std::string> urls;  // object key -> its presigned URL
};
PresignedOutputs resolve_presigned(const std::vector<std::string>& urls, const http::Options& http,
                                   std::vector<SkippedOutput>& skipped);

// ---------------------------------------------------------------- what a target names

// The profile's storage keys, the first source that applies: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in
// the environment, the profile's keys_file, its STS (AssumeRoleWithWebIdentity with the user's token for
// the STS URL, cached in `sts_cache`, or in cache_home()/s3/<profile>.json when empty; fetched again when
// fewer than 5 minutes remain or the storage refused them). Throws Error(config) when the profile has no
// storage, Error(auth_required) when no source applies (or STS is named but `login` is null).
std::unique_ptr<CredentialSource> credential_chain(const Profile& profile, auth::Credentials* login,
                                                   const http::Options& http,
                                                   const std::filesystem::path& sts_cache = {});

struct ResolveInput {
  std::string target;                   // a run id, s3://BUCKET/PREFIX, s3://BUCKET/KEY or a presigned URL
  const Profile* profile = nullptr;     // needed unless the target is a presigned URL
  auth::Credentials* login = nullptr;   // the user's login: STS keys, and a run's outputs from WES
  http::Options http;
  std::filesystem::path sts_cache;      // see credential_chain
};

// What to download for a target, and how: the objects, the prefix their local names are relative to, and
// a request factory that owns what it needs (the signing keys, refreshed as they expire, or the presigned
// URLs). A run id is its result_prefix when anything is there, else the objects its WES outputs name (in
// the storage, or presigned URLs); `skipped` names the outputs left out.
struct Resolution {
  std::string bucket;                              // empty for presigned URLs
  std::string prefix;
  std::vector<ObjectInfo> objects;                 // what was found (the first page of a listing)
  ObjectPages more;                                // a listing's further pages; unset when `objects` is all
  bool from_outputs = false;                       // found through the run's WES outputs
  std::vector<SkippedOutput> skipped;
  std::string run_id;                              // when the target was a run id
  RequestFactory make_request;
  std::function<void(ObjectInfo&)> full_checksum;  // for DownloadOptions::full_checksum (signed S3 only)
};
// Throws Error(usage) for a malformed target, Error(config) when the profile cannot reach it,
// Error(not_found) when it names nothing; storage, STS and WES errors as they come.
Resolution resolve(const ResolveInput& input);
// Every object a resolution names, pulled page by page: `objects` first, then the pages of `more`.
ObjectPages pages_of(Resolution& r);
// Every object, read to the end of the listing into `objects`.
void read_all(Resolution& r);

}  // namespace impact::storage
