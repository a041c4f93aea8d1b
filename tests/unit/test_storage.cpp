#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/storage.hpp"

using namespace impact;
using storage::safe_relative_path;

TEST_CASE("object keys map to paths under the destination, or are refused") {
  CHECK(safe_relative_path("runs/r1/out/a.txt", "runs/r1/") == "out/a.txt");
  CHECK(safe_relative_path("runs/r1/out/a.txt", "runs/r1/out/a.txt") == "a.txt");
  CHECK(safe_relative_path("runs/r1/out/a.txt", "runs/r1") == "r1/out/a.txt");
  CHECK(safe_relative_path("data.csv", "") == "data.csv");
  for (const char* bad : {"runs/r1/../../etc/passwd", "runs/r1//x", "runs/r1/./x", "runs/r1/a\\b", "runs/r1/CON.txt",
                          "runs/r1/x.impact-part", "runs/r1/a\x01"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(safe_relative_path(bad, "runs/r1/"), Error);
  }
  CHECK_THROWS_AS(safe_relative_path("/etc/passwd", ""), Error);
  CHECK_THROWS_AS(safe_relative_path(std::string("runs/r1/a\0b", 11), "runs/r1/"), Error);
  try {
    safe_relative_path("runs/r1/../x", "runs/r1/");
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()).find("'runs/r1/../x'") != std::string::npos);
  }
}

TEST_CASE("s3:// URIs and run ids") {
  auto l = storage::parse_s3_uri("s3://results/runs/r1/");
  REQUIRE(l);
  CHECK(l->bucket == "results");
  CHECK(l->key == "runs/r1/");
  CHECK(!storage::parse_s3_uri("https://x/y"));
  CHECK_THROWS_AS(storage::parse_s3_uri("s3://Bad_Bucket/x"), Error);
  StorageConfig st;
  st.bucket = "results";
  st.result_prefix = "out/{run_id}/final/";
  CHECK(storage::run_location(st, "run-42").key == "out/run-42/final/");
  CHECK_THROWS_AS(storage::run_location(st, "../x"), Error);
  CHECK_THROWS_AS(storage::run_location(st, "a/b"), Error);
  CHECK(storage::is_presigned_url("http://127.0.0.1:1/b/k?X-Amz-Algorithm=x&X-Amz-Signature=ab"));
  CHECK(!storage::is_presigned_url("s3://b/k"));
}

namespace {
Error s3_error(long status, const std::string& body, http::Headers headers = {}) {
  http::Response r;
  r.status = status;
  r.body = body;
  r.headers = std::move(headers);
  r.received = std::chrono::system_clock::now();
  try {
    storage::throw_s3_error(r, "downloading x");
  } catch (const Error& e) {
    return e;
  }
  FAIL("throw_s3_error returned");
  return Error(ErrorKind::generic, "");
}
std::string xml(const std::string& code, const std::string& msg = "") {
  return "<?xml version=\"1.0\"?><Error><Code>" + code + "</Code><Message>" + msg + "</Message></Error>";
}
}  // namespace

TEST_CASE("S3 error XML becomes a clear error with a hint") {
  auto e = s3_error(404, xml("NoSuchKey"));
  CHECK(e.kind() == ErrorKind::not_found);
  CHECK(std::string(e.what()).find("NoSuchKey") != std::string::npos);
  CHECK(s3_error(403, xml("AccessDenied")).kind() == ErrorKind::forbidden);
  CHECK(std::string(s3_error(403, xml("AccessDenied", "Request has expired")).what()).find("expired") != std::string::npos);
  CHECK(s3_error(400, xml("ExpiredToken")).kind() == ErrorKind::auth_required);
  // A signature mismatch from a server whose clock is 10 minutes ahead: the hint names the skew.
  const auto ahead = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::minutes(10));
  char date[64];
  std::tm tm{};
  gmtime_r(&ahead, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  auto sig = s3_error(403, xml("SignatureDoesNotMatch"), {{"Date", date}});
  CHECK(sig.kind() == ErrorKind::auth_required);
  CHECK(sig.hint().find("s behind the server") != std::string::npos);  // 599 or 600 s: the test takes time
  CHECK(s3_error(403, xml("SignatureDoesNotMatch")).hint().find("clock") != std::string::npos);
  CHECK(s3_error(503, "not xml").kind() == ErrorKind::server);
}

TEST_CASE("STS AssumeRoleWithWebIdentity answer") {
  http::Response r;
  r.status = 200;
  r.body = R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>STSKEY</AccessKeyId>
  <SecretAccessKey>secret123</SecretAccessKey><SessionToken>tok</SessionToken>
  <Expiration>2030-01-02T03:04:05.000Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>
  </AssumeRoleWithWebIdentityResponse>)";
  auto k = storage::parse_sts_response(r);
  CHECK(k.keys.access_key == "STSKEY");
  CHECK(k.keys.secret_key == "secret123");
  CHECK(k.keys.session_token == "tok");
  CHECK(std::chrono::system_clock::to_time_t(k.expires) == 1893553445);
  r.body = "<ErrorResponse/>";
  CHECK_THROWS_AS(storage::parse_sts_response(r), Error);
}
