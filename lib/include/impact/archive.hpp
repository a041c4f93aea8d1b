// The download API of a NeIC Sensitive Data Archive (SDA; what GDI and Federated EGA nodes run): datasets and
// their files (v2: paged, filtered by exact path or prefix; v1 when v2 is absent), and files downloaded
// through the transfer engine, each header fetched once re-encrypted for the user's Crypt4GH key, the body in
// segment-aligned ranges decrypted on the fly (or kept encrypted), the plaintext checksum of the listing
// verified before the rename, resumed after an interruption. Facts about the real service: docs/servers.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/crypt4gh.hpp"
#include "impact/http.hpp"
#include "impact/service_info.hpp"
#include "impact/transfer.hpp"

namespace impact::archive {

// A bearer token valid for at least `min_valid` (refreshed when it would not be).
using TokenFn = std::function<std::string(std::chrono::seconds min_valid)>;

enum class Api { v2, v1 };
std::string_view to_string(Api a) noexcept;

struct Checksum {
  std::string type, value;  // type as the archive names it ("sha256", "SHA256", "md5")
};

struct File {
  std::string id;        // fileId
  std::string path;      // dataset-relative path
  std::uint64_t size = 0;            // the encrypted segments as archived (v2; v1: what the archive says)
  std::uint64_t decrypted_size = 0;  // the plaintext
  std::vector<Checksum> checksums;   // of the plaintext
};
void to_json(nlohmann::json& j, const File& f);

// ---- Listing parsers (the bodies of untrusted servers; bounded: entries, string lengths, numbers)

inline constexpr std::size_t kMaxPageEntries = 10000;
inline constexpr std::size_t kMaxPathLength = 4096;

struct DatasetPage {
  std::vector<std::string> datasets;
  std::string next;  // the page token of the next page; empty at the end
};
struct FilePage {
  std::vector<File> files;
  std::string next;
};
// Throw Error(protocol) naming what is wrong.
DatasetPage parse_datasets_v2(std::string_view body);
FilePage parse_files_v2(std::string_view body);
std::vector<std::string> parse_datasets_v1(std::string_view body);
std::vector<File> parse_files_v1(std::string_view body);

// ---- The client

struct Selection {
  std::vector<std::string> paths;     // exact dataset-relative paths
  std::vector<std::string> prefixes;  // path prefixes ("samples/")
  bool all() const { return paths.empty() && prefixes.empty(); }
};

class Client {
 public:
  // `base_url`: the API root (the origin for the SDA). `token` may be empty (no login): the archive then
  // answers 401.
  Client(http::Client& http, std::string base_url, TokenFn token);

  const std::string& base_url() const { return base_; }
  http::Client& http() { return http_; }
  ServiceInfo service_info();
  // v2, or v1 when the server has no v2 (GET /datasets is 404 and /metadata/datasets answers). Asked once.
  Api api();
  std::vector<std::string> datasets();
  // The dataset's files (all, or those under a prefix); a 403 is Error(forbidden) "no access or no such
  // dataset". Paging is bounded (kMaxPages, kMaxListTime).
  std::vector<File> files(const std::string& dataset, const std::string& prefix = {});
  // The files a selection names, each once, in the order named; a path that matches nothing is
  // Error(not_found) naming it.
  std::vector<File> select(const std::string& dataset, const Selection& s);

  // For the download sources (internal use): requests with the token.
  http::Request request(const std::string& path, std::chrono::seconds min_valid = std::chrono::seconds(60));
  bool renew_token();  // a refused token: ask for a fresh one (once per download)

  static constexpr std::size_t kMaxPages = 1000;
  static constexpr std::chrono::seconds kMaxListTime{300};

 private:
  http::Response get(const std::string& path, std::string_view what);

  http::Client& http_;
  std::string base_;
  TokenFn token_;
  std::optional<Api> api_;
  std::chrono::seconds refresh_next_{0};
};

// ---- Download

struct DownloadOptions {
  std::filesystem::path dest = ".";
  std::size_t parallel = 16;
  std::uint64_t part_size = 0;  // 0: the engine's choice
  bool keep_encrypted = false;  // write the Crypt4GH file re-encrypted for the key, as served (NAME stays)
};

struct DownloadResult : transfer::Result {
  std::string file_id;
};
void to_json(nlohmann::json& j, const DownloadResult& r);

// Downloads `files` of `dataset` below options.dest (each at its path there), decrypted with `key` unless
// keep_encrypted. Per-file failures are in the results.
std::vector<DownloadResult> download(Client& c, const std::string& dataset, const std::vector<File>& files,
                                     const crypt4gh::KeyPair& key, const DownloadOptions& options,
                                     transfer::Observer* observer = nullptr);

// The plaintext segments [first, last] of a Crypt4GH body decrypted on the fly: a transfer Filter. Given
// the body bytes from the start of `first_segment`, it drops `skip` plaintext bytes and stops after `length`.
// Exposed for tests and for other sources of Crypt4GH streams (DRS, htsget).
// A Crypt4GH stream's header read from its first bytes, `read_prefix(n)` giving the first n bytes (fewer at
// the end), asked for more while the header needs it (bounded by crypt4gh::max_header_bytes): nullptr when the
// stream does not start with the Crypt4GH magic. The header's own bytes are put in `bytes`. A header with an
// edit list is refused (ranges of such a file are not its plaintext's). Errors name `what`.
std::shared_ptr<const crypt4gh::Header> read_stream_header(const std::function<std::string(std::size_t)>& read_prefix,
                                                           const crypt4gh::KeyPair& reader, std::string_view what,
                                                           std::string* bytes = nullptr);
// The plaintext bytes in `body` bytes of encrypted segments, or nullopt when no whole number of segments
// gives that size.
std::optional<std::uint64_t> plaintext_size(std::uint64_t body);
// The encrypted range (from the start of the segments) holding plaintext [first, last].
transfer::Range segments_range(transfer::Range plain, std::uint64_t body);

std::unique_ptr<transfer::Filter> decrypting_filter(std::shared_ptr<const crypt4gh::Header> header, std::uint64_t first_segment,
                                                    std::uint64_t skip, std::uint64_t length);

}  // namespace impact::archive
