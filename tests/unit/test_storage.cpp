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

// ---------------------------------------------------------------- download engine against a loopback server

#include <filesystem>

#include "impact/paths.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

namespace {
using test::MiniServer;
using test::reply;

constexpr const char* kBody = "hello world";
constexpr const char* kMd5 = "5eb63bbbe01eeed093cb22bb8f5acdc3";

storage::DownloadSummary fetch(const MiniServer& s, const std::filesystem::path& dest, std::string etag = kMd5,
                               std::uint64_t size = 11, std::uint64_t part_size = 0) {
  storage::ObjectInfo o{"run/out.txt", size, std::move(etag), ""};
  storage::DownloadOptions opt;
  opt.dest = dest;
  opt.part_size = part_size;
  const std::string base = "http://127.0.0.1:" + std::to_string(s.port());
  auto factory = [&](const storage::ObjectInfo& ob, std::optional<std::pair<std::uint64_t, std::uint64_t>> range) {
    http::Request r;
    r.url = base + "/" + ob.key;
    if (range) r.headers.push_back({"Range", "bytes=" + std::to_string(range->first) + "-" + std::to_string(range->second)});
    return r;
  };
  http::Options h = http::default_options();
  h.retry.max_attempts = 1;
  return storage::download({o}, "run/", factory, h, opt);
}
std::string etag_header(const char* etag = kMd5) { return std::string("ETag: \"") + etag + "\"\r\n"; }
}  // namespace

TEST_CASE("download verifies x-amz-checksum-* headers: sha256, crc32, crc32c") {
  for (const char* checksum : {"x-amz-checksum-sha256: uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
                               "x-amz-checksum-crc32: DUoRhQ==", "x-amz-checksum-crc32c: yZRlqg=="}) {
    CAPTURE(checksum);
    test::TempDir dir;
    MiniServer s([&](const auto&) { return reply(200, kBody, etag_header() + checksum + "\r\n"); });
    auto sum = fetch(s, dir.path());
    REQUIRE(sum.files.size() == 1);
    CHECK(sum.files[0].status == storage::FileResult::Status::downloaded);
    const std::string algo = std::string(checksum).substr(15, std::string(checksum).find(':') - 15);
    CHECK(sum.files[0].verified == "size,md5," + algo);
    CHECK(read_file(dir.path() / "out.txt") == kBody);
  }
}

TEST_CASE("a checksum or MD5 mismatch fails the object and leaves nothing behind") {
  test::TempDir dir;
  MiniServer bad_sum([](const auto&) { return reply(200, kBody, etag_header() + "x-amz-checksum-crc32: AAAAAA==\r\n"); });
  auto sum = fetch(bad_sum, dir.path());
  CHECK(sum.files[0].status == storage::FileResult::Status::failed);
  CHECK(sum.files[0].error.find("crc32 checksum mismatch") != std::string::npos);
  MiniServer bad_etag([](const auto&) { return reply(200, kBody, etag_header("00000000000000000000000000000000")); });
  sum = fetch(bad_etag, dir.path(), "00000000000000000000000000000000");
  CHECK(sum.files[0].status == storage::FileResult::Status::failed);
  CHECK(sum.files[0].error.find("MD5 mismatch") != std::string::npos);
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("a server that ignores Range cannot overrun a part") {
  test::TempDir dir;
  const std::string body(3u << 20, 'z');
  MiniServer s([&](const auto&) { return reply(200, body, "ETag: \"abc-3\"\r\n"); });
  auto sum = fetch(s, dir.path(), "abc-3", body.size(), 1u << 20);
  CHECK(sum.files[0].status == storage::FileResult::Status::failed);
  CHECK(!std::filesystem::exists(dir.path() / "out.txt"));
}

TEST_CASE("an identical file is skipped without a request") {
  test::TempDir dir;
  int requests = 0;
  MiniServer s([&](const auto&) { ++requests; return reply(200, kBody, etag_header()); });
  CHECK(fetch(s, dir.path()).files[0].status == storage::FileResult::Status::downloaded);
  CHECK(fetch(s, dir.path()).files[0].status == storage::FileResult::Status::skipped);
  CHECK(requests == 1);
}

TEST_CASE("a listing with an impossible object size is refused, not planned") {
  const std::string head = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>";
  const std::string tail = "</Size></Contents></ListBucketResult>";
  CHECK(impact::storage::parse_list_page(head + "5497558138880" + tail).objects.at(0).size == 5497558138880ull);
  for (const char* bad : {"-1", "18446744073709551615", "5497558138881", "1e9", "", "12x"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(impact::storage::parse_list_page(head + bad + tail), "the storage listed an object with an impossible size",
                         impact::Error);
  }
  CHECK_THROWS_AS(impact::storage::parse_list_page("<Error/>"), impact::Error);
}
