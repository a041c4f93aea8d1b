#include <doctest/doctest.h>

#include "impact/error.hpp"
#include "impact/url.hpp"

using namespace impact;

TEST_CASE("Url::parse") {
  auto u = Url::parse("HTTPS://User:pw@Example.ORG:8443/a/b?x=1#f");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "example.org");
  CHECK(u->port == 8443);
  CHECK(u->path == "/a/b");
  CHECK(u->query == "x=1");
  CHECK(u->userinfo == "User:pw");
  CHECK(u->str() == "https://example.org:8443/a/b?x=1");

  auto v6 = Url::parse("http://[::1]:9000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9000);
  CHECK(v6->path == "/");
  CHECK(v6->origin() == "http://[::1]:9000");

  CHECK(Url::parse("https://h")->port == 443);
  CHECK(Url::parse("http://h")->port == 80);
  for (const char* bad : {"", "h/path", "://h", "https://", "https://h:0", "https://h:70000", "https://h:8x",
                          "http://[::1", "https://a b/"}) {
    CAPTURE(bad);
    CHECK_FALSE(Url::parse(bad).has_value());
  }
}

TEST_CASE("loopback detection") {
  CHECK(Url::parse("http://127.0.0.1:1/")->is_loopback());
  CHECK(Url::parse("http://127.8.9.10/")->is_loopback());
  CHECK(Url::parse("http://localhost:1/")->is_loopback());
  CHECK(Url::parse("http://[::1]:1/")->is_loopback());
  CHECK_FALSE(Url::parse("http://128.0.0.1/")->is_loopback());
  CHECK_FALSE(Url::parse("http://10.0.0.1/")->is_loopback());
  CHECK_FALSE(Url::parse("http://localhost.evil.example/")->is_loopback());
  CHECK_FALSE(Url::parse("http://127.0.0.1.nip.io/")->is_loopback());
}

TEST_CASE("require_allowed_url: https anywhere, http only to loopback") {
  CHECK_NOTHROW(require_allowed_url("https://wes.example.org/ga4gh/wes/v1"));
  CHECK_NOTHROW(require_allowed_url("http://127.0.0.1:18020/ga4gh/wes/v1"));
  CHECK_NOTHROW(require_allowed_url("http://[::1]:18020/"));
  try {
    require_allowed_url("http://wes.example.org/", "the WES endpoint");
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()).find("refusing plain http to wes.example.org") != std::string::npos);
    CHECK(!e.hint().empty());
  }
  CHECK_THROWS_AS(require_allowed_url("ftp://127.0.0.1/"), Error);
  CHECK_THROWS_AS(require_allowed_url("file:///etc/passwd"), Error);
  CHECK_THROWS_AS(require_allowed_url("not a url"), Error);
}

TEST_CASE("join_url and percent_encode") {
  CHECK(join_url("https://h/api/", "/service-info") == "https://h/api/service-info");
  CHECK(join_url("https://h/api", "service-info") == "https://h/api/service-info");
  CHECK(join_url("https://h", "") == "https://h/");
  CHECK(percent_encode("a b/c~d") == "a%20b%2Fc~d");
  CHECK(percent_encode("a b/c", true) == "a%20b/c");
  CHECK(percent_encode("é") == "%C3%A9");
}
