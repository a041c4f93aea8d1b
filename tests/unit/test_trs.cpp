// TRS: the model (bounds, ids, paths, checksums), the client against a loopback registry in both dialects'
// paging styles, and fetching into a folder.
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "impact/error.hpp"
#include "impact/trs.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::Reply;
using impact::test::SeenRequest;
using nlohmann::json;

namespace {

http::Options fast() {
  http::Options o = http::default_options();
  o.retry.base = std::chrono::milliseconds(1);
  o.retry.cap = std::chrono::milliseconds(5);
  o.stall_seconds = 5;
  return o;
}

Reply js(int status, const json& body, const std::string& headers = "") {
  return impact::test::reply(status, body.dump(), "Content-Type: application/json\r\n" + headers);
}

json tool_json(const std::string& id, const std::string& name, const std::string& type = "CWL") {
  return {{"id", id},
          {"url", "http://x/tools/" + id},
          {"name", name},
          {"organization", "org"},
          {"toolclass", {{"name", "Workflow"}}},
          {"versions", json::array({{{"id", "1"}, {"name", "1"}, {"url", "u"}, {"descriptor_type", {type}}, {"author", {"A"}}}})}};
}

std::string query_value(const std::string& target, const std::string& key) {
  auto q = target.find('?');
  if (q == std::string::npos) return {};
  std::stringstream ss(target.substr(q + 1));
  std::string part;
  while (std::getline(ss, part, '&'))
    if (part.rfind(key + "=", 0) == 0) return part.substr(key.size() + 1);
  return {};
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("trs: ids are one percent-encoded path segment; refs split at the last colon") {
  CHECK(trs::tool_path("#workflow/github.com/org/repo") == "tools/%23workflow%2Fgithub.com%2Forg%2Frepo");
  CHECK(trs::version_path("42", "1") == "tools/42/versions/1");
  CHECK(trs::version_path("#workflow/github.com/o/r", "v1.0/x") ==
        "tools/%23workflow%2Fgithub.com%2Fo%2Fr/versions/v1.0%2Fx");
  auto r = trs::parse_ref("#workflow/github.com/org/repo:main");
  CHECK(r.id == "#workflow/github.com/org/repo");
  CHECK(r.version == "main");
  CHECK(trs::parse_ref("12").version.empty());
  CHECK_THROWS_AS(trs::parse_ref("12:"), Error);
  CHECK_THROWS_AS(trs::parse_ref(":1"), Error);
  CHECK_THROWS_AS(trs::parse_ref("a\x1b[31m:1"), Error);
  CHECK(trs::normalize_type("cwl") == "CWL");
  CHECK(trs::normalize_type("PLAIN_smk") == "SMK");
  CHECK_THROWS_AS(trs::normalize_type("python"), Error);
}

TEST_CASE("trs: relative paths from a registry are made safe or refused") {
  CHECK(trs::safe_relative_path("tools/sum.cwl") == std::optional<std::string>("tools/sum.cwl"));
  CHECK(trs::safe_relative_path("./main.cwl") == std::optional<std::string>("main.cwl"));
  CHECK(trs::safe_relative_path("a/./b") == std::optional<std::string>("a/b"));
  CHECK(trs::safe_relative_path("..x/y..") == std::optional<std::string>("..x/y.."));  // names, not climbs
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a\\b", "x.impact-part", "a/\x01",
                          ".."})
    CHECK_MESSAGE(!trs::safe_relative_path(bad), bad);
}

TEST_CASE("trs: documents are read leniently and with bounds") {
  json doc = tool_json("7", "wf");
  doc["description"] = std::string(200000, 'd');
  doc["versions"].push_back(42);                               // an odd version is skipped
  doc["versions"].push_back({{"id", 3}, {"name", 3}, {"url", "u"}});  // numeric ids (WorkflowHub) read as text
  auto t = trs::parse_tool(doc, "test");
  CHECK(t.id == "7");
  CHECK(t.description.size() == 64 * 1024);
  REQUIRE(t.versions.size() == 2);
  CHECK(t.versions[1].id == "3");
  CHECK(t.tool_class == "Workflow");
  CHECK(t.authors() == std::vector<std::string>{"A"});
  CHECK_THROWS_AS(trs::parse_tool(json::array(), "test"), Error);
  CHECK_THROWS_AS(trs::parse_tool(json{{"name", "no id"}}, "test"), Error);
  auto files = trs::parse_files(json::parse(R"([{"path":"a.cwl","file_type":"PRIMARY_DESCRIPTOR",
      "checksum":{"checksum":"ab","type":"sha-256"}}, {"file_type":"OTHER"}, 5])"), "test");
  REQUIRE(files.size() == 1);
  CHECK(files[0].checksums.size() == 1);
  auto w = trs::parse_file_wrapper(json::parse(R"({"content":"x","checksum":[{"checksum":"1","type":"md5"},{"type":"x"}]})"), "t");
  CHECK(w.content == std::optional<std::string>("x"));
  CHECK(w.checksums.size() == 1);
}

TEST_CASE("trs: checksums are verified where impact can compute them") {
  const std::string sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";  // "hello"
  CHECK(trs::verify("hello", {{"sha-256", sha}}, "f") == "sha-256");
  CHECK(trs::verify("hello", {{"sha256", "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"}}, "f") == "sha256");
  CHECK(trs::verify("hello", {{"crc32c", "x"}}, "f").empty());
  CHECK(trs::verify("hello", {}, "f").empty());
  CHECK_THROWS_WITH_AS(trs::verify("hellO", {{"sha-256", sha}}, "the file x"), doctest::Contains("checksum does not match"), Error);
}

TEST_CASE("trs: trs:// URIs in the form WESkit reads") {
  CHECK(trs::trs_uri("http://127.0.0.1:18060/ga4gh/trs/v2", "2", "1", "CWL") ==
        "trs://127.0.0.1:18060/ga4gh/trs/v2/2/1/CWL");
  CHECK(trs::trs_uri("https://dockstore.org/api/ga4gh/trs/v2/", "#workflow/github.com/o/r", "main", "NFL") ==
        "trs://dockstore.org/api/ga4gh/trs/v2/%23workflow%2Fgithub.com%2Fo%2Fr/main/NFL");
}

TEST_CASE("trs: listings follow next_page, whatever offset means to the registry") {
  // Dockstore style: offset is a page number; WorkflowHub style: an index. Both give next_page.
  for (bool page_numbers : {true, false}) {
    CAPTURE(page_numbers);
    std::vector<json> all;
    for (int i = 0; i < 5; ++i) all.push_back(tool_json(std::to_string(i), "wf" + std::to_string(i)));
    MiniServer server([&](const SeenRequest& r) {
      const std::size_t limit = 2;
      const std::string off = query_value(r.target, "offset");
      const std::size_t offset = off.empty() ? 0 : std::stoul(off);
      const std::size_t start = page_numbers ? offset * limit : offset;
      json page = json::array();
      for (std::size_t i = start; i < std::min(all.size(), start + limit); ++i) page.push_back(all[i]);
      std::string headers;
      if (start + limit < all.size())
        headers = "next_page: http://127.0.0.1:1/api/ga4gh/trs/v2/tools?limit=2&offset=" +
                  std::to_string(page_numbers ? offset + 1 : start + limit) + "\r\n";  // another port: a proxy's
      return js(200, page, headers);
    });
    http::Client http(fast());
    trs::Client c(http, {"r", server.url("/api/ga4gh/trs/v2")});
    trs::Query q;
    q.descriptor_type = "CWL";
    auto res = c.search(q);
    CHECK(res.tools.size() == 5);
    CHECK(res.pages == 3);
    CHECK_FALSE(res.truncated);
    const auto seen = server.requests();
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].target.find("descriptorType=CWL") != std::string::npos);
    CHECK(seen[0].target.find("limit=100") != std::string::npos);
    for (const auto& s : seen) CHECK(s.target.rfind("/api/ga4gh/trs/v2/tools", 0) == 0);

    q.max_items = 3;
    auto few = c.search(q);
    CHECK(few.tools.size() == 3);
    CHECK(few.truncated);
    CHECK(few.stopped_by == "items");
  }
}

TEST_CASE("trs: a listing is bounded: pages, loops and links to elsewhere") {
  int n = 0;
  MiniServer server([&](const SeenRequest&) {
    ++n;
    // every page new tools, and always a next page
    return js(200, json::array({tool_json("t" + std::to_string(n), "x")}),
              "next_page: /ga4gh/trs/v2/tools?offset=" + std::to_string(n) + "\r\n");
  });
  http::Client http(fast());
  trs::Client c(http, {"r", server.url("/ga4gh/trs/v2")});
  trs::Query q;
  q.max_pages = 4;
  auto res = c.search(q);
  CHECK(res.pages == 4);
  CHECK(res.truncated);
  CHECK(res.stopped_by == "pages");

  // a next_page back to the same page: not asked again
  MiniServer loop([&](const SeenRequest&) {
    return js(200, json::array({tool_json("same", "x")}), "next_page: /ga4gh/trs/v2/tools?limit=100\r\n");
  });
  trs::Client lc(http, {"r", loop.url("/ga4gh/trs/v2")});
  auto l = lc.search({});
  CHECK(l.tools.size() == 1);
  CHECK(loop.requests().size() == 1);
  // new links but the same tools again: a page without new tools ends it
  int m = 0;
  MiniServer repeat([&](const SeenRequest&) {
    return js(200, json::array({tool_json("same", "x")}), "next_page: /ga4gh/trs/v2/tools?offset=" + std::to_string(++m) + "\r\n");
  });
  trs::Client rc(http, {"r", repeat.url("/ga4gh/trs/v2")});
  CHECK(rc.search({}).tools.size() == 1);
  CHECK(repeat.requests().size() == 2);

  MiniServer away([&](const SeenRequest&) {
    return js(200, json::array({tool_json("a", "x")}), "next_page: https://elsewhere.example/tools?offset=1\r\n");
  });
  trs::Client ac(http, {"r", away.url("/ga4gh/trs/v2")});
  CHECK(ac.search({}).tools.size() == 1);
  CHECK(away.requests().size() == 1);
}

TEST_CASE("trs: tool and version requests encode Dockstore ids; errors keep their kind") {
  MiniServer server([&](const SeenRequest& r) {
    if (r.target == "/api/ga4gh/trs/v2/tools/%23workflow%2Fgithub.com%2Fo%2Fr") return js(200, tool_json("#workflow/github.com/o/r", "r"));
    if (r.target == "/api/ga4gh/trs/v2/tools/%23workflow%2Fgithub.com%2Fo%2Fr/versions/main")
      return js(200, {{"id", "x:main"}, {"name", "main"}, {"url", "u"}, {"descriptor_type", {"WDL"}}});
    return js(404, {{"code", 404}, {"message", "not found"}});
  });
  http::Client http(fast());
  trs::Client c(http, {"dockstore", server.url("/api/ga4gh/trs/v2")});
  CHECK(c.tool("#workflow/github.com/o/r").name == "r");
  CHECK(c.version("#workflow/github.com/o/r", "main").descriptor_types == std::vector<std::string>{"WDL"});
  try {
    c.tool("nope");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
  }
  CHECK_FALSE(c.files("#workflow/github.com/o/r", "main", "WDL").has_value());
}

namespace {
// A registry with a multi-file CWL workflow; `listed` is what /files says, `sums` gives checksums.
struct Registry {
  std::map<std::string, std::string> content{{"main.cwl", "class: Workflow\n"}, {"tools/a.cwl", "class: CommandLineTool\n"}};
  json listed = json::parse(R"([{"path":"main.cwl","file_type":"PRIMARY_DESCRIPTOR"},
                                {"path":"tools/a.cwl","file_type":"SECONDARY_DESCRIPTOR"}])");
  std::map<std::string, std::string> sums;
  bool files_endpoint = true;
  MiniServer server{[this](const SeenRequest& r) { return answer(r); }};

  Reply answer(const SeenRequest& r) {
    const std::string base = "/ga4gh/trs/v2/tools/5/versions/1/CWL/";
    if (r.target == base + "files") return files_endpoint ? js(200, listed) : js(404, {{"code", 404}});
    std::string path;
    if (r.target == base + "descriptor") path = "main.cwl";
    else if (r.target.rfind(base + "descriptor/", 0) == 0) {
      path = r.target.substr(base.size() + 11);
      for (std::size_t at; (at = path.find("%2F")) != std::string::npos;) path.replace(at, 3, "/");
    }
    auto it = content.find(path);
    if (it == content.end()) return js(404, {{"code", 404}});
    json w = {{"content", it->second}, {"url", "https://github.com/o/r/raw/" + path}};
    if (sums.count(path)) w["checksum"] = json::array({{{"type", "sha-256"}, {"checksum", sums[path]}}});
    return js(200, w);
  }
};
}  // namespace

TEST_CASE("trs: fetch writes the descriptor and its relative files, verified, inside the folder") {
  Registry reg;
  reg.sums["tools/a.cwl"] = *trs::digest(reg.content["tools/a.cwl"], "sha-256");
  http::Client http(fast());
  trs::Client c(http, {"r", reg.server.url("/ga4gh/trs/v2")});
  test::TempDir tmp;
  auto got = trs::fetch(c, "5", "1", "CWL", tmp.path() / "wf");
  CHECK(got.primary == "main.cwl");
  REQUIRE(got.files.size() == 2);
  CHECK(got.files[1].verified == "sha-256");
  CHECK(got.files[0].verified.empty());
  CHECK(got.descriptor_checksum == "sha-256:" + *trs::digest("class: Workflow\n", "sha-256"));
  CHECK(read(tmp.path() / "wf" / "main.cwl") == "class: Workflow\n");
  CHECK(read(tmp.path() / "wf" / "tools" / "a.cwl") == "class: CommandLineTool\n");
  // the relative path went as one encoded segment
  bool encoded = false;
  for (const auto& r : reg.server.requests()) encoded = encoded || r.target.find("descriptor/tools%2Fa.cwl") != std::string::npos;
  CHECK(encoded);
  CHECK_FALSE(std::filesystem::exists(tmp.path() / "wf" / "main.cwl.impact-part"));
}

TEST_CASE("trs: fetch refuses a checksum mismatch and unsafe paths, writing nothing") {
  http::Client http(fast());
  test::TempDir tmp;
  {
    Registry reg;
    reg.sums["tools/a.cwl"] = std::string(64, '0');
    trs::Client c(http, {"r", reg.server.url("/ga4gh/trs/v2")});
    CHECK_THROWS_WITH_AS(trs::fetch(c, "5", "1", "CWL", tmp.path() / "a"), doctest::Contains("checksum does not match"), Error);
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "a"));
  }
  for (const char* bad : {"../escape.cwl", "/etc/x", "tools/../../x"}) {
    CAPTURE(bad);
    Registry reg;
    reg.listed.push_back({{"path", bad}, {"file_type", "OTHER"}});
    trs::Client c(http, {"r", reg.server.url("/ga4gh/trs/v2")});
    CHECK_THROWS_WITH_AS(trs::fetch(c, "5", "1", "CWL", tmp.path() / "b"), doctest::Contains("not a safe relative path"), Error);
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "b"));
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "escape.cwl"));
  }
  {
    // a link planted in the folder is not followed
    Registry reg;
    std::filesystem::create_directories(tmp.path() / "c");
    std::filesystem::create_directories(tmp.path() / "outside");
    std::filesystem::create_directory_symlink(tmp.path() / "outside", tmp.path() / "c" / "tools");
    trs::Client c(http, {"r", reg.server.url("/ga4gh/trs/v2")});
    CHECK_THROWS_AS(trs::fetch(c, "5", "1", "CWL", tmp.path() / "c"), Error);
    CHECK(std::filesystem::is_empty(tmp.path() / "outside"));
  }
}

TEST_CASE("trs: a registry without /files gives the primary descriptor alone, named from its URL") {
  Registry reg;
  reg.files_endpoint = false;
  http::Client http(fast());
  trs::Client c(http, {"r", reg.server.url("/ga4gh/trs/v2")});
  test::TempDir tmp;
  auto got = trs::fetch(c, "5", "1", "CWL", tmp.path());
  REQUIRE(got.files.size() == 1);
  CHECK(got.primary == "main.cwl");
  CHECK(std::filesystem::exists(tmp.path() / "main.cwl"));
}
