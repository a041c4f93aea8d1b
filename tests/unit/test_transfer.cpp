// The download engine (impact/transfer.hpp) with plain sources against a loopback server: renewal of a
// refused URL, hashing while the file fills, sources of unknown size, result order and progress.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>

#include <openssl/sha.h>

#include "impact/transfer.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"
#include "transfer/hash.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::reply;

namespace {

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + i / 1000);
  return s;
}

std::string sha256_hex(const std::string& data) {
  unsigned char d[32];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  return transfer::hex(std::vector<unsigned char>(d, d + 32));
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Serves `body` at /new honouring "bytes=A-B"; /old answers 403 (an expired signed URL).
test::Reply serve(const std::string& body, const test::SeenRequest& q) {
  if (q.target != "/new") return reply(403, "expired");
  const auto it = q.headers.find("range");
  if (it == q.headers.end()) return reply(200, body);
  std::size_t a = 0, b = 0;
  std::sscanf(it->second.c_str(), "bytes=%zu-%zu", &a, &b);
  return reply(206, body.substr(a, b - a + 1), "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/*\r\n");
}

transfer::Source source(const MiniServer& s, const std::string& body, std::shared_ptr<std::string> path) {
  transfer::Source src;
  src.id = "obj";
  src.path = "sub/obj.bin";
  src.size = body.size();
  src.checksums["sha-256"] = sha256_hex(body);
  src.request = [&s, path](std::optional<transfer::Range> r) {
    http::Request q;
    q.url = s.url(*path);
    if (r) q.headers.push_back({"Range", "bytes=" + std::to_string(r->first) + "-" + std::to_string(r->second)});
    return q;
  };
  return src;
}

http::Options one_attempt() {
  http::Options h = http::default_options();
  h.retry.max_attempts = 1;
  return h;
}

}  // namespace

TEST_CASE("transfer: a URL refused with 403 is renewed once and the refused parts fetched again; a second refusal fails") {
  const std::string body = pattern(100000);
  MiniServer s([&](const test::SeenRequest& q) { return serve(body, q); });
  test::TempDir dir;
  transfer::Options opt;
  opt.dest = dir.path();
  opt.part_size = 30000;  // 4 parts, all refused at first
  auto path = std::make_shared<std::string>("/old");
  int renewals = 0;
  auto src = source(s, body, path);
  src.renew = [&] {
    ++renewals;
    *path = "/new";
    return true;
  };
  auto sum = transfer::download({src}, one_attempt(), opt);
  REQUIRE(sum.results.size() == 1);
  CHECK(sum.results[0].error == "");
  CHECK(sum.results[0].status == transfer::Result::Status::downloaded);
  CHECK(sum.results[0].verified == "size,sha256");
  CHECK(renewals == 1);
  CHECK(slurp(dir.path() / "sub/obj.bin") == body);

  // The renewed URL is refused too: no second renewal, a clear error, nothing at the final name.
  std::filesystem::remove(dir.path() / "sub/obj.bin");
  *path = "/old";
  src.renew = [&] {
    ++renewals;
    return true;
  };
  sum = transfer::download({src}, one_attempt(), opt);
  CHECK(renewals == 2);
  CHECK(sum.results[0].status == transfer::Result::Status::failed);
  CHECK(sum.results[0].error.find("HTTP 403") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "sub/obj.bin"));
  // A source that cannot renew fails with the refusal itself.
  src.renew = [] { return false; };
  sum = transfer::download({src}, one_attempt(), opt);
  CHECK(sum.results[0].status == transfer::Result::Status::failed);
  CHECK(sum.results[0].error.find("HTTP 403") != std::string::npos);
}

TEST_CASE("transfer: the trailing hash follows the contiguous prefix as it grows and gives every digest asked for") {
  const std::string body = pattern(3u << 20);
  test::TempDir dir;
  const auto file = dir.path() / "f";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(body.size())) == 0);
  transfer::TrailingHash trail(fd, body.size(), {"sha256", "md5", "crc32c"});
  // Written out of order, published only as the prefix becomes contiguous (as the engine does).
  const std::size_t third = body.size() / 3;
  REQUIRE(::pwrite(fd, body.data() + third, third, static_cast<off_t>(third)) == static_cast<ssize_t>(third));
  REQUIRE(::pwrite(fd, body.data(), third, 0) == static_cast<ssize_t>(third));
  trail.advance(2 * third);
  const std::size_t rest = body.size() - 2 * third;
  REQUIRE(::pwrite(fd, body.data() + 2 * third, rest, static_cast<off_t>(2 * third)) == static_cast<ssize_t>(rest));
  trail.advance(body.size());
  auto got = trail.result();
  ::close(fd);
  CHECK(transfer::hex(got.at("sha256")) == sha256_hex(body));
  transfer::Hasher direct({"md5", "crc32c"});
  direct.update(body);
  auto want = direct.final();
  CHECK(got.at("md5") == want.at("md5"));
  CHECK(got.at("crc32c") == want.at("crc32c"));
  // Expected values are compared in hex (any case) or base64.
  CHECK(transfer::digest_matches(got.at("sha256"), sha256_hex(body)));
  std::string upper = sha256_hex(body);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(transfer::digest_matches(got.at("sha256"), upper));
  CHECK_FALSE(transfer::digest_matches(got.at("sha256"), sha256_hex("other")));
  CHECK(transfer::canonical_algorithm("SHA-256") == "sha256");
  CHECK(transfer::canonical_algorithm("etag").empty());
}

TEST_CASE("transfer: a source of unknown size comes in one request, checked by its checksum; results keep the sources' order") {
  const std::string body = pattern(70000);
  MiniServer s([&](const test::SeenRequest& q) { return serve(body, q); });
  test::TempDir dir;
  auto path = std::make_shared<std::string>("/new");
  auto unknown = source(s, body, path);
  unknown.size.reset();
  auto refused = source(s, body, path);
  refused.path = "../escape.bin";
  auto bad = source(s, body, path);
  bad.path = "bad.bin";
  bad.checksums["sha256"] = sha256_hex("something else");
  bad.checksums.erase("sha-256");
  struct Counter final : transfer::Observer {
    std::size_t items = 0, planned = 0;
    std::uint64_t bytes = 0, plan_bytes = 0;
    void on_plan(std::size_t n, std::uint64_t b) override { planned = n, plan_bytes = b; }
    void on_bytes(std::uint64_t d) override { bytes += d; }
    void on_item(const transfer::Result&) override { ++items; }
  } counter;
  transfer::Options opt;
  opt.dest = dir.path();
  auto sum = transfer::download({unknown, refused, bad}, one_attempt(), opt, &counter);
  REQUIRE(sum.results.size() == 3);
  CHECK(sum.results[0].status == transfer::Result::Status::downloaded);
  CHECK(sum.results[0].verified == "sha256");
  CHECK(sum.results[0].size == body.size());
  CHECK(slurp(dir.path() / "sub/obj.bin") == body);
  CHECK(sum.results[1].status == transfer::Result::Status::failed);
  CHECK(sum.results[1].error.find("refusing the name '../escape.bin'") != std::string::npos);
  CHECK(sum.results[2].status == transfer::Result::Status::failed);
  CHECK(sum.results[2].error.find("sha256 checksum mismatch") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "bad.bin"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "bad.bin.impact-part"));
  CHECK(counter.items == 3);
  CHECK(counter.planned == 2);
  CHECK(counter.plan_bytes == body.size());  // the known size only
  CHECK(counter.bytes == 2 * body.size());
  CHECK(sum.bytes == body.size());  // the failed one's bytes do not count
}
