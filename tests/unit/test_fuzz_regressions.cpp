// Inputs found by the libFuzzer targets of tests/fuzz, each of which once crashed or hit undefined
// behaviour. Each must now be refused cleanly (nullopt or impact::Error).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "impact/beacon.hpp"
#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "impact/oidc.hpp"
#include "impact/passport.hpp"
#include "impact/storage.hpp"
#include "impact/retry.hpp"
#include "impact/token_store.hpp"
#include "impact/url.hpp"
#include "mini_server.hpp"

using namespace impact;

namespace {
ErrorKind kind_of_token_state(const std::string& text) {
  try {
    auth::parse_token_state(text, "fuzz.json");
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::generic;
}

std::string unsigned_visa(const std::string& payload) {
  return jwt::base64url_encode(R"({"alg":"ES256","kid":"k1","jku":"https://visas.example/jwks"})") + "." +
         jwt::base64url_encode(payload) + "." + jwt::base64url_encode(std::string(64, 'Z'));
}

class NoKeys final : public auth::KeySets {
 public:
  nlohmann::json get(const std::string&, bool) override { return {{"keys", nlohmann::json::array()}}; }
};
}  // namespace

TEST_CASE("fuzz: a login state with a huge float as expiry is corrupt, not undefined behaviour") {
  // fuzz_token_state: get<int64_t> of 1.7e74 (UBSan: outside the range of representable values).
  CHECK(kind_of_token_state(R"({"format":1,"issuer":"https://login.example/realms/impact","client_id":"pipeline",)"
                            R"("grant":"client_credentials","access_token":"at-0123456789abcdef","access_expires":1.7e74})") ==
        ErrorKind::auth_required);
  CHECK(kind_of_token_state(R"({"format":1,"access_token":"at-0123456789abcdef","refreshed":12.5})") ==
        ErrorKind::auth_required);
  // A format that is not a number threw nlohmann's type_error instead of impact::Error.
  CHECK(kind_of_token_state(R"({"format":"1","access_token":"at-0123456789abcdef"})") == ErrorKind::auth_required);
  CHECK(kind_of_token_state(R"({"format":1,"access_token":"at-0123456789abcdef","access_expires":1700000000})") ==
        ErrorKind::generic);  // still accepted
}

TEST_CASE("fuzz: an HTTP date after 2262 is refused instead of overflowing the clock") {
  // fuzz_retry: signed integer overflow converting year 4030 to system_clock nanoseconds.
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  CHECK_FALSE(http::parse_http_date("Wed, 21 Oct 4030 07:28:00 GMT"));
  CHECK_FALSE(http::parse_retry_after("Wed, 21 Oct 4030 07:28:00 GMT", now));
  CHECK_FALSE(http::parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"));
  CHECK(http::parse_http_date("Wed, 21 Oct 2150 07:28:00 GMT"));
}

TEST_CASE("fuzz: a URL host with brackets or colons outside brackets is refused") {
  // fuzz_url: "}s::1]" parsed as a host; str() then printed a URL that did not parse back.
  CHECK_FALSE(Url::parse("https://}s::1]:8443/ga4gh/drs/v1/objects/abc"));
  CHECK_FALSE(Url::parse("https://a:b:443/"));
  CHECK_FALSE(Url::parse("https://[::1]]:443/"));
  auto v6 = Url::parse("https://[::1]:8443/x");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(Url::parse(v6->str())->host == "::1");
}

TEST_CASE("fuzz: a Beacon filter that is not UTF-8 is a usage error, not a JSON exception") {
  // fuzz_beacon_query: request_body(q).dump() threw nlohmann's type_error 316 (invalid UTF-8 byte).
  try {
    beacon::parse_filter("sa\x93\x88leOrigin:blood");
    FAIL("the filter was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
  }
  beacon::Query q;
  q.filters.push_back(beacon::parse_filter("sampleOrigin:blóod"));
  CHECK_NOTHROW((void)beacon::request_body(q).dump());
}

TEST_CASE("fuzz: visa times beyond int64 are clamped, not undefined behaviour") {
  // fuzz_visa: get<int64_t> of exp 1e300 (float out of range) and exp + leeway overflowing at INT64_MAX.
  const std::string claim = R"("ga4gh_visa_v1":{"type":"T","value":"v","source":"s","by":"b","asserted":1})";
  constexpr std::int64_t limit = 1'000'000'000'000'000;
  CHECK(auth::decode_visa(unsigned_visa(R"({"iss":"https://visas.example/","exp":1e300,"iat":-1e300,)" + claim + "}")).exp == limit);
  CHECK(auth::decode_visa(unsigned_visa(R"({"iss":"https://visas.example/","iat":-1e300,)" + claim + "}")).iat == -limit);
  const auto max = unsigned_visa(R"({"iss":"https://visas.example/","iat":1,"exp":9223372036854775807,)" + claim + "}");
  CHECK(auth::decode_visa(max).exp == limit);
  NoKeys keys;
  const auto v = auth::verify_visas({max}, {{"https://visas.example/", "https://visas.example/jwks"}}, keys, 1'700'000'000);
  REQUIRE(v.size() == 1);
  CHECK_FALSE(v[0].verified);  // no key: refused for that, after the time checks ran without overflow
  CHECK(v[0].problem.find("expired") == std::string::npos);
}

TEST_CASE("fuzz: token lifetimes beyond int64 are clamped, not undefined behaviour") {
  // fuzz_oidc: static_cast<int64_t> of expires_in 1e300.
  http::Response r;
  r.status = 200;
  r.body = R"({"access_token":"at-0123456789abcdef","expires_in":1e300,"refresh_expires_in":18446744073709551615})";
  const auto t = oidc::parse_token_response(r, "test");
  REQUIRE(t.expires_in);
  CHECK(t.expires_in->count() == 10'000'000'000);
  REQUIRE(t.refresh_expires_in);
  CHECK(t.refresh_expires_in->count() == 10'000'000'000);
  r.body = R"({"access_token":"at-0123456789abcdef","expires_in":-1e300})";
  CHECK(oidc::parse_token_response(r, "test").expires_in->count() == -10'000'000'000);
}

TEST_CASE("fuzz: JWS header and JWK members of the wrong type are protocol errors") {
  // fuzz_jwt: json::value("alg", "") threw nlohmann's type_error 302 for a number.
  const auto token = [](const std::string& header) {
    return jwt::base64url_encode(header) + "." + jwt::base64url_encode(R"({"iss":"joe"})") + "." + jwt::base64url_encode("xxxxxxxx");
  };
  const auto kind_of = [](const std::string& tok, const std::string& jwks) {
    try {
      const auto jws = jwt::decode(tok);
      jwt::verify(jws, jwt::select_key(nlohmann::json::parse(jwks), jws));
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::generic;
  };
  CHECK(kind_of(token(R"({"alg":1})"), R"({"keys":[{"kty":"EC"}]})") == ErrorKind::protocol);
  CHECK(kind_of(token(R"({"alg":"ES256","kid":"a"})"), R"({"keys":[1,{"kty":"EC","kid":7}]})") == ErrorKind::protocol);
  CHECK(kind_of(token(R"({"alg":"ES256","kid":"a"})"), R"({"keys":[{"kty":"EC","kid":"a","crv":5}]})") == ErrorKind::protocol);
  CHECK(kind_of(token(R"({"alg":"ES256"})"), R"({"keys":[{"kty":7,"kid":"a"}]})") == ErrorKind::protocol);
}

TEST_CASE("fuzz: Beacon documents with members of the wrong type are read, not thrown") {
  // fuzz_beacon_response: a /map entryType that is a number threw type_error 302 out of the whole search.
  const auto map = nlohmann::json::parse(R"({"endpointSets":{"x":{"rootUrl":"https://a/other","entryType":1},)"
                                         R"("y":{"rootUrl":"https://b/individuals"}}})");
  CHECK(beacon::entry_url_from_map(map, beacon::entry_type("individuals")) == "https://b/individuals");
  // unsupportedFilters holding numbers: json::value("id", ...) on a number threw type_error 306.
  const auto body = nlohmann::json::parse(R"({"meta":{},"responseSummary":{"exists":true},)"
                                          R"("info":{"warnings":{"unsupportedFilters":[1,{"id":"HP:1"},{"id":2}]}}})");
  const auto a = beacon::parse_answer(body, beacon::Query{});
  CHECK(a.exists);
  CHECK(a.unknown_filters == std::vector<std::string>{"1", "HP:1", R"({"id":2})"});
  // resultsCount of several result sets summed past INT64_MAX (signed overflow); negative counts ignored.
  const auto sets = nlohmann::json::parse(R"({"response":{"resultSets":[{"resultsCount":9223372036854775807},)"
                                          R"({"resultsCount":9223372036854775807},{"resultsCount":-5}]}})");
  const auto b = beacon::parse_answer(sets, beacon::Query{});
  REQUIRE(b.count);
  CHECK(*b.count == std::numeric_limits<std::int64_t>::max());
  CHECK(b.exists);
}

TEST_CASE("fuzz: an introspection answer whose active is not a boolean means no expiry, not an exception") {
  // Found reading the code next to the fuzzed parsers: json::value("active", false) threw for "yes".
  test::MiniServer s([](const auto&) { return test::reply(200, R"({"active":"yes","exp":1700000000})"); });
  http::Client client(http::default_options());
  oidc::Discovery d;
  d.token_endpoint = s.url("/token");
  d.introspection_endpoint = s.url("/introspect");
  CHECK_FALSE(oidc::introspect_expiry(client, d, {"impact-cli", ""}, "at-0123456789abcdef", "access_token"));
  REQUIRE(s.requests().size() == 1);
}

TEST_CASE("fuzz: an STS Expiration beyond the clock's range is refused, not overflowed") {
  for (const char* when : {"1013-11-22T12:00:00Z", "9999-12-31T23:59:59Z"}) {
    CAPTURE(when);
    impact::http::Response r;
    r.status = 200;
    r.body = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
             "<AccessKeyId>AK</AccessKeyId><SecretAccessKey>secret-key-value-1</SecretAccessKey>"
             "<SessionToken>session-token-value-1</SessionToken><Expiration>";
    r.body += when;
    r.body += "</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    CHECK_THROWS_WITH_AS(impact::storage::parse_sts_response(r), doctest::Contains("impossible Expiration"), impact::Error);
  }
}
