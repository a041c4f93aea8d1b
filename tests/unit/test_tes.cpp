// The TES client and task documents against scripted loopback servers.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <regex>

#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/session.hpp"
#include "impact/tes.hpp"
#include "client_fixture.hpp"
#include "mini_server.hpp"

using namespace impact;
using namespace impact::tes;
using namespace impact::test;  // client_fixture.hpp, mini_server.hpp
using nlohmann::json;

namespace {

std::string request_id_of(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("tags")) return {};
  return j["tags"].value("impact_request_id", "");
}

struct Fixture : ClientFixture<Client> {
  explicit Fixture(MiniServer::Handler h) : ClientFixture(std::move(h), "/ga4gh/tes/v1", "tok-tes-123") {}
};

json simple_task() {
  return {{"executors", json::array({{{"image", "alpine"}, {"command", {"echo", "hi"}}}})}};
}

wes::WaitOptions quick() {
  wes::WaitOptions o;
  o.initial = std::chrono::milliseconds(5);
  o.cap = std::chrono::milliseconds(20);
  return o;
}

}  // namespace

TEST_CASE("tes: a task built from flags is a valid TES document") {
  TaskSpec s;
  s.name = "count";
  s.image = "alpine";
  s.command = {"/bin/sh", "-c", "wc -l /in/x"};
  s.inputs.push_back({"https://example.org/x?a=1", "/in/x", ""});
  s.outputs.push_back({"/out/n", "s3://bucket/n"});
  s.cpu_cores = 2;
  s.ram_gb = 1.5;
  s.tags["k"] = "v";
  auto doc = task_document(s);
  CHECK_NOTHROW(validate_task(doc));
  CHECK(doc["executors"][0]["command"][2] == "wc -l /in/x");
  CHECK(doc["inputs"][0]["url"] == "https://example.org/x?a=1");
  CHECK(doc["outputs"][0]["path"] == "/out/n");
  CHECK(doc["resources"]["cpu_cores"] == 2);
  CHECK(doc["tags"]["k"] == "v");
}

TEST_CASE("tes: invalid documents are refused naming each problem") {
  auto msg = [](const json& doc) {
    try {
      validate_task(doc);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(msg(json::array()).find("not a JSON object") != std::string::npos);
  CHECK(msg(json::object()).find("'executors' must be a non-empty array") != std::string::npos);
  CHECK(msg({{"executors", json::array({{{"image", "a"}, {"command", json::array()}}})}}).find("executors[0].command") !=
        std::string::npos);
  CHECK(msg({{"executors", json::array({{{"command", {"x"}}}})}}).find("executors[0].image") != std::string::npos);
  auto t = simple_task();
  t["inputs"] = json::array({{{"path", "/x"}}});
  t["outputs"] = json::array({{{"path", "/y"}}});
  t["tags"] = {{"a", 1}};
  t["state"] = "COMPLETE";
  t["resources"] = {{"cpu_cores", 0}, {"ram_gb", -1}};
  const auto m = msg(t);
  for (const char* want : {"inputs[0] needs a 'url' or a 'content'", "outputs[0].url", "'tags' must be an object of strings",
                           "'state' is set by the server", "cpu_cores", "ram_gb"})
    CHECK_MESSAGE(m.find(want) != std::string::npos, want);
  auto ok = simple_task();
  ok["inputs"] = json::array({{{"path", "/x"}, {"content", "inline"}}});
  CHECK(msg(ok) == "accepted");
}

TEST_CASE("tes: URLs with credentials are refused unless allowed, and shown redacted") {
  auto t = simple_task();
  t["inputs"] = json::array({{{"path", "/x"}, {"url", "https://user:pw@example.org/x"}}});
  try {
    check_url_credentials(t, false);
    FAIL("accepted a URL with a password");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("inputs[0].url") != std::string::npos);
    CHECK(std::string(e.what()).find("pw") == std::string::npos);
  }
  CHECK_NOTHROW(check_url_credentials(t, true));
  t["inputs"][0]["url"] = "https://s3.example.org/b/k?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA";
  CHECK_THROWS_AS(check_url_credentials(t, false), Error);
  t["inputs"][0]["url"] = "https://example.org/open/file.txt";
  CHECK_NOTHROW(check_url_credentials(t, false));
  // A task from a server: its URLs are kept redacted in the document impact shows.
  auto doc = simple_task();
  doc["id"] = "t1";
  doc["state"] = "RUNNING";
  doc["outputs"] = json::array({{{"path", "/o"}, {"url", "https://h/b?X-Amz-Signature=secretsig"}}});
  auto task = parse_task(doc);
  CHECK(task.document.dump().find("secretsig") == std::string::npos);
}

TEST_CASE("tes: parsing is lenient and bounded") {
  auto t = parse_task({{"id", "t1"}, {"state", "PREEMPTED"}, {"tags", {{"a", "b"}}},
                       {"logs", json::array({{{"logs", json::array({{{"exit_code", 3}, {"stdout", "out"}}, "junk"})},
                                              {"system_logs", {"image ignored", 5}}}})}});
  CHECK(t.state == State::preempted);
  CHECK(wes::exit_code_for(t.state) == exit_code::run_preempted);
  CHECK(t.tags_known);
  REQUIRE(t.logs.size() == 1);
  REQUIRE(t.logs[0].logs.size() == 2);
  CHECK(*t.logs[0].logs[0].exit_code == 3);
  CHECK(t.logs[0].logs[0].stdout_text == "out");
  CHECK_FALSE(t.logs[0].logs[1].exit_code);
  CHECK(t.logs[0].system_logs == std::vector<std::string>{"image ignored"});
  auto odd = parse_task(json::array());
  CHECK(odd.id.empty());
  CHECK(odd.state == State::unknown);
  CHECK_FALSE(parse_task({{"id", "x"}}).tags_known);
  std::string deep(300, '[');
  CHECK_THROWS_AS(parse_document(deep, "x", ErrorKind::protocol), Error);
}

TEST_CASE("tes: tag filters follow the specification's table") {
  CHECK(tags_match({{"foo", "bar"}}, {{"foo", "bar"}}));
  CHECK_FALSE(tags_match({{"foo", "bar"}}, {{"foo", "bat"}}));
  CHECK(tags_match({{"foo", ""}}, {{"foo", ""}}));
  CHECK(tags_match({{"foo", "bar"}}, {{"foo", "bar"}, {"baz", "bat"}}));
  CHECK_FALSE(tags_match({{"foo", "bar"}, {"baz", "bat"}}, {{"foo", "bar"}}));
  CHECK(tags_match({{"foo", ""}}, {{"foo", "bar"}}));
  CHECK_FALSE(tags_match({{"foo", ""}}, {}));
}

TEST_CASE("tes client: create sends the document once with a request tag and the token") {
  std::string body;
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST" && r.target == "/ga4gh/tes/v1/tasks") {
      body = r.body;
      return js(200, {{"id", "task-1"}});
    }
    return js(404, {});
  });
  auto c = f.client();
  CHECK(c.create(simple_task()) == "task-1");
  CHECK(request_id_of(body).size() == 32);
  CHECK(f.count("POST", "/") == 1);
  CHECK(f.server.requests().back().headers.at("authorization") == "Bearer tok-tes-123");
  CHECK(f.server.requests().back().headers.at("content-type") == "application/json");
  CHECK(body.find("tok-tes-123") == std::string::npos);  // never in the document
}

TEST_CASE("tes client: a lost answer is settled by the tag, never by a blind second POST") {
  std::mutex mu;
  std::vector<std::string> ids;
  std::string created;  // the task the first POST made before its answer was lost
  Fixture f([&](const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.method == "POST") {
      ids.push_back(request_id_of(r.body));
      created = ids.back();
      return Reply{"", true, false};  // the task is made, the answer lost
    }
    if (starts(r.target, "/ga4gh/tes/v1/tasks?")) {
      const bool filtered = r.target.find("tag_key=impact_request_id&tag_value=" + created) != std::string::npos;
      CHECK(filtered);
      CHECK(r.target.find("view=BASIC") != std::string::npos);
      // other tasks too, as a server that ignores the filter would send them
      return js(200, {{"tasks", json::array({{{"id", "other"}, {"state", "COMPLETE"}, {"tags", {{"impact_request_id", "x"}}}},
                                             {{"id", "mine"}, {"state", "QUEUED"}, {"tags", {{"impact_request_id", created}}}}})}});
    }
    return js(404, {});
  });
  auto c = f.client();
  CHECK(c.create(simple_task()) == "mine");
  CHECK(ids.size() == 1);
}

TEST_CASE("tes client: a lost answer with nothing made is sent again under the same tag") {
  std::mutex mu;
  std::vector<std::string> ids;
  Fixture f([&](const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.method == "POST") {
      ids.push_back(request_id_of(r.body));
      if (ids.size() == 1) return Reply{"", true, false};
      return js(200, {{"id", "second"}});
    }
    if (starts(r.target, "/ga4gh/tes/v1/tasks?")) return js(200, {{"tasks", json::array()}});
    return js(404, {});
  });
  auto c = f.client();
  CHECK(c.create(simple_task()) == "second");
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == ids[1]);
  auto reqs = f.server.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[1].method == "GET");  // looked before sending again
  CHECK(reqs[2].method == "POST");
}

TEST_CASE("tes client: when the list cannot be read after a lost answer, it says so and names the tag") {
  std::atomic<int> posts{0};
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") {
      ++posts;
      return Reply{"", true, false};
    }
    return js(403, {{"msg", "no listing"}});
  });
  auto c = f.client();
  try {
    c.create(simple_task());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cannot tell whether the task was created") != std::string::npos);
    // The library names the tag as facts; the CLI words the command (hints.cpp).
    CHECK(e.remedy() == Remedy::task_list_tag);
    CHECK(e.fact("tag") == "impact_request_id");
    CHECK(!e.fact("value").empty());
  }
  CHECK(posts.load() == 1);
}

TEST_CASE("tes client: the user's own token in an input URL is refused before sending, unless allowed") {
  std::atomic<int> posts{0};
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") {
      ++posts;
      return js(200, {{"id", "t"}});
    }
    return js(404, {});
  });
  auto c = f.client();
  auto t = simple_task();
  t["inputs"] = json::array({{{"path", "/x"}, {"url", "https://data.example.org/x?key=tok-tes-123"}}});
  try {
    c.create(t);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()).find("inputs[0].url holds your access token") != std::string::npos);
    CHECK(std::string(e.what()).find("tok-tes-123") == std::string::npos);
  }
  CHECK(posts.load() == 0);
  CHECK(c.create(t, true) == "t");
  CHECK(posts.load() == 1);
}

TEST_CASE("tes client: a 400 is the server's refusal with its reason, sent once") {
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") return js(400, {{"message", "executor image not allowed"}});
    return js(404, {});
  });
  auto c = f.client();
  try {
    c.create(simple_task());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("executor image not allowed") != std::string::npos);
  }
  CHECK(f.count("POST", "/") == 1);
  CHECK(f.count("GET", "/") == 0);
}

TEST_CASE("tes client: list sends the filters, follows pages and stops on an empty page or a repeated token") {
  std::atomic<int> pages{0};
  Fixture f([&](const SeenRequest& r) {
    if (!starts(r.target, "/ga4gh/tes/v1/tasks?")) return js(404, {});
    const int n = ++pages;
    if (n == 1) {
      CHECK(r.target.find("name_prefix=job") != std::string::npos);
      CHECK(r.target.find("state=RUNNING") != std::string::npos);
      CHECK(r.target.find("tag_key=k&tag_value=v") != std::string::npos);
      CHECK(r.target.find("view=BASIC") != std::string::npos);
      CHECK(r.target.find("page_size=2") != std::string::npos);
      CHECK(r.target.find("page_token") == std::string::npos);
      return js(200, {{"tasks", json::array({{{"id", "a"}, {"state", "RUNNING"}, {"name", "job-a"}, {"tags", {{"k", "v"}}}},
                                             {{"id", "b"}, {"state", "RUNNING"}, {"name", "job-b"}, {"tags", {{"k", "v"}}}}})},
                      {"next_page_token", "b"}});
    }
    CHECK(r.target.find("page_token=b") != std::string::npos);
    // a server that ignores the filters: impact filters again
    return js(200, {{"tasks", json::array({{{"id", "c"}, {"state", "COMPLETE"}, {"name", "job-c"}, {"tags", {{"k", "v"}}}},
                                           {{"id", "d"}, {"state", "RUNNING"}, {"name", "other"}, {"tags", {{"k", "v"}}}},
                                           {{"id", "e"}, {"state", "RUNNING"}, {"name", "job-e"}, {"tags", {{"k", "w"}}}}})},
                    {"next_page_token", "b"}});  // the same token again: the list ends
  });
  auto c = f.client();
  ListFilter lf;
  lf.name_prefix = "job";
  lf.state = State::running;
  lf.tags["k"] = "v";
  lf.view = View::basic;
  lf.page_size = 2;
  std::vector<std::string> seen;
  CHECK(c.list([&](const Task& t) { seen.push_back(t.id); return true; }, lf));
  CHECK(seen == std::vector<std::string>{"a", "b"});
  CHECK(pages.load() == 2);
}

TEST_CASE("tes client: a list that never ends is bounded by pages") {
  std::atomic<int> pages{0};
  Fixture f([&](const SeenRequest&) {
    const int n = ++pages;
    return js(200, {{"tasks", json::array({{{"id", "t" + std::to_string(n)}, {"state", "QUEUED"}}})},
                    {"next_page_token", "p" + std::to_string(n)}});
  });
  auto c = f.client();
  ListFilter lf;
  lf.max_pages = 7;
  CHECK_FALSE(c.list([](const Task&) { return true; }, lf));
  CHECK(pages.load() == 7);
}

TEST_CASE("tes client: get asks for the view; cancel posts :cancel") {
  Fixture f([&](const SeenRequest& r) {
    if (r.target == "/ga4gh/tes/v1/tasks/t%2F1?view=FULL")
      return js(200, {{"id", "t/1"}, {"state", "EXECUTOR_ERROR"}, {"logs", json::array({{{"logs", json::array({{{"stdout", "o"}}})}}})}});
    if (r.method == "POST" && r.target == "/ga4gh/tes/v1/tasks/t%2F1:cancel") return js(200, json::object());
    return js(404, {{"message", "no such task"}});
  });
  auto c = f.client();
  auto t = c.get("t/1", View::full);
  CHECK(t.state == State::executor_error);
  CHECK(t.logs.at(0).logs.at(0).stdout_text == "o");
  CHECK_NOTHROW(c.cancel("t/1"));
  try {
    c.get("nope", View::minimal);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
  }
}

TEST_CASE("tes wait: MINIMAL polls to the end, PREEMPTED gives run wait's exit code, the token asked each time") {
  std::atomic<int> polls{0};
  Fixture f([&](const SeenRequest& r) {
    if (r.target == "/ga4gh/tes/v1/tasks/x?view=MINIMAL") {
      const int n = ++polls;
      return js(200, {{"id", "x"}, {"state", n < 2 ? "QUEUED" : n < 4 ? "RUNNING" : "PREEMPTED"}});
    }
    return js(404, {});
  });
  auto c = f.client();
  auto r = wait(c, {"x"}, quick());
  CHECK_FALSE(r.timed_out);
  CHECK(r.runs.at(0).second == State::preempted);
  CHECK(r.exit_code() == exit_code::run_preempted);
  CHECK(f.tokens.load() == polls.load());  // a fresh token (refreshed when due) for every request
}

TEST_CASE("tes: the profile's TES is one of its services, so IMPACT_TOKEN and the login go there") {
  Profile p;
  p.name = "x";
  p.tes = "https://tes.example.org/ga4gh/tes/v1";
  CHECK(auth::is_profile_service(p, "https://tes.example.org/ga4gh/tes/v1/tasks"));
  CHECK_FALSE(auth::is_profile_service(p, "https://other.example.org/ga4gh/tes/v1/tasks"));
}
