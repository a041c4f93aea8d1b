// GA4GH Beacon v2 client: the query model, the request body, tolerant response parsing, the metadata
// documents (/info, /map, /configuration, /filtering_terms, cached with a TTL) and the federated search
// that asks many beacons at once and merges their answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/http.hpp"

namespace impact::beacon {

inline constexpr const char* api_version = "v2.1.1";  // what we send in meta.apiVersion

enum class Granularity { boolean, count, record };
std::string_view to_string(Granularity g) noexcept;
std::optional<Granularity> parse_granularity(std::string_view text) noexcept;

// Entry types by their endpoint path ("individuals", "g_variants", ...).
struct EntryType {
  std::string_view path;  // endpoint path below the base URL
  std::string_view id;    // entry type id in /map and /configuration ("genomicVariant")
};
const std::vector<EntryType>& entry_types();
// Accepts the path, the id, and "variants" for g_variants. Throws Error(usage) for anything else.
const EntryType& entry_type(std::string_view name);

struct Filter {
  enum class Kind { ontology, alphanumeric, custom };
  Kind kind = Kind::ontology;
  std::string id;
  std::string op;             // alphanumeric only: = < > ! >= <=
  std::string value;          // alphanumeric only
  bool include_descendants = true;  // ontology only
};
// "HP:0001250" (ontology: an upper-case prefix), "sampleOrigin:blood" (custom), "age:>:P40Y" or
// "age:>=:P40Y" (alphanumeric: ID:OP:VALUE). Throws Error(usage) for an empty id or value.
Filter parse_filter(std::string_view text, bool include_descendants = true);
nlohmann::json to_json(const Filter& f);  // the spec's FilteringTerm shape

// genomicVariations request parameters (0-based, as the spec says). Empty members are not sent.
struct VariantQuery {
  std::string reference_name, reference_bases, alternate_bases, assembly_id, variant_type, gene_id;
  std::vector<std::int64_t> start, end;
  std::optional<std::int64_t> min_length, max_length;
  bool empty() const;
  // Checks the combinations the spec requires (start needs referenceName, at most two starts/ends, ...).
  void validate() const;
};

struct Query {
  std::string entry = "individuals";  // endpoint path
  std::vector<Filter> filters;
  VariantQuery variant;
  Granularity granularity = Granularity::boolean;
  int limit = 10;
  int skip = 0;  // in pages, as the spec says
};

// The POST body: {meta: {apiVersion}, query: {requestParameters (flat), filters, pagination,
// requestedGranularity, includeResultsetResponses}}.
nlohmann::json request_body(const Query& q);
// The same query as GET parameters (for beacons that only answer GET). Throws Error(usage) when the query
// cannot be said in a URL (alphanumeric filters, or ontology terms without descendants).
std::string query_string(const Query& q);
// requestParameters as a flat object, whether the server wrote it flat or as {"g_variant": {...}}.
nlohmann::json flat_request_parameters(const nlohmann::json& rp);

// One beacon's answer to a query.
struct Answer {
  bool exists = false;
  std::optional<std::int64_t> count;
  Granularity granularity = Granularity::boolean;  // what the beacon actually returned
  nlohmann::json records = nlohmann::json::array();  // where granted; each tagged with "_resultSet" when known
  std::vector<std::string> messages;        // info.messages, and anything odd we noticed
  std::vector<std::string> unknown_filters; // filters the beacon said (or its terms show) it does not know
  std::vector<std::string> ignored_parameters;  // variant parameters missing from the beacon's echo
};
// Reads a 2xx beacon response, tolerating missing optional meta fields. Throws Error(protocol).
Answer parse_answer(const nlohmann::json& body, const Query& sent);

// The message of a beacon error body ({error: {errorCode, errorMessage}}), if it is one.
std::optional<std::string> error_message(const nlohmann::json& body);

// ------------------------------------------------------------------ metadata documents and their cache

enum class Document { info, map, configuration, filtering_terms };
std::string_view to_string(Document d) noexcept;

// JSON files under `dir` (normally cache_home()/beacon), one per beacon URL and document, fresh for `ttl`.
class Cache {
 public:
  Cache(std::filesystem::path dir, std::chrono::seconds ttl) : dir_(std::move(dir)), ttl_(ttl) {}
  std::optional<nlohmann::json> get(const std::string& base_url, Document d) const;
  void put(const std::string& base_url, Document d, const nlohmann::json& body) const;  // best effort
  std::filesystem::path file(const std::string& base_url, Document d) const;

 private:
  std::filesystem::path dir_;
  std::chrono::seconds ttl_;
};

// A beacon to ask. `token` is sent as a bearer token when not empty: the caller fills it only for the
// beacons of the profile.
struct Target {
  std::string name;
  std::string url;    // base URL (…/api)
  std::string token;
};

struct Settings {
  http::Options http;                              // transport settings (observer, CA, user agent)
  std::chrono::milliseconds timeout{10'000};       // per beacon and request
  std::size_t max_parallel = 16;
  std::optional<Cache> cache;                      // none: always fetch
};

// What one beacon said to a document request.
struct Fetched {
  std::map<Document, nlohmann::json> docs;  // the documents' `response` objects (or whole bodies)
  std::map<Document, std::string> missing;  // documents it could not give, and why
  std::optional<Error> error;               // set when the beacon did not answer at all
};
// Fetches `which` from every target in parallel, cached documents first.
std::vector<Fetched> fetch_documents(const std::vector<Target>& targets, const std::vector<Document>& which,
                                     const Settings& settings);

// The filter ids a beacon lists in its /filtering_terms response.
std::vector<std::string> filter_ids(const nlohmann::json& filtering_terms);
// The query URL for an entry type from a /map response ("" when the map does not list it).
std::string entry_url_from_map(const nlohmann::json& map, const EntryType& et);

// ------------------------------------------------------------------ the federated search

struct BeaconResult {
  std::string name, url;
  bool answered = false;
  bool supported = true;     // false: the beacon's /map does not offer this entry type (not an error)
  std::string method;        // POST, or GET when the beacon refused POST
  double seconds = 0;
  Answer answer;
  std::optional<Error> error;  // why it did not answer
};

struct SearchResult {
  Query query;
  std::vector<BeaconResult> beacons;
  std::size_t failed() const;
};

SearchResult search(const std::vector<Target>& targets, const Query& q, const Settings& settings);

void to_json(nlohmann::json& j, const BeaconResult& r);
void to_json(nlohmann::json& j, const SearchResult& r);

}  // namespace impact::beacon
