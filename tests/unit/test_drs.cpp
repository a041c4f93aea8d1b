// DRS: URIs, the object model, names, checksums, and the client's credential rules against a loopback server.
#include <doctest/doctest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::reply;
using nlohmann::json;

namespace {

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::generic;
}

// Credentials that record what was asked of them.
struct FakeCredentials : auth::Credentials {
  std::vector<std::string> passports;
  std::vector<std::vector<std::string>> asked_issuers;
  std::vector<std::string> token_for;
  std::string bearer_token(std::string_view url, std::chrono::seconds) override {
    token_for.emplace_back(url);
    return "tok-abcdefgh-123";
  }
  bool has_token() override { return true; }
  std::vector<std::string> passports_for(const std::vector<std::string>& issuers) override {
    asked_issuers.push_back(issuers);
    return passports;
  }
};

std::string object_json(const std::string& id) {
  return json{{"id", id}, {"self_uri", "drs://x/" + id}, {"size", 3}, {"created_time", "2024-01-01T00:00:00Z"},
              {"checksums", {{{"type", "sha-256"}, {"checksum", "ab"}}}},
              {"access_methods", {{{"type", "https"}, {"access_id", "a1"}}}}}
      .dump();
}

drs::Settings settings_for(const MiniServer& s, auth::Credentials* c) {
  drs::Settings st;
  st.http = http::default_options();
  st.http.retry.base = std::chrono::milliseconds(5);
  st.profile.name = "t";
  st.profile.issuer = "https://login.example.org/";
  st.profile.drs["d"] = s.url("/drs");
  st.credentials = c;
  st.max_pending_wait = std::chrono::seconds(1);
  return st;
}

std::string json_reply_headers() { return "Content-Type: application/json\r\n"; }

}  // namespace

TEST_CASE("DRS URIs: hostname-based with ports and percent-encoded ids, compact ids, and what is refused") {
  auto u = drs::parse_uri("drs://drs.example.org/abc");
  CHECK_FALSE(u.compact);
  CHECK(u.host == "drs.example.org");
  CHECK(u.id == "abc");
  u = drs::parse_uri("drs://127.0.0.1:8080/blob%20odd%2Fid%231%2B%C3%A4");
  CHECK(u.host == "127.0.0.1:8080");
  CHECK(u.id == "blob odd/id#1+\xc3\xa4");
  u = drs::parse_uri("drs://dg.4503:0000ffff-aaaa");
  CHECK(u.compact);
  CHECK(u.prefix == "dg.4503");
  CHECK(u.accession == "0000ffff-aaaa");
  for (const char* bad : {"https://x/y", "drs://", "drs://host/", "drs://nohost", "drs:///id", "drs://h/a b",
                          "drs://h/%zz", "drs://host:443"})
    CHECK_MESSAGE(kind_of([&] { drs::parse_uri(bad); }) == ErrorKind::usage, bad);
}

TEST_CASE("objects parse with checksums, access methods and bundle contents; invalid ones are protocol errors") {
  auto o = drs::parse_object(json::parse(R"({"id":"b","size":10,"checksums":[{"type":"sha-256","checksum":"ABCD"}],
    "contents":[{"name":"x","id":"x1","drs_uri":["drs://h/x1"],"contents":[{"name":"y","id":"y1"}]}],
    "access_methods":[{"type":"https","access_url":{"url":"https://s/x","headers":["A: b"]},"available":false}]})"),
                                 "test");
  CHECK(o.bundle);
  CHECK(o.checksums.front().checksum == "abcd");
  REQUIRE(o.contents.size() == 1);
  CHECK(o.contents[0].contents[0].id == "y1");
  REQUIRE(o.access_methods.size() == 1);
  CHECK_FALSE(o.access_methods[0].available);
  CHECK(o.access_methods[0].access_url->headers == std::vector<std::string>{"A: b"});
  json j = o;
  CHECK(j["access_methods"][0]["access_url"] == true);  // never the (possibly signed) URL itself
  CHECK(kind_of([] { drs::parse_object(json::parse(R"({"size":1})"), "t"); }) == ErrorKind::protocol);
  CHECK(kind_of([] { drs::parse_object(json::parse(R"({"id":"a","size":-1})"), "t"); }) == ErrorKind::protocol);
  CHECK(kind_of([] { drs::parse_object(json::parse("[]"), "t"); }) == ErrorKind::protocol);
  CHECK_FALSE(drs::parse_authorizations(json::parse("{}")).known);
}

TEST_CASE("local names never leave the folder") {
  CHECK(drs::safe_name("a.vcf", "id") == "a.vcf");
  CHECK(drs::safe_name("../../etc/passwd", "id-1") == "id-1");
  CHECK(drs::safe_name("..", "x") == "x");
  CHECK(drs::safe_name("", "a/b\\c") == "a_b_c");
  CHECK(drs::safe_name("bad\nname", "..") == "object");
  CHECK(drs::safe_name(std::string(300, 'a'), "short") == "short");
}

TEST_CASE("checksums: the strongest known one is chosen and computed over the file") {
  using drs::Checksum;
  CHECK(drs::verifiable_checksum({{"md5", "1"}, {"sha-256", "2"}, {"etag", "3"}})->type == "sha-256");
  CHECK(drs::verifiable_checksum({{"md5", "1"}, {"sha-512", "2"}})->type == "sha-512");
  CHECK_FALSE(drs::verifiable_checksum({{"etag", "1"}, {"crc32c", "2"}}));
  impact::test::TempDir dir;
  const auto f = dir.path() / "abc";
  std::ofstream(f) << "abc";
  CHECK(drs::file_digest(f, "sha-256") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(drs::file_digest(f, "SHA256") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(drs::file_digest(f, "md5") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(kind_of([&] { drs::file_digest(f, "crc32c"); }) == ErrorKind::usage);
}

TEST_CASE("passports go in a POST body, only for the issuers the object declares; bearer only for our issuer") {
  MiniServer s([](const auto& rq) {
    if (rq.method == "OPTIONS")
      return reply(200, R"({"supported_types":["PassportAuth","BearerAuth"],"passport_auth_issuers":["https://visas.example.org/"],)"
                        R"("bearer_auth_issuers":["https://other.example.org"]})",
                   json_reply_headers());
    if (rq.target.find("/access/") != std::string::npos) return reply(200, R"({"url":"https://s.example.org/x"})", json_reply_headers());
    return reply(200, object_json("o1"), json_reply_headers());
  });
  FakeCredentials creds;
  creds.passports = {"passport.jwt.value"};
  drs::Client c(settings_for(s, &creds));
  auto loc = c.locate(drs::parse_uri("drs://127.0.0.1:" + std::to_string(s.port()) + "/o1"));
  CHECK(loc.trusted);
  CHECK(loc.base_url == s.url("/drs"));
  auto got = c.objects({loc});
  REQUIRE(got[0].object);
  auto urls = c.access_urls({{loc, "a1"}});
  REQUIRE(urls[0].url);
  CHECK(urls[0].url->url == "https://s.example.org/x");
  REQUIRE(creds.asked_issuers.size() == 1);
  CHECK(creds.asked_issuers[0] == std::vector<std::string>{"https://visas.example.org/"});
  CHECK(creds.token_for.empty());  // the server takes tokens from another issuer only
  auto seen = s.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].method == "POST");
  CHECK(json::parse(seen[1].body)["passports"] == json::array({"passport.jwt.value"}));
  CHECK(seen[2].method == "POST");
  CHECK(seen[2].target == "/drs/objects/o1/access/a1");
  for (const auto& r : seen) CHECK(r.headers.count("authorization") == 0);
}

TEST_CASE("a server that declares nothing gets an anonymous request first, the token only after a 401") {
  MiniServer s([](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(405, "");
    if (!rq.headers.count("authorization")) return reply(401, R"({"msg":"login"})", json_reply_headers());
    return reply(200, object_json("o2"), json_reply_headers());
  });
  FakeCredentials creds;
  drs::Client c(settings_for(s, &creds));
  auto got = c.objects({c.locate(drs::parse_uri("drs://127.0.0.1:" + std::to_string(s.port()) + "/o2"))});
  REQUIRE(got[0].object);
  auto seen = s.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].headers.count("authorization") == 0);
  CHECK(seen[2].headers.at("authorization") == "Bearer tok-abcdefgh-123");
  CHECK(creds.token_for == std::vector<std::string>{s.url("/drs")});
}

TEST_CASE("202 Accepted is waited for within a bound, then reported as pending") {
  MiniServer s([](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    return reply(202, "", "Retry-After: 0\r\n");
  });
  drs::Client c(settings_for(s, nullptr));
  auto got = c.objects({c.locate(drs::parse_uri("drs://127.0.0.1:" + std::to_string(s.port()) + "/slow"))});
  REQUIRE(got[0].error);
  CHECK(kind_of([&] { std::rethrow_exception(got[0].error); }) == ErrorKind::pending);
  const auto n = s.requests().size();
  CHECK(n >= 5);   // waited at least 100 ms per try for about a second
  CHECK(n <= 12);
}

TEST_CASE("a hostname-based URI outside the profile is https and untrusted; loopback ones are http") {
  MiniServer s([](const auto&) { return reply(404, ""); });
  drs::Client c(settings_for(s, nullptr));
  auto l = c.locate(drs::parse_uri("drs://drs.example.org/x"));
  CHECK(l.base_url == "https://drs.example.org/ga4gh/drs/v1");
  CHECK_FALSE(l.trusted);
  l = c.locate(drs::parse_uri("drs://127.0.0.1:1/x"));
  CHECK(l.base_url == "http://127.0.0.1:1/ga4gh/drs/v1");
  CHECK_FALSE(l.trusted);
}

TEST_CASE("a large object comes in parallel ranged segments, is joined, verified and renamed; a segment resumes") {
  std::string body;
  for (int i = 0; i < 100000; ++i) body += static_cast<char>('a' + (i * 7) % 26);
  impact::test::TempDir dir;
  std::ofstream(dir.path() / "expected", std::ios::binary) << body;
  const std::string sha = drs::file_digest(dir.path() / "expected", "sha-256");
  std::string self;
  MiniServer s([&](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    if (rq.target == "/data") {
      auto r = rq.headers.find("range");
      if (r == rq.headers.end()) return reply(200, body);
      std::size_t a = 0, b = 0;
      std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
      return reply(206, body.substr(a, b - a + 1),
                   "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(body.size()) + "\r\n");
    }
    return reply(200,
                 json{{"id", "big"}, {"name", "big.bin"}, {"size", body.size()},
                      {"checksums", {{{"type", "sha-256"}, {"checksum", sha}}}},
                      {"access_methods", {{{"type", "https"}, {"access_url", {{"url", self}}}}}}}
                     .dump(),
                 json_reply_headers());
  });
  self = s.url("/data");
  drs::Client c(settings_for(s, nullptr));
  drs::DownloadOptions opt;
  opt.dir = dir.path() / "out";
  opt.segment_bytes = 30000;  // 4 segments: 30000, 30000, 30000, 10000
  std::filesystem::create_directories(opt.dir);
  std::ofstream(opt.dir / "big.bin.part.2", std::ios::binary) << body.substr(60000, 1234);  // left by a killed run
  const std::string u = "drs://127.0.0.1:" + std::to_string(s.port()) + "/big";
  auto res = drs::download(c, {u}, opt);
  REQUIRE(res.size() == 1);
  CHECK_FALSE(res[0].error);
  CHECK(res[0].status == drs::DownloadResult::Status::downloaded);
  CHECK(res[0].resumed_from == 1234);
  CHECK(res[0].checksum_type == "sha-256");
  CHECK(drs::file_digest(opt.dir / "big.bin", "sha-256") == sha);
  CHECK(std::distance(std::filesystem::directory_iterator(opt.dir), {}) == 1);  // no .part files left
  std::vector<std::string> ranges;
  for (const auto& r : s.requests())
    if (r.target == "/data") ranges.push_back(r.headers.at("range"));
  std::sort(ranges.begin(), ranges.end());
  CHECK(ranges == std::vector<std::string>{"bytes=0-29999", "bytes=30000-59999", "bytes=61234-89999", "bytes=90000-99999"});
}
