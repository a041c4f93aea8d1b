#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <fmt/format.h>

#include "impact/cancel.hpp"
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
    CHECK(e.kind() == ErrorKind::protocol);
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

// Requests for an object at /KEY on `s`, with the Range asked for.
storage::RequestFactory factory_for(const MiniServer& s) {
  return [base = s.url("/")](const storage::ObjectInfo& ob, std::optional<std::pair<std::uint64_t, std::uint64_t>> range) {
    http::Request r;
    r.url = base + ob.key;
    if (range) r.headers.push_back({"Range", "bytes=" + std::to_string(range->first) + "-" + std::to_string(range->second)});
    return r;
  };
}

http::Options one_attempt() {
  http::Options h = http::default_options();
  h.retry.max_attempts = 1;
  return h;
}

storage::DownloadSummary fetch(const MiniServer& s, const std::filesystem::path& dest, std::string etag = kMd5,
                               std::uint64_t size = 11, std::uint64_t part_size = 0) {
  storage::ObjectInfo o{"run/out.txt", size, std::move(etag), "", "", {}};
  storage::DownloadOptions opt;
  opt.dest = dest;
  opt.part_size = part_size;
  return storage::download({o}, "run/", factory_for(s), one_attempt(), opt);
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
  CHECK(sum.files[0].error.find("md5 checksum mismatch") != std::string::npos);
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

// ---------------------------------------------------------------- full-object checksums of ranged downloads

namespace {
// Serves `body` honouring single Range headers, with `extra` headers on every answer.
MiniServer ranged_server(const std::string& body, std::string extra = "") {
  return MiniServer([&body, extra](const test::SeenRequest& q) {
    const auto it = q.headers.find("range");
    if (it == q.headers.end()) return reply(200, body, "ETag: \"abc-3\"\r\n" + extra);
    const auto dash = it->second.find('-');
    const std::size_t first = std::stoul(it->second.substr(6, dash - 6)), last = std::stoul(it->second.substr(dash + 1));
    return reply(206, body.substr(first, last - first + 1),
                 "ETag: \"abc-3\"\r\nContent-Range: bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                     std::to_string(body.size()) + "\r\n" + extra);
  });
}

struct RangedRun {
  storage::DownloadSummary summary;
  int asked = 0;  // full_checksum calls
};

// Downloads `body` in 1 MiB parts; the listing says the object has a SHA256 checksum, and the plan-time
// look-up answers `head_sums`.
RangedRun fetch_ranged(const MiniServer& s, const std::filesystem::path& dest, std::uint64_t size, http::Headers head_sums) {
  RangedRun run;
  storage::ObjectInfo o{"run/big.bin", size, "abc-3", "", "", {}};
  o.checksum_algorithm = "SHA256";
  storage::DownloadOptions opt;
  opt.dest = dest;
  opt.part_size = 1u << 20;
  opt.full_checksum = [&](storage::ObjectInfo& ob) {
    ++run.asked;
    ob.checksums = head_sums;
  };
  run.summary = storage::download({o}, "run/", factory_for(s), one_attempt(), opt);
  return run;
}

std::string sha256_b64(const std::string& data) {
  unsigned char d[32];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, d, sizeof d);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}
}  // namespace

TEST_CASE("a ranged download checks the full-object checksum HeadObject gives; composite ones are noted, not checked") {
  std::string body(3u << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7 + i / 4096);
  auto s = ranged_server(body);
  const std::string good = sha256_b64(body);
  test::TempDir dir;

  auto run = fetch_ranged(s, dir.path(), body.size(), {{"x-amz-checksum-sha256", good}, {"x-amz-checksum-type", "FULL_OBJECT"}});
  CHECK(run.asked == 1);
  REQUIRE(run.summary.files.size() == 1);
  CHECK(run.summary.files[0].status == storage::FileResult::Status::downloaded);
  CHECK(run.summary.files[0].verified == "size,sha256");
  CHECK(read_file(dir.path() / "big.bin") == body);

  std::filesystem::remove(dir.path() / "big.bin");
  run = fetch_ranged(s, dir.path(), body.size(), {{"x-amz-checksum-sha256", sha256_b64("other")}});
  CHECK(run.summary.files[0].status == storage::FileResult::Status::failed);
  CHECK(run.summary.files[0].error.find("sha256 checksum mismatch") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.path() / "big.bin"));

  for (const auto& composite : {http::Headers{{"x-amz-checksum-sha256", "AAAA-3"}},
                                http::Headers{{"x-amz-checksum-sha256", good}, {"x-amz-checksum-type", "COMPOSITE"}}}) {
    std::filesystem::remove_all(dir.path());
    std::filesystem::create_directories(dir.path());
    run = fetch_ranged(s, dir.path(), body.size(), composite);
    CHECK(run.summary.files[0].status == storage::FileResult::Status::downloaded);
    CHECK(run.summary.files[0].verified == "size,sha256(composite: not checked)");
  }
}

TEST_CASE("no checksum look-up for objects fetched in one request, or without a checksum in the listing") {
  test::TempDir dir;
  MiniServer s([](const auto&) { return reply(200, kBody, etag_header()); });
  storage::ObjectInfo o{"run/out.txt", 11, kMd5, "", "", {}};
  o.checksum_algorithm = "CRC32";
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  int asked = 0;
  opt.full_checksum = [&](storage::ObjectInfo&) { ++asked; };
  auto sum = storage::download({o}, "run/", factory_for(s), one_attempt(), opt);
  CHECK(sum.files[0].status == storage::FileResult::Status::downloaded);
  CHECK(asked == 0);
  // A ranged object whose listing names no checksum is not looked up either.
  const std::string body(2u << 20, 'q');
  auto big = ranged_server(body);
  storage::ObjectInfo b{"run/b.bin", body.size(), "abc-3", "", "", {}};
  opt.part_size = 1u << 20;
  sum = storage::download({b}, "run/", factory_for(big), one_attempt(), opt);
  CHECK(sum.files[0].status == storage::FileResult::Status::downloaded);
  CHECK(asked == 0);
}

TEST_CASE("a ranged response that declares a full-object checksum is checked; a part's own checksum is not used") {
  std::string body(2u << 20, 'x');
  body[12345] = 'y';
  test::TempDir dir;
  {
    auto s = ranged_server(body, "x-amz-checksum-sha256: " + sha256_b64(body) + "\r\nx-amz-checksum-type: FULL_OBJECT\r\n");
    auto run = fetch_ranged(s, dir.path(), body.size(), {});
    CHECK(run.summary.files[0].verified == "size,sha256");
  }
  {
    std::filesystem::remove(dir.path() / "big.bin");
    auto s = ranged_server(body, "x-amz-checksum-sha256: " + sha256_b64("a part") + "\r\n");  // no type: ignored
    auto run = fetch_ranged(s, dir.path(), body.size(), {});
    CHECK(run.summary.files[0].status == storage::FileResult::Status::downloaded);
    CHECK(run.summary.files[0].verified == "size");
  }
}

TEST_CASE("at most 8 ranged parts of one object are in flight, whatever --parallel allows") {
  std::string body(16u << 16, '\0');  // 16 parts of 64 KiB
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 13 + i / 512);
  std::mutex mu;
  std::map<std::string, int> now, peak;  // in flight, by object
  MiniServer s([&](const test::SeenRequest& q) {
    {
      std::lock_guard l(mu);
      peak[q.target] = std::max(peak[q.target], ++now[q.target]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    {
      std::lock_guard l(mu);
      --now[q.target];
    }
    const auto& range = q.headers.at("range");
    const auto dash = range.find('-');
    const std::size_t first = std::stoul(range.substr(6, dash - 6)), last = std::stoul(range.substr(dash + 1));
    return reply(206, body.substr(first, last - first + 1), "ETag: \"abc-16\"\r\n");
  });
  test::TempDir dir;
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  opt.part_size = 1u << 16;
  opt.parallel = 32;
  const std::vector<storage::ObjectInfo> objects{{"run/one.bin", body.size(), "abc-16", "", "", {}},
                                                 {"run/two.bin", body.size(), "abc-16", "", "", {}}};
  auto sum = storage::download(objects, "run/", factory_for(s), one_attempt(), opt);
  REQUIRE(sum.files.size() == 2);
  for (const auto& f : sum.files) CHECK(f.status == storage::FileResult::Status::downloaded);
  CHECK(read_file(dir.path() / "one.bin") == body);
  CHECK(read_file(dir.path() / "two.bin") == body);
  CHECK(peak["/run/one.bin"] == 8);
  CHECK(peak["/run/two.bin"] == 8);
  CHECK(s.max_concurrent() == 16);  // both objects at once: the bound is per object, not overall
}

TEST_CASE("each object is moved into place as it finishes: an interrupted download keeps what it completed") {
  // One at a time; the request for the 10th object interrupts (as Ctrl-C would), and its answer stops
  // halfway, so the download is cut off in the middle of that object.
  MiniServer s([](const test::SeenRequest& q) {
    if (q.target != "/run/009.txt") return reply(200, kBody, etag_header());
    request_cancel();
    auto half = reply(200, kBody, etag_header());
    half.bytes.resize(half.bytes.size() - 5);
    half.stall = true;
    return half;
  });
  std::vector<storage::ObjectInfo> objects;
  for (int i = 0; i < 30; ++i) objects.push_back({fmt::format("run/{:03}.txt", i), 11, kMd5, "", "", {}});
  test::TempDir dir;
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  opt.parallel = 1;
  try {
    storage::download(objects, "run/", factory_for(s), one_attempt(), opt);
    FAIL("not interrupted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::cancelled);
  }
  reset_cancel();
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  REQUIRE(left.size() == 9);  // 000 to 008, verified and in place; no partial file of 009
  for (int i = 0; i < 9; ++i) {
    CHECK(left[i] == fmt::format("{:03}.txt", i));
    CHECK(read_file(dir.path() / left[i]) == kBody);
  }
}

TEST_CASE("once a part fails, the object's queued parts are not fetched") {
  std::atomic<int> requests{0};
  MiniServer s([&](const test::SeenRequest&) {
    ++requests;
    return reply(412, "<Error><Code>PreconditionFailed</Code></Error>");
  });
  test::TempDir dir;
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  opt.part_size = 1u << 16;
  opt.parallel = 1;  // parts one at a time: the first one's failure is known before any other starts
  auto sum = storage::download({{"run/big.bin", 64u << 16, "abc-64", "", "", {}}}, "run/", factory_for(s), one_attempt(), opt);
  REQUIRE(sum.files.size() == 1);
  CHECK(sum.files[0].status == storage::FileResult::Status::failed);
  CHECK(sum.files[0].error == "the object changed during the download");
  CHECK(requests == 1);
}

TEST_CASE("the listing's ChecksumAlgorithm and HeadObject's checksums") {
  const auto page = impact::storage::parse_list_page(
      "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>3</Size>"
      "<ChecksumAlgorithm>CRC32C</ChecksumAlgorithm></Contents><Contents><Key>j</Key><Size>1</Size></Contents></ListBucketResult>");
  CHECK(page.objects.at(0).checksum_algorithm == "CRC32C");
  CHECK(page.objects.at(1).checksum_algorithm.empty());
  const auto sums = storage::checksum_headers({{"X-Amz-Checksum-CRC32", "abc"}, {"ETag", "x"}, {"x-amz-checksum-type", "FULL_OBJECT"}});
  REQUIRE(sums.size() == 2);
  CHECK(sums[0].name == "x-amz-checksum-crc32");
  CHECK(sums[1].value == "FULL_OBJECT");
}

TEST_CASE("a presigned URL of an empty object probes as size 0 (S3 answers the one-byte range with 416)") {
  const std::string empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
  MiniServer s([&](const test::SeenRequest& q) {
    if (q.headers.count("range")) return reply(416, "<Error><Code>InvalidRange</Code></Error>", "Content-Range: bytes */0\r\n");
    return reply(200, "", "ETag: \"" + empty_md5 + "\"\r\n");
  });
  const auto o = storage::probe_presigned(s.url("/results/runs/r/empty%20file.txt?X-Amz-Signature=abc"), http::default_options());
  CHECK(o.size == 0);
  CHECK(o.etag == empty_md5);
  CHECK(o.key == "empty file.txt");
  // A server that refuses byte 0 and then sends data anyway is not believed.
  MiniServer liar([](const test::SeenRequest& q) {
    return q.headers.count("range") ? reply(416, "<Error><Code>InvalidRange</Code></Error>") : reply(200, "surprise");
  });
  CHECK_THROWS_AS(storage::probe_presigned(liar.url("/b/k?X-Amz-Signature=abc"), http::default_options()), impact::Error);
}

// ---------------------------------------------------------------- a WES run's outputs

TEST_CASE("storage locations: s3:// URIs, and path-style URLs on the storage endpoint only") {
  const std::string ep = "http://127.0.0.1:9000";
  auto loc = storage::storage_location("s3://results/runs/r1/a.txt", ep);
  REQUIRE(loc);
  CHECK(loc->bucket == "results");
  CHECK(loc->key == "runs/r1/a.txt");
  loc = storage::storage_location("http://127.0.0.1:9000/results/runs/r1/a%20b.txt?X-Amz-Signature=x", ep);
  REQUIRE(loc);
  CHECK(loc->key == "runs/r1/a b.txt");
  CHECK(!storage::storage_location("http://127.0.0.1:9001/results/a.txt", ep));
  CHECK(!storage::storage_location("https://127.0.0.1:9000/results/a.txt", ep));
  CHECK(!storage::storage_location("http://127.0.0.1:9000/", ep));
  CHECK(!storage::storage_location("file:///tmp/a.txt", ep));
  CHECK_THROWS_AS(storage::storage_location("s3://A_B/x", ep), impact::Error);
}

TEST_CASE("a run's outputs: CWL Files and Directories, nested arrays and listings, plain URL strings") {
  const auto outputs = nlohmann::json::parse(R"({
    "report": {"class": "File", "location": "s3://results/runs/r1/report.txt", "size": 3},
    "copy": {"class": "File", "location": "file:///srv/wes/r1/outdir/report.txt",
             "url": "http://127.0.0.1:9000/results/runs/r1/report.txt"},
    "parts": [[{"class": "File", "location": "http://127.0.0.1:9000/results/runs/r1/p/1.txt",
                "secondaryFiles": [{"class": "File", "location": "s3://results/runs/r1/p/1.txt.idx"}]}]],
    "dir": {"class": "Directory", "location": "s3://results/runs/r1/dir"},
    "local_dir": {"class": "Directory", "location": "file:///srv/wes/r1/outdir/d",
                  "listing": [{"class": "File", "location": "s3://results/runs/r1/d/x.txt"},
                              {"class": "File", "path": "/srv/wes/r1/outdir/d/secret.txt"}]},
    "folder": "s3://results/runs/r1/folder/",
    "elsewhere": "https://data.example.org/x.vcf",
    "bad": "s3://NO/x",
    "note": "six variants",
    "count": 6
  })");
  const auto found = storage::find_output_objects(outputs, "http://127.0.0.1:9000");
  std::vector<std::string> keys;
  for (const auto& o : found.objects) keys.push_back(o.where.bucket + "/" + o.where.key);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"results/runs/r1/d/x.txt", "results/runs/r1/dir/", "results/runs/r1/folder/",
                                         "results/runs/r1/p/1.txt", "results/runs/r1/p/1.txt.idx", "results/runs/r1/report.txt"});
  std::map<std::string, std::string> skipped;
  for (const auto& sk : found.skipped) skipped[sk.url] = sk.reason;
  CHECK(skipped.size() == 3);
  CHECK(skipped.at("/srv/wes/r1/outdir/d/secret.txt").find("not in the profile's object storage") != std::string::npos);
  CHECK(skipped.at("https://data.example.org/x.vcf").find("https://data.example.org:443") != std::string::npos);
  CHECK(skipped.at("s3://NO/x").find("not a valid S3 bucket name") != std::string::npos);
}

TEST_CASE("outputs keep their names below the deepest folder that holds them all") {
  CHECK(storage::common_folder({"runs/r1/a.txt", "runs/r1/sub/b.txt"}) == "runs/r1/");
  CHECK(storage::common_folder({"runs/r1/a.txt"}) == "runs/r1/");
  CHECK(storage::common_folder({"runs/r1/dir/"}) == "runs/r1/");
  CHECK(storage::common_folder({"runs/r1/dir/", "runs/r1/dir/x.txt"}) == "runs/r1/");
  CHECK(storage::common_folder({"runs/r1x/a", "runs/r12/b"}) == "runs/");
  CHECK(storage::common_folder({"a.txt", "runs/b.txt"}).empty());
  CHECK(storage::common_folder({}).empty());
}

TEST_CASE("a run's outputs resolve to objects in one bucket: named ones by HeadObject, folders by listing") {
  MiniServer s([](const test::SeenRequest& q) {
    if (q.method == "HEAD" && q.target == "/results/runs/r1/a.txt")
      return test::Reply{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"0123\"\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n", false, false};
    if (q.method == "HEAD") return reply(404);
    if (q.target.find("prefix=runs%2Fr1%2Fdir%2F") != std::string::npos)
      return reply(200,
                   "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>runs/r1/dir/x.txt</Key><Size>2</Size>"
                   "</Contents><Contents><Key>runs/r1/a.txt</Key><Size>5</Size></Contents></ListBucketResult>");
    return reply(200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  });
  auto keys = storage::static_keys({"AKID", "secret", ""});
  storage::S3Client s3(s.url(""), "us-east-1", *keys, one_attempt());
  auto found = storage::find_output_objects(nlohmann::json::parse(R"([
      "s3://other/runs/r1/b.txt", "s3://results/runs/r1/a.txt", "s3://results/runs/r1/missing.txt",
      {"class": "Directory", "location": "s3://results/runs/r1/dir"}, "s3://results/runs/r1/empty/"])"),
      s.url(""));
  const auto res = storage::resolve_outputs(s3, found, "results");
  CHECK(res.bucket == "results");
  CHECK(res.prefix == "runs/r1/");
  REQUIRE(res.objects.size() == 2);  // a.txt once, though the folder's listing names it too
  CHECK(res.objects[0].key == "runs/r1/a.txt");
  CHECK(res.objects[0].size == 5);
  CHECK(res.objects[0].checksums.at(0).name == "x-amz-checksum-crc32");
  CHECK(res.objects[1].key == "runs/r1/dir/x.txt");
  std::map<std::string, std::string> skipped;
  for (const auto& sk : found.skipped) skipped[sk.url] = sk.reason;
  CHECK(skipped.size() == 3);
  CHECK(skipped.at("s3://other/runs/r1/b.txt") == "in bucket other, not results");
  for (const auto& sk : found.skipped)  // the library names what downloads it alone; the CLI words the command
    CHECK(sk.alone == (sk.url == "s3://other/runs/r1/b.txt" ? sk.url : ""));
  CHECK(skipped.at("s3://results/runs/r1/missing.txt") == "no such object in the storage");
  CHECK(skipped.at("s3://results/runs/r1/empty/") == "nothing under this folder in the storage");
  bool asked_checksums = false;
  for (const auto& q : s.requests())
    if (q.method == "HEAD") asked_checksums = asked_checksums || q.headers.count("x-amz-checksum-mode");
  CHECK(asked_checksums);
}

// ---------------------------------------------------------------- a hostile local folder

TEST_CASE("S3: a link planted in the destination is refused; nothing outside is written, truncated or created") {
  namespace fs = std::filesystem;
  test::TempDir dir;
  const fs::path out = dir.path() / "out", victim = dir.path() / "victim", small = dir.path() / "small",
                 elsewhere = dir.path() / "elsewhere";
  fs::create_directories(out / "deep");
  fs::create_directories(elsewhere);
  write_file_atomic(victim, std::string(20000, 'v'), 0644);
  write_file_atomic(small, "twelve bytes", 0644);
  fs::create_symlink(victim, out / "one.txt.impact-part");          // single GET: truncated and written before
  fs::create_symlink(small, out / "big.bin.impact-part");           // ranged: grown and written at offsets before
  fs::create_symlink(victim, out / "final.txt");                     // the final name
  fs::create_symlink(dir.path() / "created", out / "new.txt.impact-part");  // dangling: its target created before
  fs::create_symlink(elsewhere, out / "sub");                        // a folder on the way
  fs::create_symlink("../../elsewhere", out / "deep" / "er");        // a folder deeper down
  fs::create_symlink(victim, out / "st.bin.impact-state.tmp");       // the state file's temporary
  const std::string big(3u << 20, 'B');
  MiniServer s([&](const test::SeenRequest& q) {
    const bool large = q.target == "/run/big.bin" || q.target == "/run/st.bin";
    const std::string& body = large ? big : std::string(kBody);
    auto r = q.headers.find("range");
    if (r == q.headers.end()) return reply(200, body, "ETag: \"abc-3\"\r\n");
    std::size_t a = 0, b = 0;
    std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
    return reply(206, body.substr(a, b - a + 1), "ETag: \"abc-3\"\r\n");
  });
  std::vector<storage::ObjectInfo> objects{
      {"run/one.txt", 11, "abc-3", "", "", {}},        {"run/big.bin", big.size(), "abc-3", "", "", {}},
      {"run/final.txt", 11, "abc-3", "", "", {}},      {"run/new.txt", 11, "abc-3", "", "", {}},
      {"run/sub/evil.txt", 11, "abc-3", "", "", {}},   {"run/deep/er/evil.txt", 11, "abc-3", "", "", {}},
      {"run/st.bin", big.size(), "abc-3", "", "", {}}, {"run/fine.txt", 11, "abc-3", "", "", {}}};
  storage::DownloadOptions opt;
  opt.dest = out;
  opt.part_size = 1u << 20;
  auto sum = storage::download(objects, "run/", factory_for(s), one_attempt(), opt);
  std::map<std::string, storage::FileResult> by;
  for (const auto& f : sum.files) by[f.path] = f;
  const std::map<std::string, std::string> refused{{"one.txt", "one.txt.impact-part is a symbolic link"},
                                                   {"big.bin", "big.bin.impact-part is a symbolic link"},
                                                   {"final.txt", "final.txt is a symbolic link"},
                                                   {"new.txt", "new.txt.impact-part is a symbolic link"},
                                                   {"sub/evil.txt", "sub is a symbolic link"},
                                                   {"deep/er/evil.txt", "deep/er is a symbolic link"},
                                                   {"st.bin", "st.bin.impact-state.tmp is a symbolic link"}};
  for (const auto& entry : refused) {
    const std::string& path = entry.first;  // (not a structured binding: clang 14 cannot capture one)
    const std::string& message = entry.second;
    CAPTURE(path);
    REQUIRE(by.count(path) == 1);
    CHECK(by[path].status == storage::FileResult::Status::failed);
    CHECK(by[path].error.find(message) != std::string::npos);
    CHECK(by[path].error_kind == ErrorKind::io);
  }
  CHECK(by["fine.txt"].status == storage::FileResult::Status::downloaded);
  CHECK(read_file(out / "fine.txt") == kBody);
  CHECK(read_file(victim) == std::string(20000, 'v'));
  CHECK(read_file(small) == "twelve bytes");
  CHECK_FALSE(fs::exists(fs::symlink_status(dir.path() / "created")));
  CHECK(fs::is_empty(elsewhere));
  CHECK(fs::is_symlink(out / "final.txt"));  // left for the user to look at, not replaced or followed
}

TEST_CASE("S3: a failed free-space check leaves no sparse .impact-part behind") {
  test::TempDir dir;
  int requests = 0;
  MiniServer s([&](const auto&) { ++requests; return reply(500, ""); });
  // 5 TiB, the largest object S3 allows: more than this disk has free (or more than it can size).
  auto sum = fetch(s, dir.path(), "abc-3", 5497558138880ull, 1ull << 30);
  REQUIRE(sum.files.size() == 1);
  CHECK(sum.files[0].status == storage::FileResult::Status::failed);
  const bool refused = sum.files[0].error.find("not enough free space") != std::string::npos ||
                       sum.files[0].error.find("cannot size") != std::string::npos;
  CHECK(refused);
  CHECK(requests == 0);
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("S3: resuming keeps working through the folder handle: a second run fetches only the missing parts") {
  test::TempDir dir;
  const std::string big(3u << 20, 'R');
  std::atomic<int> fail_third{1};
  std::vector<std::string> ranges;
  std::mutex mu;
  MiniServer s([&](const test::SeenRequest& q) {
    auto r = q.headers.find("range");
    std::size_t a = 0, b = 0;
    std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
    {
      std::lock_guard l(mu);
      ranges.push_back(r->second);
    }
    if (a == 2u << 20 && fail_third.exchange(0)) return reply(500, "");
    return reply(206, big.substr(a, b - a + 1), "ETag: \"abc-3\"\r\n");
  });
  auto first = fetch(s, dir.path(), "abc-3", big.size(), 1u << 20);
  CHECK(first.files[0].status == storage::FileResult::Status::failed);
  CHECK(std::filesystem::exists(dir.path() / "out.txt.impact-part"));
  CHECK(std::filesystem::exists(dir.path() / "out.txt.impact-state"));
  ranges.clear();
  auto second = fetch(s, dir.path(), "abc-3", big.size(), 1u << 20);
  CHECK(second.files[0].status == storage::FileResult::Status::downloaded);
  CHECK(second.files[0].resumed);
  CHECK(ranges == std::vector<std::string>{"bytes=2097152-3145727"});
  CHECK(read_file(dir.path() / "out.txt") == big);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "out.txt.impact-part"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "out.txt.impact-state"));
}

// ---------------------------------------------------------------- presigned outputs (WESkit's outputs.S3)

TEST_CASE("presigned URLs: Signature V4 and V2 are both recognised") {
  CHECK(storage::is_presigned_url("https://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab"));
  CHECK(storage::is_presigned_url("http://127.0.0.1:7480/b/k?AWSAccessKeyId=AK&Signature=ab%3D&Expires=1"));
  CHECK_FALSE(storage::is_presigned_url("https://h/b/k?Signature=ab"));  // V2 has a key id too
  CHECK_FALSE(storage::is_presigned_url("https://h/b/k?MySignature=ab&AWSAccessKeyId=AK"));
  CHECK_FALSE(storage::is_presigned_url("s3://b/k?X-Amz-Signature=ab"));
  CHECK_FALSE(storage::is_presigned_url("https://h/b/k"));
}

TEST_CASE("a run's presigned outputs are downloaded as they are: no keys, no token, names from their paths") {
  std::mutex mu;
  std::vector<test::SeenRequest> seen;
  MiniServer s([&](const test::SeenRequest& q) {
    {
      std::lock_guard l(mu);
      seen.push_back(q);
    }
    if (q.target.rfind("/results/runs/r1/expired.txt", 0) == 0)
      return reply(403, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
    const std::string body = q.target.find("sub") != std::string::npos ? "bb" : "aaaa";
    return test::Reply{"HTTP/1.1 206 Partial\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/" + std::to_string(body.size()) +
                           "\r\nETag: \"e\"\r\n\r\n" + body.substr(0, 1),
                       false, false};
  });
  const auto outputs = nlohmann::json{
      {"filesystem", {"/data/runs/r1/out/a.txt"}},
      {"S3", {s.url("/results/runs/r1/out/a.txt?AWSAccessKeyId=AK&Signature=sig%2B&Expires=9999999999"),
              s.url("/results/runs/r1/out/sub/b%20c.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"),
              s.url("/results/runs/r1/out/a.txt?AWSAccessKeyId=AK&Signature=other&Expires=1"),
              s.url("/results/runs/r1/?X-Amz-Signature=abc")}}};
  auto found = storage::find_output_objects(outputs, "");
  CHECK(found.objects.empty());
  REQUIRE(found.presigned.size() == 4);
  const auto res = storage::resolve_presigned(found.presigned, one_attempt(), found.skipped);
  CHECK(res.prefix == "results/runs/r1/out/");
  REQUIRE(res.objects.size() == 2);
  CHECK(res.objects[0].key == "results/runs/r1/out/a.txt");
  CHECK(res.objects[0].size == 4);
  CHECK(res.objects[1].key == "results/runs/r1/out/sub/b c.txt");
  CHECK(res.urls.at(res.objects[1].key) == found.presigned[1]);
  CHECK(found.skipped.size() == 2);  // the second URL of a.txt, and the one that names a folder
  for (const auto& q : seen) CHECK(q.headers.count("authorization") == 0);
  CHECK(safe_relative_path(res.objects[1].key, res.prefix) == std::filesystem::path("sub/b c.txt"));
  // Every probe refused: the storage's reason is the error, not "nothing to download".
  std::vector<storage::SkippedOutput> skipped;
  CHECK_THROWS_AS(storage::resolve_presigned({s.url("/results/runs/r1/expired.txt?X-Amz-Signature=x")}, one_attempt(), skipped),
                  impact::Error);
}

// ---------------------------------------------------------------- a listing streamed into the transfers

TEST_CASE("download of a listing pulled page by page: the first GET is answered before the second page is asked for") {
  constexpr int kObjects = 7, kPage = 2;
  auto key = [](int i) { return "run/f" + std::to_string(i) + ".txt"; };
  MiniServer s([&](const test::SeenRequest& q) {
    if (q.method == "GET" && q.target.rfind("/b?", 0) == 0) {
      const auto at = q.target.find("continuation-token=t");
      const int first = at == std::string::npos ? 0 : std::stoi(q.target.substr(at + 20));
      std::string body = "<ListBucketResult>";
      for (int i = first; i < std::min(first + kPage, kObjects); ++i)
        body += "<Contents><Key>" + key(i) + "</Key><Size>11</Size><ETag>&quot;" + kMd5 + "&quot;</ETag></Contents>";
      const bool more = first + kPage < kObjects;
      body += std::string("<IsTruncated>") + (more ? "true" : "false") + "</IsTruncated>";
      if (more) body += "<NextContinuationToken>t" + std::to_string(first + kPage) + "</NextContinuationToken>";
      return reply(200, body + "</ListBucketResult>");
    }
    if (q.method == "GET") return reply(200, kBody, etag_header());
    return reply(404);
  });
  auto keys = storage::static_keys({"AKID", "secret", ""});
  storage::S3Client s3(s.url(""), "us-east-1", *keys, one_attempt());
  test::TempDir dir;
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  opt.keep_files = false;
  struct Count : transfer::Observer {
    int items = 0;
    void on_item(const transfer::Result&) override { ++items; }
  } seen;
  const auto sum = storage::download(
      s3.list_pages("b", "run/", kPage), "run/",
      [&](const storage::ObjectInfo& o, std::optional<std::pair<std::uint64_t, std::uint64_t>> r) { return s3.get_request("b", o.key, r); },
      one_attempt(), opt, &seen);
  CHECK(sum.count(storage::FileResult::Status::downloaded) == kObjects);
  CHECK(sum.count(storage::FileResult::Status::failed) == 0);
  CHECK(sum.files.empty());  // handed to the observer only
  CHECK(seen.items == kObjects);
  for (int i = 0; i < kObjects; ++i) CHECK(read_file(dir.path() / ("f" + std::to_string(i) + ".txt")) == kBody);
  std::vector<std::string> order;  // "L" a listing page, "G" an object
  for (const auto& q : s.requests()) order.push_back(q.target.rfind("/b?", 0) == 0 ? "L" : "G");
  const auto second_page = std::find(std::next(std::find(order.begin(), order.end(), "L")), order.end(), "L");
  const auto first_get = std::find(order.begin(), order.end(), "G");
  REQUIRE(second_page != order.end());
  CHECK(first_get < second_page);
  CHECK(std::count(order.begin(), order.end(), "L") == (kObjects + kPage - 1) / kPage);
}

TEST_CASE("a listing page that fails mid-download: what was started finishes and is in place, then the error") {
  MiniServer s([](const test::SeenRequest& q) {
    if (q.target.rfind("/b?", 0) == 0) {
      if (q.target.find("continuation-token") != std::string::npos)
        return reply(500, "<Error><Code>InternalError</Code><Message>listing broke</Message></Error>");
      return reply(200, std::string("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t2</NextContinuationToken>") +
                            "<Contents><Key>run/a.txt</Key><Size>11</Size><ETag>&quot;" + kMd5 + "&quot;</ETag></Contents>" +
                            "<Contents><Key>run/b.txt</Key><Size>11</Size><ETag>&quot;" + kMd5 + "&quot;</ETag></Contents></ListBucketResult>");
    }
    return reply(200, kBody, etag_header());
  });
  auto keys = storage::static_keys({"AKID", "secret", ""});
  storage::S3Client s3(s.url(""), "us-east-1", *keys, one_attempt());
  test::TempDir dir;
  storage::DownloadOptions opt;
  opt.dest = dir.path();
  CHECK_THROWS_AS(storage::download(s3.list_pages("b", "run/", 2), "run/",
                                    [&](const storage::ObjectInfo& o, std::optional<std::pair<std::uint64_t, std::uint64_t>> r) {
                                      return s3.get_request("b", o.key, r);
                                    },
                                    one_attempt(), opt),
                  Error);
  CHECK(read_file(dir.path() / "a.txt") == kBody);
  CHECK(read_file(dir.path() / "b.txt") == kBody);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))  // no temporaries left behind
    CHECK(e.path().filename().string().find(".impact-") == std::string::npos);
}
