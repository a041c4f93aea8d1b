// Beacon v2 queries: filters, request bodies and GET parameters, and reading the answers tolerantly.
#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "impact/beacon.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::beacon {

using nlohmann::json;

std::string_view to_string(Granularity g) noexcept {
  switch (g) {
    case Granularity::boolean: return "boolean";
    case Granularity::count: return "count";
    case Granularity::record: return "record";
  }
  return "boolean";
}

std::optional<Granularity> parse_granularity(std::string_view text) noexcept {
  for (auto g : {Granularity::boolean, Granularity::count, Granularity::record})
    if (text == to_string(g)) return g;
  return std::nullopt;
}

const std::vector<EntryType>& entry_types() {
  static const std::vector<EntryType> all = {
      {"individuals", "individual"}, {"biosamples", "biosample"}, {"g_variants", "genomicVariant"},
      {"runs", "run"},               {"analyses", "analysis"},    {"datasets", "dataset"},
      {"cohorts", "cohort"},
  };
  return all;
}

const EntryType& entry_type(std::string_view name) {
  if (name == "variants") name = "g_variants";
  for (const auto& et : entry_types())
    if (et.path == name || et.id == name) return et;
  throw Error(ErrorKind::usage, fmt::format("unknown Beacon entry type '{}'", name),
              "use one of: variants, individuals, biosamples, datasets, cohorts, runs, analyses");
}

// ------------------------------------------------------------------ filters

namespace {

constexpr std::array<std::string_view, 6> kOperators = {">=", "<=", "=", "<", ">", "!"};

bool ontology_prefix(std::string_view prefix) {
  if (prefix.empty() || !std::isupper(static_cast<unsigned char>(prefix.front()))) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

Filter parse_filter(std::string_view text, bool include_descendants) {
  // The filter travels in a JSON body, which holds only UTF-8 (a Latin-1 terminal would make dump() throw).
  try {
    (void)json(std::string(text)).dump();
  } catch (const json::type_error&) {
    throw Error(ErrorKind::usage, "a `filters` term is not valid UTF-8", "type the filter in a UTF-8 terminal or script");
  }
  Filter f;
  // ID:OP:VALUE, at the first ':' that is followed by an operator and another ':'.
  for (std::size_t i = text.find(':'); i != std::string_view::npos; i = text.find(':', i + 1)) {
    for (auto op : kOperators) {
      if (text.substr(i + 1, op.size()) == op && text.substr(i + 1 + op.size(), 1) == ":") {
        f.kind = Filter::Kind::alphanumeric;
        f.id = std::string(text.substr(0, i));
        f.op = std::string(op);
        f.value = std::string(text.substr(i + 2 + op.size()));
        if (f.id.empty() || f.value.empty())
          throw Error(ErrorKind::usage, fmt::format("filter '{}' needs an id and a value", text),
                      "write alphanumeric filters as ID:OP:VALUE, e.g. age:>:P40Y");
        return f;
      }
    }
  }
  if (text.empty()) throw Error(ErrorKind::usage, "an empty `filters` term", "e.g. HP:0001250");
  if (text.back() == ':')  // what a shell leaves of age:>:P40Y unquoted: "age:" and a file named ":P40Y"
    throw Error(ErrorKind::usage, fmt::format("the `filters` term '{}' ends with ':'", text),
                "write alphanumeric filters as ID:OP:VALUE, e.g. age:>:P40Y, and quote them for a shell ('age:>:P40Y'): "
                "it reads > and < as redirections");
  f.id = std::string(text);
  const auto colon = text.find(':');
  f.kind = colon != std::string_view::npos && colon + 1 < text.size() && ontology_prefix(text.substr(0, colon))
               ? Filter::Kind::ontology
               : Filter::Kind::custom;
  f.include_descendants = include_descendants;
  return f;
}

json to_json(const Filter& f) {
  switch (f.kind) {
    case Filter::Kind::alphanumeric: return {{"id", f.id}, {"operator", f.op}, {"value", f.value}};
    case Filter::Kind::ontology: return {{"id", f.id}, {"includeDescendantTerms", f.include_descendants}};
    case Filter::Kind::custom: break;
  }
  return {{"id", f.id}};
}

// ------------------------------------------------------------------ variant parameters

bool VariantQuery::empty() const {
  return reference_name.empty() && reference_bases.empty() && alternate_bases.empty() && assembly_id.empty() &&
         variant_type.empty() && gene_id.empty() && start.empty() && end.empty() && !min_length && !max_length;
}

// Messages name the Beacon request parameters in backquotes (`referenceName`): a program that takes them
// under other names (the CLI's --chrom) puts its own in their place.
void VariantQuery::validate() const {
  auto bad = [](std::string msg, std::string hint) { throw Error(ErrorKind::usage, std::move(msg), std::move(hint)); };
  if (start.size() > 2 || end.size() > 2) bad("give at most two `start` and two `end` values", "two values make a bracket query");
  if (!start.empty() && reference_name.empty()) bad("`start` needs `referenceName`", "e.g. `referenceName` 17 with `start` 43045711");
  if (!end.empty() && start.empty()) bad("`end` needs `start`", "positions are 0-based: `start` 43045711 with `end` 43045712");
  if (start.empty() && !reference_name.empty() && gene_id.empty())
    bad("`referenceName` needs `start` (or search by `geneId`)", "e.g. `referenceName` 17, `start` 43045711, `alternateBases` G");
  if (!start.empty() && end.empty() && alternate_bases.empty() && variant_type.empty())
    bad("a query with `start` but no `end` needs `alternateBases` (or `variantType`)",
        "add `alternateBases` G for a sequence query, or `end` N for a range query");
  for (auto v : start)
    if (v < 0) bad("`start` must not be negative", "positions are 0-based");
  for (auto v : end)
    if (v < 1) bad("`end` must be at least 1", "positions are 0-based, end exclusive");
  if (start.size() == 1 && end.size() == 1 && end[0] <= start[0]) bad("`end` must be greater than `start`", "the range is [start, end)");
  if ((min_length && *min_length < 0) || (max_length && *max_length < 0)) bad("variant lengths must not be negative", "");
  if (min_length && max_length && *min_length > *max_length) bad("`variantMinLength` is greater than `variantMaxLength`", "");
  auto bases = [&](const std::string& b, const char* parameter) {
    if (!b.empty() && !std::all_of(b.begin(), b.end(), [](char c) { return std::string_view("ACGTNacgtn").find(c) != std::string_view::npos; }))
      bad(fmt::format("`{}` must be bases (A, C, G, T, N)", parameter), "");
  };
  bases(reference_bases, "referenceBases");
  bases(alternate_bases, "alternateBases");
}

namespace {

json request_parameters(const VariantQuery& v) {
  json rp = json::object();
  auto str = [&](const char* k, const std::string& s) {
    if (!s.empty()) rp[k] = s;
  };
  str("assemblyId", v.assembly_id);
  str("referenceName", v.reference_name);
  if (!v.start.empty()) rp["start"] = v.start;
  if (!v.end.empty()) rp["end"] = v.end;
  str("referenceBases", v.reference_bases);
  str("alternateBases", v.alternate_bases);
  str("variantType", v.variant_type);
  str("geneId", v.gene_id);
  if (v.min_length) rp["variantMinLength"] = *v.min_length;
  if (v.max_length) rp["variantMaxLength"] = *v.max_length;
  return rp;
}

}  // namespace

json request_body(const Query& q) {
  json query = {
      {"requestedGranularity", to_string(q.granularity)},
      {"pagination", {{"skip", q.skip}, {"limit", q.limit}}},
      {"includeResultsetResponses", "HIT"},
  };
  if (!q.filters.empty()) {
    json fs = json::array();
    for (const auto& f : q.filters) fs.push_back(to_json(f));
    query["filters"] = std::move(fs);
  }
  if (!q.variant.empty()) query["requestParameters"] = request_parameters(q.variant);
  return {{"meta", {{"apiVersion", api_version}}}, {"query", std::move(query)}};
}

std::string query_string(const Query& q) {
  std::string out = fmt::format("requestedGranularity={}&skip={}&limit={}", to_string(q.granularity), q.skip, q.limit);
  std::string ids;
  for (const auto& f : q.filters) {
    if (f.kind == Filter::Kind::alphanumeric || (f.kind == Filter::Kind::ontology && !f.include_descendants))
      throw Error(ErrorKind::usage, fmt::format("filter '{}' cannot be sent to a beacon that only answers GET", f.id),
                  "GET requests carry only filter ids; drop the filter or ask other beacons");
    ids += (ids.empty() ? "" : ",") + f.id;
  }
  if (!ids.empty()) out += "&filters=" + percent_encode(ids);
  const json rp = request_parameters(q.variant);  // items() must not outlive what it iterates
  for (const auto& [k, v] : rp.items()) {
    std::string value;
    if (v.is_array()) {
      for (const auto& x : v) {
        if (!value.empty()) value += ',';
        value += x.dump();
      }
    } else {
      value = detail::as_text(v);
    }
    out += "&" + k + "=" + percent_encode(value);
  }
  return out;
}

json flat_request_parameters(const json& rp) {
  if (!rp.is_object()) return json::object();
  if (auto it = rp.find("g_variant"); it != rp.end() && it->is_object()) return *it;
  return rp;
}

// ------------------------------------------------------------------ answers

std::optional<std::string> error_message(const json& body) {
  if (!body.is_object()) return std::nullopt;
  auto e = body.find("error");
  if (e == body.end() || !e->is_object()) return std::nullopt;
  if (const auto* m = detail::member(*e, "errorMessage", json::value_t::string)) return m->get<std::string>();
  return std::string("error ") + e->value("errorCode", json(0)).dump();
}

namespace {

using detail::member;

void add_unique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

void read_info(const json& info, Answer& a) {
  if (!info.is_object()) return;
  if (auto* m = member(info, "messages", json::value_t::array))
    for (const auto& s : *m) add_unique(a.messages, detail::as_text(s));
  if (auto* w = member(info, "warnings", json::value_t::object)) {
    for (const auto& [k, v] : w->items()) {
      if (k == "unsupportedFilters" && v.is_array()) {
        for (const auto& f : v) {
          const auto* id = member(f, "id", json::value_t::string);
          add_unique(a.unknown_filters, f.is_string() ? f.get<std::string>() : id ? id->get<std::string>() : f.dump());
        }
      } else {
        add_unique(a.messages, fmt::format("{}: {}", k, detail::as_text(v)));
      }
    }
  }
}

}  // namespace

Answer parse_answer(const json& body, const Query& sent) {
  if (!body.is_object()) throw Error(ErrorKind::protocol, "the beacon's answer is not a JSON object");
  Answer a;
  const json empty = json::object();
  const json* meta = member(body, "meta", json::value_t::object);
  const json* summary = member(body, "responseSummary", json::value_t::object);
  const json* response = member(body, "response", json::value_t::object);

  bool has_records = false;
  std::int64_t set_total = 0;
  bool set_counts = false;
  if (response) {
    if (auto* sets = member(*response, "resultSets", json::value_t::array)) {
      has_records = true;
      for (const auto& rs : *sets) {
        if (auto* results = member(rs, "results", json::value_t::array))
          for (const auto& r : *results) a.records.push_back(r);
        if (auto n = detail::integer_member(rs, "resultsCount"); n && *n >= 0) {
          constexpr auto most = std::numeric_limits<std::int64_t>::max();
          set_total = *n > most - set_total ? most : set_total + *n;  // a hostile sum must not overflow
          set_counts = true;
        }
      }
    } else if (auto* cols = member(*response, "collections", json::value_t::array)) {
      has_records = true;
      a.records = *cols;
    }
  }
  a.count = detail::integer_member(summary ? *summary : empty, "numTotalResults");
  if (!a.count && set_counts) a.count = set_total;
  if (auto* e = summary ? member(*summary, "exists", json::value_t::boolean) : nullptr) {
    a.exists = e->get<bool>();
  } else if (has_records || a.count) {
    a.exists = !a.records.empty() || (a.count && *a.count > 0);
  } else {
    throw Error(ErrorKind::protocol, "the beacon's answer has no responseSummary.exists");
  }
  const auto* returned_member = meta ? member(*meta, "returnedGranularity", json::value_t::string) : nullptr;
  const auto returned = returned_member ? parse_granularity(returned_member->get<std::string>()) : std::nullopt;
  a.granularity = returned ? *returned : has_records ? Granularity::record : a.count ? Granularity::count : Granularity::boolean;

  if (auto* info = member(body, "info", json::value_t::object)) read_info(*info, a);
  // Which of our variant parameters the beacon says it received (flat or nested, both are seen).
  if (meta && !sent.variant.empty()) {
    if (auto* rrs = member(*meta, "receivedRequestSummary", json::value_t::object); rrs && rrs->contains("requestParameters")) {
      const json echo = flat_request_parameters((*rrs)["requestParameters"]);
      const json sent_rp = request_parameters(sent.variant);
      for (const auto& [k, v] : sent_rp.items())
        if (!echo.contains(k)) a.ignored_parameters.push_back(k);
    }
  }
  return a;
}

}  // namespace impact::beacon
