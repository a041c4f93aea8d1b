// The WES client against scripted loopback servers: one per dialect or failure it must cope with.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <regex>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/wes.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using namespace impact::wes;
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

Reply js(int status, const json& body) {
  return impact::test::reply(status, body.dump(), "Content-Type: application/json\r\n");
}

bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The client request id a submission carried in its tags field.
std::string request_id_of(const std::string& body) {
  std::smatch m;
  static const std::regex re("impact_request_id\\\":\\\"([0-9a-f]+)");
  return std::regex_search(body, m, re) ? m[1].str() : std::string();
}

struct Fixture {
  explicit Fixture(MiniServer::Handler h) : server(std::move(h)), http(fast()) {}
  Client client(const std::string& base = "/ga4gh/wes/v1") {
    return Client(http, server.url(base), [this] {
      ++tokens;
      return std::string("tok-123");
    });
  }
  int count(const std::string& method, const std::string& prefix) const {
    int n = 0;
    for (const auto& r : server.requests()) n += r.method == method && starts(r.target, prefix);
    return n;
  }
  MiniServer server;
  http::Client http;
  std::atomic<int> tokens{0};
};

WaitOptions quick() {
  WaitOptions o;
  o.initial = std::chrono::milliseconds(5);
  o.cap = std::chrono::milliseconds(20);
  return o;
}

}  // namespace

TEST_CASE("the API root is discovered below an origin, and listing follows page tokens") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/service-info")
      return js(200, {{"id", "w"}, {"name", "w"}, {"type", {{"group", "org.ga4gh"}, {"artifact", "wes"}, {"version", "1.1.0"}}},
                      {"organization", {{"name", "o"}, {"url", "https://o"}}}, {"version", "1"}});
    if (r.target == "/ga4gh/wes/v1/runs?page_size=1000")
      return js(200, {{"runs", {{{"run_id", "c"}, {"state", "RUNNING"}}, {{"run_id", "b"}, {"state", "COMPLETE"}}}},
                      {"next_page_token", "p2"}});
    if (r.target == "/ga4gh/wes/v1/runs?page_size=1000&page_token=p2")
      return js(200, {{"runs", {{{"run_id", "a"}, {"state", "CANCELED"}}}}, {"next_page_token", ""}});
    return js(404, {{"msg", "no"}, {"status_code", 404}});
  });
  auto c = f.client("");
  std::vector<std::string> ids;
  c.list([&](const RunSummary& s) {
    ids.push_back(s.run_id);
    return true;
  });
  CHECK(c.base_url() == f.server.url("/ga4gh/wes/v1"));
  CHECK(ids == std::vector<std::string>{"c", "b", "a"});
  for (const auto& r : f.server.requests())
    if (starts(r.target, "/ga4gh/wes/v1/runs")) CHECK(r.headers.at("authorization") == "Bearer tok-123");
  CHECK(f.tokens == 2);  // asked for each request: a long wait gets refreshed tokens
}

TEST_CASE("listing copes with a server that ignores page_size, and one that hands out the same page forever") {
  std::atomic<int> calls{0};
  Fixture f([&](const SeenRequest& r) {
    if (!starts(r.target, "/ga4gh/wes/v1/runs")) return js(404, {});
    ++calls;
    json runs = json::array();
    for (int i = 0; i < 3000; ++i) {
      std::string id = "r";
      id += std::to_string(i);
      runs.push_back({{"run_id", id}, {"state", "COMPLETE"}});
    }
    return js(200, {{"runs", runs}, {"next_page_token", "same"}});
  });
  auto c = f.client();
  std::size_t n = 0;
  c.list([&](const RunSummary&) { return ++n, true; }, {10, 50});
  CHECK(n == 3000);
  CHECK(calls == 2);  // the second page brought nothing new: stop
}

TEST_CASE("listing that reaches its page bound is an error, not a silent end") {
  std::atomic<int> page{0};
  Fixture f([&](const SeenRequest& r) {
    if (!starts(r.target, "/ga4gh/wes/v1/runs")) return js(404, {});
    const std::string n = std::to_string(page++);
    return js(200, {{"runs", {{{"run_id", "r" + n}, {"state", "COMPLETE"}}}}, {"next_page_token", "t" + n}});
  });
  auto c = f.client();
  std::size_t n = 0;
  try {
    c.list([&](const RunSummary&) { return ++n, true; }, {10, 5});
    FAIL("an endless run list ended well");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::protocol);
    CHECK(std::string(e.what()) == "the WES run list did not end after 5 pages");
  }
  CHECK(n == 5);
  CHECK(page == 5);
}

TEST_CASE("listing copes with a server that refuses our page size") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs") return js(200, {{"runs", {{{"run_id", "a"}}}}, {"next_page_token", "2"}});
    if (r.target == "/ga4gh/wes/v1/runs?page_token=2") return js(200, {{"runs", {{{"run_id", "b"}}}}});
    return js(400, {{"msg", "page_size must be at most 50"}});
  });
  auto c = f.client();
  std::vector<std::string> ids;
  c.list([&](const RunSummary& s) { return ids.push_back(s.run_id), true; });
  CHECK(ids == std::vector<std::string>{"a", "b"});
}

TEST_CASE("errors as {msg, status_code} or {msg, status}, and client errors reported as 500") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs/gone") return js(500, {{"msg", "run gone not found"}, {"status_code", 404}});
    if (r.target == "/ga4gh/wes/v1/runs/theirs") return js(403, {{"msg", "not yours"}, {"status", 403}});
    if (r.target == "/ga4gh/wes/v1/runs/broken/status") return js(500, {{"msg", "database down"}, {"status", 500}});
    return js(404, {});
  });
  auto c = f.client();
  auto kind = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::make_pair(e.kind(), std::string(e.what()));
    }
    return std::make_pair(ErrorKind::generic, std::string());
  };
  auto [k1, m1] = kind([&] { c.get("gone"); });
  CHECK(k1 == ErrorKind::not_found);
  CHECK(m1.find("run gone not found") != std::string::npos);
  auto [k2, m2] = kind([&] { c.get("theirs"); });
  CHECK(k2 == ErrorKind::forbidden);
  CHECK(m2.find("not yours") != std::string::npos);
  auto [k3, m3] = kind([&] { c.status("broken"); });
  CHECK(k3 == ErrorKind::server);
  CHECK(m3.find("database down") != std::string::npos);
}

TEST_CASE("tasks: WES 1.1 pages, else the deprecated inline task_logs") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs/new/tasks?page_size=1000")
      return js(200, {{"task_logs", {{{"id", "t1"}, {"name", "one"}}}}, {"next_page_token", "n"}});
    if (r.target == "/ga4gh/wes/v1/runs/new/tasks?page_size=1000&page_token=n")
      return js(200, {{"task_logs", {{{"id", "t2"}, {"name", "two"}}}}, {"next_page_token", ""}});
    return js(404, {{"msg", "no such endpoint"}});
  });
  auto c = f.client();
  RunLog fresh;
  fresh.run_id = "new";
  auto t = c.tasks(fresh);
  REQUIRE(t.size() == 2);
  CHECK(t[1].id == "t2");
  RunLog old;
  old.run_id = "old";
  old.task_logs = {Log{"", "inline", "", "", "", "", "", std::nullopt, {}}};
  auto t2 = c.tasks(old);
  REQUIRE(t2.size() == 1);
  CHECK(t2[0].name == "inline");
}

TEST_CASE("a server that requires workflow_engine says so in a 400; the one engine it has is sent") {
  Fixture f([](const SeenRequest& r) {
    if (r.method == "POST" && r.body.find("name=\"workflow_engine\"") == std::string::npos)
      return js(400, {{"msg", "missing required field workflow_engine"}, {"status_code", 400}});
    if (r.method == "POST") return js(200, {{"run_id", "r-1"}});
    return js(404, {});
  });
  auto c = f.client();
  RunRequest rq;
  rq.workflow_url = "https://example.org/wf.cwl";
  rq.type = "CWL";
  rq.type_version = "v1.2";
  ServiceInfo info;
  info.extra = {{"workflow_engine_versions", {{"cwltool", {{"workflow_engine_version", {"3.1"}}}}}}};
  CHECK(c.submit(rq, &info) == "r-1");
  auto reqs = f.server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].body.find("cwltool") != std::string::npos);
  CHECK(reqs[1].headers.at("content-type").find("multipart/form-data; boundary=") == 0);
  // Without service-info there is nothing to add: the 400 is the user's to read.
  CHECK_THROWS_AS(c.submit(rq, nullptr), Error);
}

TEST_CASE("a submission answered by 500 is looked up by its request id before anything is re-sent") {
  std::mutex mu;
  std::string made;  // request id of the run the server created anyway
  Fixture f([&](const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.method == "POST") {
      made = request_id_of(r.body);
      return js(500, {{"msg", "gateway timeout after the run was created"}});
    }
    if (starts(r.target, "/ga4gh/wes/v1/runs?"))
      return js(200, {{"runs", {{{"run_id", "other"}, {"state", "RUNNING"}, {"tags", {{"impact_request_id", "zzz"}}}},
                                {{"run_id", "mine"}, {"state", "QUEUED"}, {"tags", {{"impact_request_id", made}}}}}},
                      {"next_page_token", ""}});
    return js(404, {});
  });
  auto c = f.client();
  RunRequest rq;
  rq.workflow_url = "wf.cwl";
  CHECK(c.submit(rq) == "mine");
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 1);
  CHECK(made.size() == 32);
}

TEST_CASE("a submission lost to a dead connection, with no run made, is sent again under the same id") {
  std::mutex mu;
  std::vector<std::string> ids;
  Fixture f([&](const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.method == "POST") {
      ids.push_back(request_id_of(r.body));
      if (ids.size() == 1) return Reply{"", true, false};  // close without an answer
      return js(200, {{"run_id", "second"}});
    }
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) return js(200, {{"runs", json::array()}, {"next_page_token", ""}});
    return js(404, {});
  });
  auto c = f.client();
  c.list([](const RunSummary&) { return true; });  // the POST then goes on a reused connection, which
  RunRequest rq;                                    // libcurl would silently re-send on if let
  rq.workflow_url = "wf.cwl";
  CHECK(c.submit(rq) == "second");
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == ids[1]);
  auto reqs = f.server.requests();
  REQUIRE(reqs.size() == 4);
  CHECK(reqs[1].method == "POST");
  CHECK(reqs[2].method == "GET");  // looked for the run before re-sending
  CHECK(reqs[3].method == "POST");
}

TEST_CASE("logs: content as is, URLs fetched, the token only on the WES origin") {
  MiniServer other([](const SeenRequest&) { return impact::test::reply(200, "from storage\n"); });
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs/r/logs/stdout") return impact::test::reply(200, "own log\n");
    return js(404, {});
  });
  auto c = f.client();
  CHECK(c.fetch_log("inline text") == "inline text");
  CHECK(c.fetch_log(f.server.url("/ga4gh/wes/v1/runs/r/logs/stdout")) == "own log\n");
  CHECK(f.server.requests().back().headers.count("authorization") == 1);
  CHECK(c.fetch_log(other.url("/bucket/log.txt")) == "from storage\n");
  CHECK(other.requests().back().headers.count("authorization") == 0);
}

TEST_CASE("wait: follows each run to its end and reports every change once") {
  std::atomic<int> polls{0};
  Fixture f([&](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs/x/status") {
      const int n = ++polls;
      return js(200, {{"run_id", "x"}, {"state", n < 3 ? "QUEUED" : n < 5 ? "RUNNING" : "EXECUTOR_ERROR"}});
    }
    return js(404, {});
  });
  auto c = f.client();
  struct Seen : WaitObserver {
    std::vector<std::string> changes;
    void on_state(const std::string&, State from, State to) override {
      changes.push_back(std::string(to_string(from)) + ">" + std::string(to_string(to)));
    }
  } seen;
  auto r = wait(c, {"x"}, quick(), &seen);
  CHECK_FALSE(r.timed_out);
  CHECK(r.runs.at(0).second == State::executor_error);
  CHECK(r.exit_code() == exit_code::run_executor_error);
  CHECK(seen.changes == std::vector<std::string>{"UNKNOWN>QUEUED", "QUEUED>RUNNING", "RUNNING>EXECUTOR_ERROR"});
  CHECK(polls == 5);
}

TEST_CASE("wait: many runs are polled through the run list; a timeout says pending") {
  Fixture f([](const SeenRequest& r) {
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) {
      json runs = json::array();
      for (int i = 0; i < 6; ++i) runs.push_back({{"run_id", "r" + std::to_string(i)}, {"state", i == 5 ? "RUNNING" : "COMPLETE"}});
      return js(200, {{"runs", runs}, {"next_page_token", ""}});
    }
    if (r.target == "/ga4gh/wes/v1/runs/r5/status") return js(200, {{"run_id", "r5"}, {"state", "RUNNING"}});
    return js(404, {});
  });
  auto c = f.client();
  auto opts = quick();
  opts.timeout = std::chrono::milliseconds(60);
  auto r = wait(c, {"r0", "r1", "r2", "r3", "r4", "r5"}, opts);
  CHECK(r.timed_out);
  CHECK(r.exit_code() == exit_code::pending);
  CHECK(r.runs.at(0).second == State::complete);
  CHECK(r.runs.at(5).second == State::running);
  CHECK(f.count("GET", "/ga4gh/wes/v1/runs?") >= 1);
  CHECK(f.count("GET", "/ga4gh/wes/v1/runs/r5/status") >= 1);  // one pending run: by status
  CHECK(f.count("GET", "/ga4gh/wes/v1/runs/r0/status") == 0);
}

TEST_CASE("batch: at most N in flight, a ledger, and a resumed submission found instead of re-sent") {
  test::TempDir tmp;
  std::mutex mu;
  std::map<std::string, std::string> by_request;  // request id -> run id
  std::map<std::string, int> polls;  // a run is RUNNING when first asked, then COMPLETE
  int done = 0, in_flight_max = 0;
  Fixture f([&](const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.method == "POST") {
      in_flight_max = std::max(in_flight_max, static_cast<int>(by_request.size()) + 1 - done);
      auto id = "run" + std::to_string(by_request.size() + 1);
      by_request[request_id_of(r.body)] = id;
      return js(200, {{"run_id", id}});
    }
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) {
      json runs = json::array();
      for (const auto& [rid, run] : by_request)
        runs.push_back({{"run_id", run}, {"state", "COMPLETE"}, {"tags", {{"impact_request_id", rid}}}});
      return js(200, {{"runs", runs}, {"next_page_token", ""}});
    }
    if (r.target.find("/status") != std::string::npos) {
      if (++polls[r.target] == 1) return js(200, {{"state", "RUNNING"}});
      ++done;
      return js(200, {{"state", "COMPLETE"}});
    }
    return js(404, {});
  });
  auto c = f.client();
  BatchSpec spec;
  spec.base.workflow_url = "wf.cwl";
  spec.rows = parse_sheet("n\n1\n2\n3\n");
  spec.max_in_flight = 2;
  spec.wait = quick();
  const auto ledger = tmp.path() / "b" / "ledger.json";
  // An earlier process wrote the ledger, started row 1's submission and died before the answer.
  ensure_private_dir(ledger.parent_path());
  write_file_atomic(ledger, json{{"rows",
                                  {{{"row", 1}, {"request_id", "aaaa"}, {"run_id", ""}, {"state", "UNKNOWN"}, {"attempted", true}},
                                   {{"row", 2}, {"request_id", "bbbb"}, {"run_id", ""}, {"state", "UNKNOWN"}, {"attempted", false}},
                                   {{"row", 3}, {"request_id", "cccc"}, {"run_id", ""}, {"state", "UNKNOWN"}, {"attempted", false}}}}}
                                .dump());
  by_request["aaaa"] = "run-early";
  auto result = run_batch(c, spec, ledger);
  CHECK(result.exit_code() == 0);
  REQUIRE(result.rows.size() == 3);
  CHECK(result.rows[0].run_id == "run-early");
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 2);
  CHECK(in_flight_max <= 2);
  CHECK(by_request.count("bbbb") == 1);
  CHECK(by_request.count("cccc") == 1);
  // Run again: everything is recorded as done; nothing is sent.
  auto again = run_batch(c, spec, ledger);
  CHECK(again.rows[2].run_id == result.rows[2].run_id);
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 2);
  // A sheet that changed under its ledger is refused.
  spec.rows.pop_back();
  CHECK_THROWS_AS(run_batch(c, spec, ledger), Error);
}
