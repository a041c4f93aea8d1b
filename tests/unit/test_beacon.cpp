// Beacon v2 client: filters, request bodies, tolerant answers, the metadata cache, and the federated search
// against in-process servers (GET fallback, a stalled beacon, where tokens go).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "impact/beacon.hpp"
#include "impact/paths.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using namespace impact::beacon;
using nlohmann::json;
using impact::test::MiniServer;
using impact::test::reply;

TEST_CASE("filters: ontology, custom and alphanumeric forms") {
  auto f = parse_filter("HP:0001250");
  CHECK(f.kind == Filter::Kind::ontology);
  CHECK(to_json(f) == json{{"id", "HP:0001250"}, {"includeDescendantTerms", true}});
  CHECK(to_json(parse_filter("NCIT:C20197", false)) == json{{"id", "NCIT:C20197"}, {"includeDescendantTerms", false}});
  auto c = parse_filter("sampleOrigin:blood");
  CHECK(c.kind == Filter::Kind::custom);
  CHECK(to_json(c) == json{{"id", "sampleOrigin:blood"}});
  auto a = parse_filter("age:>:P40Y");
  CHECK(a.kind == Filter::Kind::alphanumeric);
  CHECK(to_json(a) == json{{"id", "age"}, {"operator", ">"}, {"value", "P40Y"}});
  auto ge = parse_filter("diseases.ageOfOnset:>=:P3Y");
  CHECK(ge.id == "diseases.ageOfOnset");
  CHECK(ge.op == ">=");
  CHECK(parse_filter("sex:=:NCIT:C16576").value == "NCIT:C16576");  // the value may hold colons
  CHECK_THROWS_AS(parse_filter(""), Error);
  CHECK_THROWS_AS(parse_filter("age:>:"), Error);
  // What a shell leaves of an unquoted age:>:P40Y (the rest went to a file ":P40Y").
  try {
    parse_filter("age:");
    FAIL("age: was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == impact::ErrorKind::usage);
    CHECK(std::string(e.what()) == "the `filters` term 'age:' ends with ':'");
    CHECK(e.hint().find("quote them for a shell ('age:>:P40Y')") != std::string::npos);
  }
}

TEST_CASE("entry types by path, id and the 'variants' alias") {
  CHECK(entry_type("variants").path == "g_variants");
  CHECK(entry_type("genomicVariant").path == "g_variants");
  CHECK(entry_type("cohorts").id == "cohort");
  CHECK_THROWS_AS(entry_type("patients"), Error);
}

TEST_CASE("the POST body has meta.apiVersion, the query and flat variant parameters") {
  Query q;
  q.entry = "g_variants";
  q.granularity = Granularity::count;
  q.limit = 5;
  q.skip = 2;
  q.filters = {parse_filter("HP:0001250")};
  q.variant.reference_name = "17";
  q.variant.start = {43045711};
  q.variant.alternate_bases = "G";
  q.variant.assembly_id = "GRCh38";
  q.variant.min_length = 1;
  const json b = request_body(q);
  CHECK(b["meta"]["apiVersion"] == api_version);
  CHECK(b["query"]["requestedGranularity"] == "count");
  CHECK(b["query"]["pagination"] == json{{"skip", 2}, {"limit", 5}});
  CHECK(b["query"]["filters"][0]["id"] == "HP:0001250");
  const json& rp = b["query"]["requestParameters"];
  CHECK(rp["start"] == json::array({43045711}));
  CHECK(rp["referenceName"] == "17");
  CHECK(rp["variantMinLength"] == 1);
  CHECK_FALSE(rp.contains("end"));
  CHECK_FALSE(request_body(Query{})["query"].contains("requestParameters"));

  const auto qs = query_string(q);
  CHECK(qs.find("requestedGranularity=count") != std::string::npos);
  CHECK(qs.find("start=43045711") != std::string::npos);
  CHECK(qs.find("filters=HP%3A0001250") != std::string::npos);
  q.filters.push_back(parse_filter("age:>:P40Y"));
  CHECK_THROWS_AS(query_string(q), Error);  // a URL cannot say it: the beacon is reported, not misled
}

TEST_CASE("variant queries are checked before anything is sent") {
  VariantQuery v;
  v.start = {10};
  CHECK_THROWS_AS(v.validate(), Error);  // no referenceName
  v.reference_name = "17";
  CHECK_THROWS_AS(v.validate(), Error);  // start alone needs alternateBases or an end
  v.alternate_bases = "G";
  CHECK_NOTHROW(v.validate());
  v.end = {5};
  CHECK_THROWS_AS(v.validate(), Error);  // end before start
  v.end = {20};
  CHECK_NOTHROW(v.validate());
  v.alternate_bases = "X";
  CHECK_THROWS_AS(v.validate(), Error);
  VariantQuery gene;
  gene.gene_id = "BRCA1";
  CHECK_NOTHROW(gene.validate());
  // The messages name the Beacon parameters (in backquotes), not any program's flags.
  VariantQuery lone;
  lone.start = {10};
  try {
    lone.validate();
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "`start` needs `referenceName`");
    CHECK(e.kind() == ErrorKind::usage);
  }
}

TEST_CASE("answers: minimal meta, counts, result sets, collections") {
  Query q;
  // No meta at all, only the summary: a boolean answer.
  auto a = parse_answer(json::parse(R"({"responseSummary":{"exists":true}})"), q);
  CHECK(a.exists);
  CHECK(a.granularity == Granularity::boolean);
  CHECK_FALSE(a.count);
  // A count without returnedGranularity is a count.
  a = parse_answer(json::parse(R"({"meta":{"apiVersion":"v2.0"},"responseSummary":{"exists":true,"numTotalResults":7}})"), q);
  CHECK(a.granularity == Granularity::count);
  CHECK(a.count == 7);
  // Result sets: records from every set, the count from the sets when the summary lacks one.
  a = parse_answer(json::parse(R"({"meta":{"returnedGranularity":"record"},"responseSummary":{"exists":true},
      "response":{"resultSets":[{"id":"A","resultsCount":2,"results":[{"id":"i1"},{"id":"i2"}]},
                                {"id":"B","resultsCount":1,"results":[{"id":"i3"}]}]},
      "info":{"messages":["reduced"],"warnings":{"unsupportedFilters":["XX:1"],"other":"x"}}})"), q);
  CHECK(a.records.size() == 3);
  CHECK(a.count == 3);
  CHECK(a.unknown_filters == std::vector<std::string>{"XX:1"});
  CHECK(a.messages.size() == 2);
  a = parse_answer(json::parse(R"({"responseSummary":{"exists":true},"response":{"collections":[{"id":"DS"}]}})"), q);
  CHECK(a.granularity == Granularity::record);
  CHECK(a.records.size() == 1);
  CHECK_THROWS_AS(parse_answer(json::parse(R"({"meta":{}})"), q), Error);
  CHECK_THROWS_AS(parse_answer(json::array(), q), Error);
}

TEST_CASE("the echoed requestParameters may be flat or nested under g_variant") {
  Query q;
  q.variant.reference_name = "17";
  q.variant.start = {5};
  q.variant.alternate_bases = "G";
  for (const char* echo : {R"({"referenceName":"17","start":[5],"alternateBases":"G"})",
                           R"({"g_variant":{"referenceName":"17","start":[5],"alternateBases":"G"}})"}) {
    json body = {{"meta", {{"receivedRequestSummary", {{"requestParameters", json::parse(echo)}}}}},
                 {"responseSummary", {{"exists", false}}}};
    CHECK(parse_answer(body, q).ignored_parameters.empty());
  }
  json partial = {{"meta", {{"receivedRequestSummary", {{"requestParameters", {{"referenceName", "17"}}}}}}},
                  {"responseSummary", {{"exists", false}}}};
  CHECK(parse_answer(partial, q).ignored_parameters == std::vector<std::string>{"alternateBases", "start"});
}

TEST_CASE("map and filtering terms") {
  json map = json::parse(R"({"endpointSets":{"individual":{"entryType":"individual","rootUrl":"https://b.org/api/individuals"},
      "x":{"rootUrl":"https://b.org/api/g_variants"}}})");
  CHECK(entry_url_from_map(map, entry_type("individuals")) == "https://b.org/api/individuals");
  CHECK(entry_url_from_map(map, entry_type("variants")) == "https://b.org/api/g_variants");
  CHECK(entry_url_from_map(map, entry_type("runs")).empty());
  CHECK(filter_ids(json::parse(R"({"filteringTerms":[{"id":"HP:1","type":"ontologyTerm"},{"type":"x"}]})")) ==
        std::vector<std::string>{"HP:1"});
}

TEST_CASE("the metadata cache keeps documents for the TTL, per URL") {
  impact::test::TempDir dir;
  Cache fresh(dir.path(), std::chrono::seconds(60));
  CHECK_FALSE(fresh.get("http://127.0.0.1:1/api", Document::map));
  fresh.put("http://127.0.0.1:1/api", Document::map, json{{"a", 1}});
  CHECK(fresh.get("http://127.0.0.1:1/api", Document::map) == json{{"a", 1}});
  CHECK_FALSE(fresh.get("http://127.0.0.1:1/api", Document::configuration));
  CHECK_FALSE(fresh.get("http://127.0.0.1:2/api", Document::map));
  CHECK_FALSE(Cache(dir.path(), std::chrono::seconds(0)).get("http://127.0.0.1:1/api", Document::map));
  write_file_atomic(fresh.file("http://127.0.0.1:1/api", Document::map), "{not json");
  CHECK_FALSE(fresh.get("http://127.0.0.1:1/api", Document::map));
}

namespace {
const std::string kCount = R"({"meta":{"returnedGranularity":"count"},"responseSummary":{"exists":true,"numTotalResults":4}})";

Settings fast(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  Settings s;
  s.http = http::default_options();
  s.timeout = timeout;
  return s;
}
}  // namespace

TEST_CASE("search: a beacon that refuses POST is asked with GET; tokens go only where given") {
  MiniServer post_only([](const auto& rq) {
    if (rq.target == "/api/map") return reply(404, "{}");
    return rq.method == "POST" ? reply(200, kCount, "Content-Type: application/json\r\n") : reply(400, "{}");
  });
  MiniServer get_only([](const auto& rq) {
    if (rq.target == "/api/map") return reply(404, "{}");
    return rq.method == "GET" ? reply(200, kCount, "Content-Type: application/json\r\n") : reply(405, "{}");
  });
  Query q;
  q.granularity = Granularity::count;
  q.filters = {parse_filter("sampleOrigin:blood")};
  auto res = search({{"a", post_only.url("/api"), "secret-a"}, {"b", get_only.url("/api"), ""}}, q, fast());
  REQUIRE(res.beacons.size() == 2);
  for (const auto& b : res.beacons) {
    CHECK(b.answered);
    CHECK(b.answer.count == 4);
  }
  CHECK(res.beacons[0].method == "POST");
  CHECK(res.beacons[1].method == "GET");
  CHECK(res.failed() == 0);
  for (const auto& r : post_only.requests()) CHECK(r.headers.at("authorization") == "Bearer secret-a");
  for (const auto& r : get_only.requests()) CHECK_FALSE(r.headers.count("authorization"));
  const auto gets = get_only.requests();
  CHECK(gets.back().target.find("filters=sampleOrigin%3Ablood") != std::string::npos);
  CHECK(json::parse(post_only.requests().back().body)["meta"]["apiVersion"] == api_version);
}

TEST_CASE("search: a stalled beacon is reported after the timeout while the others answer") {
  MiniServer good([](const auto& rq) { return rq.target == "/api/map" ? reply(404, "{}") : reply(200, kCount); });
  MiniServer stalled([](const auto&) { return impact::test::Reply{"", false, true}; });
  const auto t0 = std::chrono::steady_clock::now();
  auto res = search({{"good", good.url("/api"), ""}, {"slow", stalled.url("/api"), ""}}, Query{}, fast());
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < std::chrono::seconds(5));
  CHECK(res.beacons[0].answered);
  REQUIRE(res.beacons[1].error);
  CHECK(res.beacons[1].error->kind() == ErrorKind::timeout);
  CHECK(res.failed() == 1);
  CHECK(stalled.requests().size() == 1);  // not asked a second time after /map hung
  json j = res;
  CHECK(j["summary"]["failed"] == 1);
  CHECK(j["summary"]["answered"] == 1);
  CHECK(j["beacons"][1]["error"]["kind"] == "timeout");
}

TEST_CASE("search: an error body is reported with the beacon's own message; unsupported entry types are skipped") {
  MiniServer failing([](const auto& rq) {
    if (rq.target == "/api/map") return reply(404, "{}");
    return reply(500, R"({"meta":{},"error":{"errorCode":500,"errorMessage":"database is down"}})");
  });
  MiniServer no_runs([](const auto& rq) {
    return rq.target == "/api/map" ? reply(200, R"({"response":{"endpointSets":{"individual":{"rootUrl":"x/individuals"}}}})")
                                   : reply(500, "{}");
  });
  Query q;
  q.entry = "runs";
  auto res = search({{"f", failing.url("/api"), ""}, {"n", no_runs.url("/api"), ""}}, q, fast());
  REQUIRE(res.beacons[0].error);
  CHECK(std::string(res.beacons[0].error->what()).find("database is down") != std::string::npos);
  CHECK(res.beacons[0].error->kind() == ErrorKind::server);
  CHECK_FALSE(res.beacons[1].supported);
  CHECK_FALSE(res.beacons[1].error);
  CHECK(no_runs.requests().size() == 1);  // only /map
}
