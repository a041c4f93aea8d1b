// The OAuth/OIDC protocol steps against a scripted in-process server: what impact sends, and how it
// reads what comes back.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/oidc.hpp"
#include "mini_server.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::reply;
using nlohmann::json;

namespace {
oidc::Discovery discovery_for(const std::string& base, std::vector<std::string> auth_methods = {}) {
  json doc = {{"issuer", base}, {"token_endpoint", base + "/token"}, {"device_authorization_endpoint", base + "/device"},
              {"userinfo_endpoint", base + "/me"}, {"revocation_endpoint", base + "/revoke"},
              {"code_challenge_methods_supported", {"plain", "S256"}},
              {"token_endpoint_auth_methods_supported", auth_methods}};
  return oidc::parse_discovery(doc, base);
}
http::Options quick() {
  auto o = http::default_options();
  o.retry.base = std::chrono::milliseconds(1);
  return o;
}
}  // namespace

TEST_CASE("discovery: the issuer must be the configured one and endpoints allowed URLs") {
  json doc = {{"issuer", "https://login.example.org"}, {"token_endpoint", "https://login.example.org/token"}};
  CHECK(oidc::parse_discovery(doc, "https://login.example.org/").token_endpoint == "https://login.example.org/token");
  CHECK_THROWS_WITH_AS(oidc::parse_discovery(doc, "https://other.example.org"),
                       doctest::Contains("calls itself 'https://login.example.org'"), Error);
  doc["userinfo_endpoint"] = "http://login.example.org/me";  // plain http to a remote host
  CHECK_THROWS_AS(oidc::parse_discovery(doc, "https://login.example.org"), Error);
  CHECK_THROWS_AS(oidc::parse_discovery(json::array(), "https://login.example.org"), Error);
}

TEST_CASE("device code request sends PKCE S256 and the scopes; the answer's interval and expiry are kept") {
  MiniServer s([](const auto&) {
    return reply(200, R"({"device_code":"dc-0123456789","user_code":"ABCD-EFGH","verification_uri":"https://x/device","expires_in":"90","interval":2})");
  });
  http::Client client(quick());
  auto d = discovery_for(s.url(""));
  auto code = oidc::request_device_code(client, d, {"impact-cli", ""}, {"openid", "offline_access"}, d.supports_s256());
  CHECK(code.user_code == "ABCD-EFGH");
  CHECK(code.interval == std::chrono::seconds(2));
  CHECK(code.expires_in == std::chrono::seconds(90));
  REQUIRE(s.requests().size() == 1);
  const auto seen = s.requests();
  const auto& body = seen[0].body;
  CAPTURE(body);
  CHECK(body.find("scope=openid%20offline_access") != std::string::npos);
  CHECK(body.find("code_challenge_method=S256") != std::string::npos);
  CHECK(body.find("client_id=impact-cli") != std::string::npos);
  CHECK(code.code_verifier.size() == 43);
}

TEST_CASE("token answers: OAuth errors become clear errors, junk is a protocol error") {
  auto answer = [](long status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  };
  auto kind_of = [&](long status, const std::string& body) {
    try {
      oidc::parse_token_response(answer(status, body), "test");
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::generic;
  };
  CHECK(kind_of(400, R"({"error":"invalid_grant"})") == ErrorKind::auth_required);
  CHECK(kind_of(401, R"({"error":"invalid_client"})") == ErrorKind::config);
  CHECK(kind_of(400, R"({"error":"access_denied"})") == ErrorKind::auth_required);
  CHECK(kind_of(200, "<html>") == ErrorKind::protocol);
  CHECK(kind_of(200, R"({"token_type":"Bearer"})") == ErrorKind::protocol);          // no access_token
  CHECK(kind_of(200, R"({"access_token":"a-token-value","token_type":"MAC"})") == ErrorKind::protocol);
  CHECK(kind_of(503, "busy") == ErrorKind::server);
  auto t = oidc::parse_token_response(answer(200, R"({"access_token":"a-token-value","token_type":"bearer","expires_in":60.5,"refresh_expires_in":1800})"), "test");
  CHECK(t.expires_in == std::chrono::seconds(60));
  CHECK(t.refresh_expires_in == std::chrono::seconds(1800));
}

TEST_CASE("a confidential client authenticates with HTTP Basic, or in the body when only that is offered") {
  MiniServer s([](const auto&) { return reply(200, R"({"access_token":"cc-token-123456","token_type":"Bearer","expires_in":60})"); });
  http::Client client(quick());
  oidc::client_credentials(client, discovery_for(s.url("")), {"ci client", "s3cr:t/value"}, {"wes"});
  REQUIRE(s.requests().size() == 1);
  // RFC 6749 2.3.1: id and secret form-encoded, then base64
  CHECK(s.requests()[0].headers.at("authorization") == "Basic Y2klMjBjbGllbnQ6czNjciUzQXQlMkZ2YWx1ZQ==");
  CHECK(s.requests()[0].body.find("s3cr") == std::string::npos);
  oidc::client_credentials(client, discovery_for(s.url(""), {"client_secret_post"}), {"ci", "s3cret-value"}, {});
  REQUIRE(s.requests().size() == 2);
  CHECK(s.requests()[1].headers.count("authorization") == 0);
  CHECK(s.requests()[1].body.find("client_secret=s3cret-value") != std::string::npos);
}

TEST_CASE("token exchange asks for a GA4GH passport and insists on getting one") {
  std::string issued = "urn:ga4gh:params:oauth:token-type:passport";
  MiniServer s([&](const auto&) {
    return reply(200, json{{"access_token", "passport-jwt-value"}, {"token_type", "Bearer"}, {"issued_token_type", issued}}.dump());
  });
  http::Client client(quick());
  auto t = oidc::exchange_for_passport(client, discovery_for(s.url("")), {"ci", "secret-value-1"}, "subject-token-value");
  CHECK(t.access_token == "passport-jwt-value");
  const auto seen = s.requests();
  const auto& body = seen[0].body;
  CAPTURE(body);
  CHECK(body.find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange") != std::string::npos);
  CHECK(body.find("requested_token_type=urn%3Aga4gh%3Aparams%3Aoauth%3Atoken-type%3Apassport") != std::string::npos);
  CHECK(body.find("subject_token=subject-token-value") != std::string::npos);
  issued = "urn:ietf:params:oauth:token-type:access_token";
  CHECK_THROWS_WITH_AS(oidc::exchange_for_passport(client, discovery_for(s.url("")), {"ci", "secret-value-1"}, "subject-token-value"),
                       doctest::Contains("not a GA4GH passport"), Error);
}
