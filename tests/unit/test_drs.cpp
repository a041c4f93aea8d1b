// DRS: URIs, the object model, names, checksums, and the client's credential rules against a loopback server.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>

#include <nlohmann/json.hpp>

#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::reply;
using impact::test::Reply;
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

// The answer for a DRS object served at `url`, with these checksums.
Reply object_reply(const std::string& id, const std::string& name, std::size_t size, const json& checksums,
                   const std::string& url) {
  return reply(200,
               json{{"id", id}, {"name", name}, {"size", size}, {"checksums", checksums},
                    {"access_methods", {{{"type", "https"}, {"access_url", {{"url", url}}}}}}}
                   .dump(),
               json_reply_headers());
}

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
  CHECK(transfer::check_path("a.vcf") == "a.vcf");
  CHECK(transfer::check_path("bundle/a.vcf") == "bundle/a.vcf");
  for (const char* bad : {"../../etc/passwd", "..", "", "a\\b", "bad\nname", "/abs", "a//b", "x.impact-part", "NUL.txt"}) {
    CAPTURE(bad);
    CHECK(kind_of([&] { transfer::check_path(bad); }) == ErrorKind::protocol);
  }
  CHECK(kind_of([&] { transfer::check_path(std::string(300, 'a')); }) == ErrorKind::protocol);
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

// A server of one object at /data honouring "bytes=A-B", and its DRS record.
MiniServer ranged_drs(const std::string& body, const std::string& sha, std::string& self) {
  return MiniServer([&body, &sha, &self](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    if (rq.target == "/data") {
      auto r = rq.headers.find("range");
      if (r == rq.headers.end()) return reply(200, body);
      std::size_t a = 0, b = 0;
      std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
      return reply(206, body.substr(a, b - a + 1),
                   "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(body.size()) + "\r\n");
    }
    return object_reply("big", "big.bin", body.size(), {{{"type", "sha-256"}, {"checksum", sha}}}, self);
  });
}

std::vector<std::string> data_ranges(const MiniServer& s) {
  std::vector<std::string> ranges;
  for (const auto& r : s.requests())
    if (r.target == "/data") ranges.push_back(r.headers.count("range") ? r.headers.at("range") : "");
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

// One object "big" (big.bin, 100,000 bytes, with its sha-256) on a server honouring ranges, and a client.
struct BigObject {
  explicit BigObject(int step) : body(letters(step)), sha(sha_of(body, dir)), s(ranged_drs(body, sha, self)) { self = s.url("/data"); }
  static std::string letters(int step) {
    std::string b;
    for (int i = 0; i < 100000; ++i) b += static_cast<char>('a' + (i * step) % 26);
    return b;
  }
  static std::string sha_of(const std::string& b, const impact::test::TempDir& d) {
    std::ofstream(d.path() / "expected", std::ios::binary) << b;
    return drs::file_digest(d.path() / "expected", "sha-256");
  }
  std::string uri() const { return "drs://127.0.0.1:" + std::to_string(s.port()) + "/big"; }
  impact::test::TempDir dir;
  std::string body, sha, self;
  MiniServer s;
  drs::Client c{settings_for(s, nullptr)};
};

TEST_CASE("DRS: a large object comes in ranged parts written in place and resumes from its state after a kill") {
  BigObject big(7);
  const auto& [dir, body, sha, self, s, c] = std::tie(big.dir, big.body, big.sha, big.self, big.s, big.c);
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "out";
  opt.part_size = 30000;  // 4 parts: 30000, 30000, 30000, 10000
  std::filesystem::create_directories(opt.dest);
  // What a run killed with parts 0 and 2 on disk leaves: the file at full size, and its state.
  std::string kept(body.size(), '\0');
  kept.replace(0, 30000, body.substr(0, 30000));
  kept.replace(60000, 30000, body.substr(60000, 30000));
  std::ofstream(opt.dest / "big.bin.impact-part", std::ios::binary) << kept;
  std::ofstream(opt.dest / "big.bin.impact-state")
      << json{{"etag", "sha-256:" + sha}, {"size", body.size()}, {"part_size", 30000}, {"done", {0, 2}}}.dump();
  auto res = drs::download(c, {big.uri()}, opt);
  REQUIRE(res.size() == 1);
  CHECK(res[0].error == "");
  CHECK(res[0].status == drs::DownloadResult::Status::downloaded);
  CHECK(res[0].resumed);
  CHECK(res[0].verified == "size,sha256");
  CHECK(drs::file_digest(opt.dest / "big.bin", "sha-256") == sha);
  CHECK(std::distance(std::filesystem::directory_iterator(opt.dest), {}) == 1);  // no .impact-part or state left
  CHECK(data_ranges(s) == std::vector<std::string>{"bytes=30000-59999", "bytes=90000-99999"});
}

TEST_CASE("DRS: what the earlier DRS engine left is resumed (a .impact-part prefix) or removed (.impact-part.K)") {
  BigObject big(11);
  const auto& [dir, body, sha, s, c] = std::tie(big.dir, big.body, big.sha, big.s, big.c);
  const std::string u = big.uri();
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "one";
  std::filesystem::create_directories(opt.dest);
  std::ofstream(opt.dest / "big.bin.impact-part", std::ios::binary) << body.substr(0, 1234);  // appended to by a killed run
  auto res = drs::download(c, {u}, opt);
  CHECK(res.at(0).status == drs::DownloadResult::Status::downloaded);
  CHECK(res[0].resumed);
  CHECK(data_ranges(s) == std::vector<std::string>{"bytes=1234-99999"});
  CHECK(drs::file_digest(opt.dest / "big.bin", "sha-256") == sha);
  // Segments of a large object: no longer read, removed; the object is fetched from the start.
  opt.dest = dir.path() / "two";
  opt.part_size = 30000;
  std::filesystem::create_directories(opt.dest);
  std::ofstream(opt.dest / "big.bin.impact-part.0", std::ios::binary) << body.substr(0, 30000);
  std::ofstream(opt.dest / "big.bin.impact-part.1", std::ios::binary) << body.substr(30000, 1234);
  res = drs::download(c, {u}, opt);
  CHECK(res.at(0).status == drs::DownloadResult::Status::downloaded);
  CHECK_FALSE(res[0].resumed);
  CHECK(drs::file_digest(opt.dest / "big.bin", "sha-256") == sha);
  CHECK(std::distance(std::filesystem::directory_iterator(opt.dest), {}) == 1);
}

namespace {

// A DRS server for download tests: objects by id, each served at /data/<id> (Range honoured unless
// `ignore_range`), with `sent` in place of the real body when set (a server that lies or keeps sending).
struct Served {
  std::string name, body, sent;
  std::vector<std::pair<std::string, std::string>> checksums;  // empty: the sha-256 of body
  bool ignore_range = false;
};

struct DrsServer {
  std::map<std::string, Served> objects;
  std::string sha_of(const std::string& body) {
    impact::test::TempDir d;
    std::ofstream(d.path() / "f", std::ios::binary) << body;
    return drs::file_digest(d.path() / "f", "sha-256");
  }
  MiniServer server{[this](const impact::test::SeenRequest& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    const std::string path = rq.target.substr(0, rq.target.find('?'));
    const std::string id = path.substr(path.rfind('/') + 1);
    auto it = objects.find(id);
    if (it == objects.end()) return reply(404, R"({"msg":"no","status_code":404})", json_reply_headers());
    const Served& o = it->second;
    if (rq.target.rfind("/data/", 0) == 0) {
      const std::string& data = o.sent.empty() ? o.body : o.sent;
      auto r = rq.headers.find("range");
      if (r == rq.headers.end() || o.ignore_range) return reply(200, data);
      std::size_t a = 0, b = data.size() - 1;
      std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
      return reply(206, data.substr(a, b - a + 1), "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/*\r\n");
    }
    json sums = json::array();
    for (const auto& [t, v] : o.checksums) sums.push_back({{"type", t}, {"checksum", v}});
    return object_reply(id, o.name, o.body.size(), sums, server.url("/data/" + id));
  }};
  void add(const std::string& id, Served o) {
    if (o.checksums.empty()) o.checksums.push_back({"sha-256", sha_of(o.body)});
    objects[id] = std::move(o);
  }
  std::string uri(const std::string& id) const { return "drs://127.0.0.1:" + std::to_string(server.port()) + "/" + id; }
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_text(const drs::DownloadResult& r) { return r.error; }

}  // namespace

TEST_CASE("DRS: a server that keeps sending past the declared size fails the object; nothing beyond it is written") {
  DrsServer srv;
  srv.add("endless", {"endless.bin", std::string(1000, 'a'), std::string(4u << 20, 'b'), {}, false});
  // a segmented object whose server answers every Range with the whole (larger) body
  srv.add("seg", {"seg.bin", std::string(100000, 'c'), std::string(3u << 20, 'd'), {}, true});
  // a .impact-part to resume, and a server that ignores the Range and sends the object from byte 0: fetched
  // again in one piece
  srv.add("resume", {"resume.bin", std::string(3000, 'e'), {}, {}, true});
  impact::test::TempDir dir;
  drs::Client c(settings_for(srv.server, nullptr));
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "out";
  opt.part_size = 30000;
  std::filesystem::create_directories(opt.dest);
  std::ofstream(opt.dest / "resume.bin.impact-part", std::ios::binary) << std::string(1000, 'e');
  auto res = drs::download(c, {srv.uri("endless"), srv.uri("seg"), srv.uri("resume")}, opt);
  REQUIRE(res.size() == 3);
  for (int i : {0, 1}) {
    CHECK(res[i].status == drs::DownloadResult::Status::failed);
    CHECK(error_text(res[i]).find("the server sent more data than the object's size") != std::string::npos);
    CHECK(res[i].error_kind == ErrorKind::protocol);
  }
  CHECK(res[2].status == drs::DownloadResult::Status::downloaded);
  CHECK(slurp(opt.dest / "resume.bin") == std::string(3000, 'e'));
  // Nothing is left but the good file: no final name and no huge .impact-part for the endless ones.
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(opt.dest)) left.push_back(e.path().filename().string());
  CHECK(left == std::vector<std::string>{"resume.bin"});
}

TEST_CASE("DRS: a link planted in the folder is refused and never written, truncated, created or removed through") {
  DrsServer srv;
  srv.add("good", {"good.bin", std::string(5000, 'g'), {}, {}, false});
  srv.add("final", {"final.bin", std::string(100, 'f'), {}, {}, false});
  srv.add("big", {"big.bin", std::string(100000, 'B'), {}, {}, false});
  srv.add("dangling", {"dangling.bin", std::string(10, 'd'), {}, {}, false});
  impact::test::TempDir dir;
  namespace fs = std::filesystem;
  const fs::path out = dir.path() / "out", victim = dir.path() / "victim", small = dir.path() / "small";
  fs::create_directories(out);
  std::ofstream(victim, std::ios::binary) << std::string(20000, 'v');  // larger than good.bin: truncated before
  std::ofstream(small, std::ios::binary) << "twelve bytes";              // smaller: appended to with Range before
  fs::create_symlink(victim, out / "good.bin.impact-part");
  fs::create_symlink(victim, out / "final.bin");
  fs::create_symlink(small, out / "big.bin.impact-part.0");
  fs::create_symlink(dir.path() / "created", out / "dangling.bin.impact-part");
  drs::Client c(settings_for(srv.server, nullptr));
  drs::DownloadOptions opt;
  opt.dest = out;
  opt.part_size = 30000;
  auto res = drs::download(c, {srv.uri("good"), srv.uri("final"), srv.uri("big"), srv.uri("dangling")}, opt);
  REQUIRE(res.size() == 4);
  // A link named like the earlier engine's segment is removed like any such leftover (unlinked, not followed).
  CHECK(res[2].status == drs::DownloadResult::Status::downloaded);
  CHECK_FALSE(fs::exists(fs::symlink_status(out / "big.bin.impact-part.0")));
  const std::vector<std::string> names{"good.bin.impact-part", "final.bin", "", "dangling.bin.impact-part"};
  for (std::size_t i : {0, 1, 3}) {
    CAPTURE(i);
    CHECK(res[i].status == drs::DownloadResult::Status::failed);
    CHECK(error_text(res[i]).find(names[i] + " is a symbolic link") != std::string::npos);
    CHECK(res[i].error_kind == ErrorKind::io);
    CHECK(fs::is_symlink(out / names[i]));  // the links are left for the user to look at
  }
  CHECK(slurp(victim) == std::string(20000, 'v'));
  CHECK(slurp(small) == "twelve bytes");
  CHECK_FALSE(fs::exists(fs::symlink_status(dir.path() / "created")));
  CHECK_FALSE(fs::exists(out / "good.bin"));
}

TEST_CASE("DRS: a link at a bundle's folder is refused; nothing is written behind it") {
  namespace fs = std::filesystem;
  impact::test::TempDir dir;
  const fs::path out = dir.path() / "out", elsewhere = dir.path() / "elsewhere";
  fs::create_directories(out);
  fs::create_directories(elsewhere);
  fs::create_symlink("../elsewhere", out / "bundle");
  std::string self;
  MiniServer s([&](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    if (rq.target.find("/data") != std::string::npos) return reply(200, "abc");
    if (rq.target.substr(0, rq.target.find('?')).ends_with("/b"))
      return reply(200,
                   json{{"id", "b"}, {"name", "bundle"}, {"size", 3}, {"checksums", json::array()},
                        {"contents", {{{"name", "member.txt"}, {"id", "m"}}}}}
                       .dump(),
                   json_reply_headers());
    return object_reply("m", "member.txt", 3, {{{"type", "md5"}, {"checksum", "900150983cd24fb0d6963f7d28e17f72"}}}, self);
  });
  self = s.url("/data");
  drs::Client c(settings_for(s, nullptr));
  drs::DownloadOptions opt;
  opt.dest = out;
  auto res = drs::download(c, {"drs://127.0.0.1:" + std::to_string(s.port()) + "/b"}, opt);
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == drs::DownloadResult::Status::failed);
  CHECK(error_text(res[0]).find("bundle is a symbolic link") != std::string::npos);
  CHECK(fs::is_empty(elsewhere));
}

TEST_CASE("DRS: temporary names never collide with objects; an object named like one is refused") {
  DrsServer srv;
  srv.add("x", {"X", "the object X", {}, {}, false});
  srv.add("xpart", {"X.part", "an object named X.part", {}, {}, false});
  srv.add("sneaky", {"X.impact-part", "named like a temporary", {}, {}, false});
  impact::test::TempDir dir;
  drs::Client c(settings_for(srv.server, nullptr));
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "out";
  auto first = drs::download(c, {srv.uri("xpart")}, opt);
  REQUIRE(first.size() == 1);
  CHECK(first[0].status == drs::DownloadResult::Status::downloaded);
  auto second = drs::download(c, {srv.uri("x"), srv.uri("sneaky")}, opt);
  REQUIRE(second.size() == 2);
  CHECK(second[0].status == drs::DownloadResult::Status::downloaded);
  CHECK(second[1].status == drs::DownloadResult::Status::failed);
  CHECK(second[1].error_kind == ErrorKind::protocol);
  CHECK(second[1].error.find("named like impact's own temporary files") != std::string::npos);
  CHECK(slurp(opt.dest / "X.part") == "an object named X.part");
  CHECK(slurp(opt.dest / "X") == "the object X");
  CHECK(std::distance(std::filesystem::directory_iterator(opt.dest), {}) == 2);
}

TEST_CASE("DRS: an object with no checksum impact can verify is not fetched unless unverified files are allowed") {
  DrsServer srv;
  srv.add("plain", {"plain.txt", "no checksum here", {}, {{"etag", "abc"}}, false});
  impact::test::TempDir dir;
  drs::Client c(settings_for(srv.server, nullptr));
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "out";
  auto res = drs::download(c, {srv.uri("plain")}, opt);
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == drs::DownloadResult::Status::failed);
  CHECK(res[0].no_checksum);
  CHECK(error_text(res[0]).find("no checksum impact can verify (offered: etag)") != std::string::npos);
  CHECK(res[0].error_kind == ErrorKind::protocol);
  CHECK((!std::filesystem::exists(opt.dest) || std::filesystem::is_empty(opt.dest)));
  for (const auto& r : srv.server.requests()) CHECK(r.target.rfind("/data/", 0) != 0);  // nothing fetched
  opt.allow_unverified = true;
  res = drs::download(c, {srv.uri("plain")}, opt);
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == drs::DownloadResult::Status::downloaded);
  CHECK(res[0].verified == "size");
  CHECK(slurp(opt.dest / "plain.txt") == "no checksum here");
}

TEST_CASE("a DRS server gets the token by the one rule: same origin as one of the profile's services") {
  MiniServer s([](const test::SeenRequest&) { return reply(404); });
  MiniServer stranger([](const test::SeenRequest&) { return reply(404); });
  FakeCredentials creds;
  drs::Settings st = settings_for(s, &creds);
  st.profile.drs.clear();
  st.profile.wes = s.url("/ga4gh/wes/v1");  // the server is the profile's WES host, not one of its DRS servers
  drs::Client client(st);
  const auto port = std::to_string(s.port());
  CHECK(client.locate(drs::parse_uri("drs://127.0.0.1:" + port + "/obj-1")).trusted);
  CHECK(auth::is_profile_service(st.profile, s.url("/ga4gh/drs/v1/objects/obj-1")));
  const auto other = client.locate(drs::parse_uri("drs://127.0.0.1:" + std::to_string(stranger.port()) + "/obj-1"));
  CHECK_FALSE(other.trusted);
  CHECK_FALSE(auth::is_profile_service(st.profile, other.base_url));
  CHECK(creds.token_for.empty());  // locating asks for no token
}

TEST_CASE("DRS: a Crypt4GH object is written decrypted when asked, from segment-aligned ranges past its header") {
  namespace c4gh = impact::crypt4gh;
  const auto reader = c4gh::generate_key_pair();
  std::string plain;
  for (int i = 0; i < 200000; ++i) plain += static_cast<char>('a' + (i * 11) % 26);
  std::string file;
  c4gh::Encryptor enc({reader.public_key}, [&](std::string_view b) { file.append(b); });
  enc.update(plain);
  enc.finish();
  impact::test::TempDir dir;
  const std::string sha = BigObject::sha_of(file, dir);
  std::string self;
  MiniServer s([&](const auto& rq) {
    if (rq.method == "OPTIONS") return reply(200, R"({"supported_types":["None"]})", json_reply_headers());
    if (rq.target == "/data") {
      auto r = rq.headers.find("range");
      if (r == rq.headers.end()) return reply(200, file);
      std::size_t a = 0, b = file.size() - 1;
      std::sscanf(r->second.c_str(), "bytes=%zu-%zu", &a, &b);
      b = std::min(b, file.size() - 1);
      return reply(206, file.substr(a, b - a + 1),
                   "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(file.size()) + "\r\n");
    }
    return object_reply("enc", "secret.txt.c4gh", file.size(), {{{"type", "sha-256"}, {"checksum", sha}}}, self);
  });
  self = s.url("/data");
  drs::Client c{settings_for(s, nullptr)};
  drs::DownloadOptions opt;
  opt.dest = dir.path() / "out";
  opt.part_size = 100000;  // parts that do not start on a segment: the segment holding each start is fetched
  opt.decrypt_with = &reader;
  std::filesystem::create_directories(opt.dest);
  const std::string uri = "drs://127.0.0.1:" + std::to_string(s.port()) + "/enc";
  auto res = drs::download(c, {uri}, opt);
  REQUIRE(res.size() == 1);
  CHECK(res[0].error == "");
  CHECK(res[0].verified == "size,crypt4gh");
  CHECK(res[0].path == "secret.txt");
  std::ifstream in(opt.dest / "secret.txt", std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == plain);
  // without the key the object is written as it is, checked against its checksum
  opt.decrypt_with = nullptr;
  res = drs::download(c, {uri}, opt);
  CHECK(res[0].verified == "size,sha256");
  CHECK(drs::file_digest(opt.dest / "secret.txt.c4gh", "sha-256") == sha);
}
