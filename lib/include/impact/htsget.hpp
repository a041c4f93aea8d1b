// GA4GH htsget 1.3 (samtools/hts-specs htsget.md): slices of indexed BAM/CRAM/VCF/BCF files. A ticket
// request (GET per region, or one POST with `regions`) answers a ticket: the ordered blocks (byte ranges of
// URLs with the headers to send, inline `data:` URIs) whose concatenation is a valid file. This module reads
// service-info, asks for tickets, parses them with bounds, and assembles the blocks in order:
//
// - blocks are fetched in parallel (bounded) and written in ticket order; a large byte range is split into
//   sub-ranges (the spec allows it), so memory stays bounded by a window whatever the block sizes;
// - each block request carries exactly the headers its ticket lists: the user's token is never added (it goes
//   only to the ticket server); redirects keep the block's headers, except credentials across origins;
// - a body shorter or longer than the range asked is detected and fetched again (bounded);
// - `data:` URIs are decoded (base64 or percent-encoded);
// - a failure of any block fails the whole output (the caller's output is left uncommitted).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/http.hpp"
#include "impact/service_info.hpp"
#include "impact/transfer.hpp"

namespace impact::htsget {

enum class Endpoint { reads, variants };
std::string_view to_string(Endpoint e) noexcept;  // "reads", "variants"

// A genomic region in htsget's coordinates: 0-based start (inclusive), end exclusive; unset = open.
struct Region {
  std::string reference;
  std::optional<std::uint64_t> start, end;
};
// A region as samtools writes it, 1-based and inclusive: "chr1", "chr1:1000-2000", "chr1:1000-", "chr1:1000"
// (from 1000 to the end), "chr1:1,000-2,000". A name holding ':' may be written in braces: "{HLA:1}:5-9".
// Throws Error(usage) naming the text for a malformed region (start 0, end before start, bad number).
Region parse_region(std::string_view text);
std::string to_string(const Region& r);  // back in samtools form ("chr1:1000-2000")

// What the server says of an endpoint (service-info's `htsget` object), beside the service-info itself.
struct EndpointInfo {
  ServiceInfo service;
  std::string datatype;                  // "reads" / "variants" ("" when not given)
  std::vector<std::string> formats;      // upper case; empty: not said
  std::optional<bool> fields_effective;  // fieldsParametersEffective
  std::optional<bool> tags_effective;    // tagsParametersEffective
};
EndpointInfo parse_endpoint_info(const nlohmann::json& doc, std::string_view origin);

// One block of a ticket.
struct Block {
  std::string url;              // an http(s) URL, or "" for inline data
  http::Headers headers;        // exactly as the ticket gives them
  std::string data_class;       // "header", "body" or "" (not given)
  std::optional<std::string> data;  // the decoded bytes of a data: URI
  // A single "bytes=FIRST-LAST" Range among the headers, parsed (nullopt: none or another form).
  std::optional<transfer::Range> range;
};

struct Ticket {
  std::string format;
  std::vector<Block> blocks;
  std::string md5;  // of the concatenation, when the server gives it
};

// Bounds on what a ticket may hold (a hostile ticket cannot make impact allocate without limit).
inline constexpr std::size_t kMaxBlocks = 100'000;
inline constexpr std::size_t kMaxHeadersPerBlock = 64;
inline constexpr std::size_t kMaxHeaderBytes = 16u << 10;   // one header's name + value
inline constexpr std::size_t kMaxUrlBytes = 64u << 10;      // an http(s) URL
inline constexpr std::size_t kMaxDataBytes = 16u << 20;     // all data: blocks of a ticket, decoded

// Parses a ticket document ({"htsget": {"format", "urls": [...], "md5"}}). Throws Error(protocol) naming
// `origin` for a malformed ticket, a URL that is neither http(s) nor data:, or a bound exceeded.
Ticket parse_ticket(const nlohmann::json& doc, std::string_view origin);
// A single "bytes=FIRST-LAST" range (nullopt for any other form).
std::optional<transfer::Range> parse_byte_range(std::string_view value);
// The bytes of a data: URI (";base64" payloads and percent-encoded ones). Throws Error(protocol).
std::string decode_data_uri(std::string_view uri);

struct Query {
  Endpoint endpoint = Endpoint::reads;
  std::string id;
  std::string format;                 // "" = the server's default (BAM / VCF)
  bool header_only = false;           // class=header
  std::vector<Region> regions;        // empty = the whole file
  std::vector<std::string> fields;    // reads only
  std::vector<std::string> tags, notags;
  std::optional<std::string> public_key;  // Crypt4GH: ask for encryptionScheme=C4GH for this key (PEM)
};

// The ticket request URL of a GET for one region (or none), percent-encoded.
std::string ticket_url(const std::string& base_url, const Query& q, const Region* region);
// The JSON body of a POST with all the query's regions.
nlohmann::json post_body(const Query& q);

// The service's base URL from a URL a user or a registry gives: a trailing "/reads" or "/variants" (a
// registry lists each endpoint) and trailing slashes removed.
std::string base_url_of(std::string url);

using TokenFn = std::function<std::string()>;  // empty function: ask without a token

class Client {
 public:
  // `http` must outlive the client. `token` gives the user's token for the ticket server only.
  Client(http::Client& http, std::string base_url, TokenFn token = {});
  const std::string& base_url() const noexcept { return base_; }

  EndpointInfo info(Endpoint e);
  // The tickets for `q`: one POST when several regions are asked and the server accepts POST (a 404, 405
  // or 501 answer falls back), else one GET per region (one GET for none).
  std::vector<Ticket> tickets(const Query& q);

 private:
  http::Request request(http::Method m, std::string url, const Query& q);
  std::optional<Ticket> post(const Query& q);
  Ticket get(const Query& q, const Region* r);
  http::Client& http_;
  std::string base_;
  TokenFn token_;
};

// The blocks to write, in order, from the tickets of one query (one per region): the tickets in file order
// (by the first byte range of their body), the first whole, then the body of each further one (its blocks
// marked class "header" left out), and byte ranges of a URL already covered by an earlier ticket left out or
// cut to what is new (servers answer whole compressed blocks, so neighbouring regions share blocks: written
// twice they would repeat records out of order), and so are inline blocks written before (but for the last
// block, the EOF marker). Throws Error(protocol) when a further ticket does not mark
// its header blocks (they cannot be told apart) or the tickets disagree on the format.
std::vector<Block> assemble_order(const std::vector<Ticket>& tickets);

struct FetchOptions {
  std::size_t parallel = 8;                  // block requests in flight
  std::uint64_t part_size = 8u << 20;        // byte ranges longer than this are fetched in sub-ranges
  std::uint64_t window = 64u << 20;          // bytes fetched ahead of the output at most (plus one part)
  std::uint64_t max_unranged = 256u << 20;   // a block without a byte range is read whole, up to this
  int max_attempts = 4;                      // for a short or long body (network errors: http::Options)
};

struct FetchSummary {
  std::uint64_t bytes = 0;   // written to the sink
  std::size_t blocks = 0;    // blocks of the tickets written (data: ones included)
  std::size_t requests = 0;  // block requests made (sub-ranges and repeats included)
  std::string md5;           // checked against the ticket's, when it gave one (a single ticket)
};

// Fetches `blocks` and hands their bytes to `sink` in order. Progress goes to `observer` (on_plan with the
// blocks and the known bytes, on_bytes as bytes are written). `md5`: the expected MD5 of the whole, or "".
// Throws the Error of the first block that failed; the sink may have received a prefix by then.
FetchSummary fetch(const std::vector<Block>& blocks, const http::Options& http, const FetchOptions& options,
                   const std::function<void(std::string_view)>& sink, transfer::Observer* observer = nullptr,
                   const std::string& md5 = {});

// A file written under a temporary name beside `path` (no link followed in its folder) and renamed into place
// by commit(); destroyed uncommitted, it leaves nothing behind.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(std::string_view bytes);
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace impact::htsget
