#include <doctest/doctest.h>

#include "impact/error.hpp"
#include "impact/redact.hpp"

using namespace impact;

namespace {
const std::string kJwt =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
}

TEST_CASE("JWT-shaped strings are masked wherever they appear") {
  auto out = redact("token=" + kJwt + " and more");
  CHECK(out.find("eyJ") == std::string::npos);
  CHECK(out == "token=REDACTED and more");
  CHECK(redact("[\"" + kJwt + "\"]") == "[\"REDACTED\"]");
}

TEST_CASE("remembered secrets are masked, short values are not remembered") {
  remember_secret("opaque-refresh-token-0123456789");
  remember_secret("short");
  CHECK(redact("refresh opaque-refresh-token-0123456789!") == "refresh REDACTED!");
  CHECK(redact("a short word") == "a short word");
}

TEST_CASE("bearer and basic credentials in free text") {
  CHECK(redact("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer REDACTED");
  CHECK(redact("basic dXNlcjpwYXNzd29yZA==") == "basic REDACTED");
  CHECK(redact("Bearer of bad news") == "Bearer of bad news");  // too short to be a credential
}

TEST_CASE("redact_url removes user-info and sensitive query values") {
  CHECK(redact_url("https://user:pw@s3.example.org/b/k?X-Amz-Signature=abc123&X-Amz-Expires=300") ==
        "https://s3.example.org/b/k?X-Amz-Signature=REDACTED&X-Amz-Expires=300");
  CHECK(redact_url("https://h/p?X-Amz-Credential=AKID%2F2026&X-Amz-Security-Token=tok&page_token=7") ==
        "https://h/p?X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&page_token=REDACTED");
  CHECK(redact_url("https://h/cb?code=xyz&state=1#frag") == "https://h/cb?code=REDACTED&state=1#frag");
  CHECK(redact_url("https://h/objects/abc?expand=true") == "https://h/objects/abc?expand=true");
  CHECK(redact_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/");
  CHECK(redact_url("https://h/x?access_token=" + kJwt) == "https://h/x?access_token=REDACTED");
}

TEST_CASE("presigned URLs: Signature V2 and V4 lose their signatures and key ids") {
  CHECK(redact_url("http://127.0.0.1:7480/results/runs/r/out.txt?AWSAccessKeyId=AKIAEXAMPLE&Signature=abc%2Bdef%3D&Expires=1799999999") ==
        "http://127.0.0.1:7480/results/runs/r/out.txt?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1799999999");
  CHECK(redact_url("https://s3.example.org/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261204%2Fus-east-1"
                   "&X-Amz-Date=20261204T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd") ==
        "https://s3.example.org/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED"
        "&X-Amz-Date=20261204T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED");
}

TEST_CASE("headers: credentials are masked, others pass") {
  CHECK(is_sensitive_header("Authorization"));
  CHECK(is_sensitive_header("x-amz-security-token"));
  CHECK(is_sensitive_header("Cookie"));
  CHECK(is_sensitive_header("X-Passport"));
  CHECK_FALSE(is_sensitive_header("Content-Type"));
  CHECK(redact_header("Authorization", "Bearer abc.def.ghi") == "Bearer REDACTED");
  CHECK(redact_header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/2026, Signature=ff") == "REDACTED");
  CHECK(redact_header("Set-Cookie", "session=1") == "REDACTED");
  CHECK(redact_header("Content-Type", "application/json") == "application/json");
  CHECK(redact_header("Location", "https://s3/b/k?X-Amz-Signature=zz") == "https://s3/b/k?X-Amz-Signature=REDACTED");
}

TEST_CASE("error messages and hints are redacted when the error is made") {
  Error e(ErrorKind::protocol, "bad token " + kJwt, "retry with " + kJwt);
  CHECK(std::string(e.what()) == "bad token REDACTED");
  CHECK(e.hint() == "retry with REDACTED");
  e.with_url("https://h/x?X-Amz-Signature=secret");
  CHECK(e.url() == "https://h/x?X-Amz-Signature=REDACTED");
}
