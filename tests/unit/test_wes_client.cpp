// The WES client against scripted loopback servers: one per dialect or failure it must cope with.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <regex>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/wes.hpp"
#include "client_fixture.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using namespace impact::wes;
using namespace impact::test;  // client_fixture.hpp, mini_server.hpp
using nlohmann::json;

namespace {

// The client request id a submission carried in its tags field.
std::string request_id_of(const std::string& body) {
  std::smatch m;
  static const std::regex re("impact_request_id\\\":\\\"([0-9a-f]+)");
  return std::regex_search(body, m, re) ? m[1].str() : std::string();
}

struct Fixture : ClientFixture<Client> {
  explicit Fixture(MiniServer::Handler h) : ClientFixture(std::move(h), "/ga4gh/wes/v1", "tok-123") {}
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

TEST_CASE("listing that reaches its page bound says so (false), not as if the list had ended") {
  std::atomic<int> page{0};
  Fixture f([&](const SeenRequest& r) {
    if (!starts(r.target, "/ga4gh/wes/v1/runs")) return js(404, {});
    const std::string n = std::to_string(page++);
    return js(200, {{"runs", {{{"run_id", "r" + n}, {"state", "COMPLETE"}}}}, {"next_page_token", "t" + n}});
  });
  auto c = f.client();
  std::size_t n = 0;
  CHECK_FALSE(c.list([&](const RunSummary&) { return ++n, true; }, {10, 5}));  // `run list` makes this an error
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
  std::vector<SeenRequest> reqs;
  for (const auto& r : f.server.requests())
    if (r.method == "POST") reqs.push_back(r);
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
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) {
      json runs = {{{"run_id", "other"}, {"state", "RUNNING"}, {"tags", {{"impact_request_id", "zzz"}}}}};
      if (!made.empty()) runs.push_back({{"run_id", "mine"}, {"state", "QUEUED"}, {"tags", {{"impact_request_id", made}}}});
      return js(200, {{"runs", runs}, {"next_page_token", ""}});
    }
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
  REQUIRE(reqs.size() == 5);
  CHECK(reqs[1].method == "GET");   // the run ids before the POST
  CHECK(reqs[2].method == "POST");
  CHECK(reqs[3].method == "GET");   // looked for the run before re-sending
  CHECK(reqs[4].method == "POST");
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

// ---- dialects of real servers (sapporo 1.7, WESkit) and exactly-once whatever the run list looks like

namespace {

// Behaves as sapporo-service 1.7 does: the API at the origin root, service-info with WES fields only,
// GET /runs lists every run at once in no particular order with only run_id and state (page_size
// ignored), and the run log echoes the request's tags as the string they were sent as.
struct Sapporo {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> runs;  // run id, tags as sent
  int drop_answers = 0;        // POSTs whose run is made but whose answer never comes
  bool list_forbidden = false; // GET /runs refused (sapporo --disable-get-runs)
  int made = 0;

  Reply handle(const SeenRequest& r) {
    std::lock_guard l(mu);
    if (r.target == "/service-info")
      return js(200, {{"workflow_type_versions", {{"CWL", {{"workflow_type_version", {"v1.0"}}}}}},
                      {"supported_wes_versions", {"sapporo-wes-1.1.0"}},
                      {"workflow_engine_versions", {{"cwltool", "3.1"}}}});
    if (r.method == "POST" && r.target == "/runs") {
      const std::string id = "run-" + std::to_string(++made);
      runs.emplace_back(id, json{{"impact_request_id", request_id_of(r.body)}}.dump());
      if (drop_answers > 0) {
        --drop_answers;
        return Reply{"", true, false};
      }
      return js(200, {{"run_id", id}});
    }
    if (r.method == "GET" && (r.target == "/runs" || starts(r.target, "/runs?"))) {
      if (list_forbidden) return js(403, {{"msg", "GET /runs is unavailable"}, {"status_code", 403}});
      json list = json::array();
      for (std::size_t i = 0; i < runs.size(); ++i) {  // an order that is neither by time nor by id
        const auto& [id, tags] = runs[(i * 7 + 3) % runs.size()];
        list.push_back({{"run_id", id}, {"state", "COMPLETE"}});
      }
      return js(200, {{"runs", list}, {"next_page_token", ""}});
    }
    for (const auto& [id, tags] : runs)
      if (r.target == "/runs/" + id)
        return js(200, {{"run_id", id}, {"state", "COMPLETE"}, {"request", {{"tags", tags}}}});
    return js(404, {{"msg", "not found"}, {"status_code", 404}});
  }
};

RunRequest some_request() {
  RunRequest rq;
  rq.workflow_url = "wf.cwl";
  rq.type = "CWL";
  rq.type_version = "v1.0";
  return rq;
}

std::string thrown(const std::function<void()>& fn, std::string* hint = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    // The hint of facts, and the tag the library names for a run that may exist (the CLI words the command).
    if (hint)
      *hint = e.hint() +
              (e.remedy() == Remedy::run_list_tag ? " [look for " + e.fact("tag") + "=" + e.fact("value") + "]" : "");
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace

TEST_CASE("sapporo: the API at the origin root and WES-only service-info are used as they are") {
  Sapporo sap;
  Fixture f([&](const SeenRequest& r) { return sap.handle(r); });
  auto c = f.client("");
  auto info = c.service_info();
  CHECK(c.base_url() == f.server.url(""));
  CHECK(info.kind() == ServiceKind::wes);
  CHECK_FALSE(info.note.empty());
  CHECK(info.extra.contains("workflow_engine_versions"));
}

TEST_CASE("discovery: an origin whose API is below /ga4gh/wes/v1 is found by the WES fields of its service-info") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/service-info")
      return js(200, {{"workflow_type_versions", {{"SMK", {{"workflow_type_version", {"7.30.2"}}}}}},
                      {"supported_wes_versions", {"1.0.0"}}});
    if (r.target == "/ga4gh/wes/v1/runs/x/status") return js(200, {{"run_id", "x"}, {"state", "RUNNING"}});
    return impact::test::reply(404, "<html>Not Found</html>", "Content-Type: text/html\r\n");
  });
  auto c = f.client("");
  CHECK(c.status("x") == State::running);
  CHECK(c.base_url() == f.server.url("/ga4gh/wes/v1"));
  CHECK(c.service_info().type.version == "1.0.0");
}

TEST_CASE("a WES without service-info is no error for the WES client") {
  Fixture f([](const SeenRequest&) { return js(404, {{"msg", "no"}, {"status_code", 404}}); });
  auto c = f.client();
  auto info = c.service_info();
  CHECK(info.kind() == ServiceKind::wes);
  CHECK(info.note.find("404") != std::string::npos);
}

TEST_CASE("an anonymous client sends no Authorization header") {
  Fixture f([](const SeenRequest&) { return js(200, {{"run_id", "x"}, {"state", "QUEUED"}}); });
  Client c(f.http, f.server.url("/ga4gh/wes/v1"), {});
  CHECK(c.status("x") == State::queued);
  for (const auto& r : f.server.requests()) CHECK(r.headers.count("authorization") == 0);
}

TEST_CASE("dialects: a bare list of runs, a bare state name, an HTML error's reason") {
  Fixture f([](const SeenRequest& r) {
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) return js(200, json::array({{{"run_id", "a"}, {"state", "RUNNING"}}}));
    if (r.target == "/ga4gh/wes/v1/runs/a/status") return js(200, "COMPLETE");
    return impact::test::reply(500, "<html><body><h1>Oops</h1><p>Could not find run with identifier b</p></body></html>",
                               "Content-Type: text/html\r\n");
  });
  auto c = f.client();
  std::vector<std::string> ids;
  CHECK(c.list([&](const RunSummary& s) { return ids.push_back(s.run_id), true; }));
  CHECK(ids == std::vector<std::string>{"a"});
  CHECK(c.status("a") == State::complete);
  CHECK(thrown([&] { c.get("b"); }).find("Could not find run with identifier b") != std::string::npos);
}

TEST_CASE("server reasons: JSON messages, text, HTML; a stock 500 page is no reason") {
  auto resp = [](int status, const std::string& body, const std::string& ct) {
    http::Response r;
    r.status = status;
    r.body = body;
    r.headers.push_back({"Content-Type", ct});
    return r;
  };
  CHECK(server_reason(resp(500, R"({"msg":"Parameter frozenset({'cores'}) is forbidden","status_code":500})",
                           "application/json")) == "Parameter frozenset({'cores'}) is forbidden");
  CHECK(server_reason(resp(400, R"({"detail":"bad\nthing"})", "application/json")) == "bad thing");
  CHECK(server_reason(resp(500,
                           "<!doctype html><title>500 Internal Server Error</title><h1>Internal Server Error</h1><p>The "
                           "server encountered an internal error and was unable to complete your request. Either the "
                           "server is overloaded or there is an error in the application.</p>",
                           "text/html")) == "");
  CHECK(server_reason(resp(502, "Bad Gateway", "text/plain")) == "");
  CHECK(server_reason(resp(500, "", "text/plain")) == "");
  CHECK(server_reason(resp(500, std::string(1000, 'a'), "text/plain")).size() == 300);
  CHECK(server_reason(resp(500, "line one\r\n\x1b[31mline two", "text/plain")) == "line one \\x1b[31mline two");
}

TEST_CASE("exactly-once on sapporo: a lost answer with 30 runs listed in no order and without tags") {
  Sapporo sap;
  for (int i = 0; i < 30; ++i) sap.runs.emplace_back("old-" + std::to_string(i), json{{"impact_request_id", "x"}}.dump());
  sap.drop_answers = 1;
  Fixture f([&](const SeenRequest& r) { return sap.handle(r); });
  auto c = f.client("");
  CHECK(c.submit(some_request()) == "run-1");
  CHECK(f.count("POST", "/runs") == 1);
  CHECK(f.count("GET", "/runs/old-") == 0);   // the runs listed before the POST are never read
  CHECK(f.count("GET", "/runs/run-1") == 1);  // only the new one is
  CHECK(sap.runs.size() == 31);
}

TEST_CASE("exactly-once: a lost answer with a list that cannot be read is an error naming the tag, not a resend") {
  Sapporo sap;
  sap.drop_answers = 1;
  sap.list_forbidden = true;
  Fixture f([&](const SeenRequest& r) { return sap.handle(r); });
  auto c = f.client("");
  auto rq = some_request();
  rq.tags["impact_request_id"] = "feedc0de";
  std::string hint;
  const auto msg = thrown([&] { c.submit(rq); }, &hint);
  CHECK(msg.find("cannot tell whether the run was created") != std::string::npos);
  CHECK(hint.find("impact_request_id=feedc0de") != std::string::npos);
  CHECK(f.count("POST", "/runs") == 1);
}

TEST_CASE("exactly-once: more new runs than the bound is undecided, not a resend") {
  Sapporo sap;
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") {
      std::lock_guard l(sap.mu);
      for (std::size_t i = 0; i <= kLookupReads; ++i)  // others submit in the meantime
        sap.runs.emplace_back("busy-" + std::to_string(i), json{{"impact_request_id", "y"}}.dump());
    }
    return sap.handle(r);
  });
  sap.drop_answers = 1;
  auto c = f.client("");
  CHECK(thrown([&] { c.submit(some_request()); }).find("more than 50 new runs") != std::string::npos);
  CHECK(f.count("POST", "/runs") == 1);
  CHECK(f.count("GET", "/runs/busy-") == 0);
}

TEST_CASE("a 500 with the server's reason and no run made: sent again only after checking, then the reason is shown") {
  Fixture f([](const SeenRequest& r) {
    if (r.method == "POST") return js(500, {{"msg", "Parameter frozenset({'cores'}) is forbidden"}, {"status_code", 500}});
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) return js(200, {{"runs", json::array()}, {"next_page_token", ""}});
    return js(404, {});
  });
  auto c = f.client();
  const auto msg = thrown([&] { c.submit(some_request()); });
  CHECK(msg.find("Parameter frozenset({'cores'}) is forbidden") != std::string::npos);
  CHECK(msg.find("cannot tell") == std::string::npos);
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 3);
  CHECK(f.count("GET", "/ga4gh/wes/v1/runs?") == 4);  // the snapshot, then a search before each re-send and at the end
}

TEST_CASE("a 500 with a reason after the run was made (WESkit's orphan that cannot be read): reason and a warning") {
  std::atomic<bool> made{false};
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") {
      made = true;
      return js(500, {{"msg", "Parameter frozenset({'cores'}) is forbidden"}, {"status_code", 500}});
    }
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) {
      json runs = json::array();
      if (made) runs.push_back({{"run_id", "orphan"}, {"state", "INITIALIZING"}});
      return js(200, {{"runs", runs}, {"next_page_token", ""}});
    }
    return impact::test::reply(500, "<h1>Internal Server Error</h1>", "Content-Type: text/html\r\n");
  });
  auto c = f.client();
  std::string hint;
  const auto msg = thrown([&] { c.submit(some_request()); }, &hint);
  CHECK(msg.find("is forbidden") != std::string::npos);
  CHECK(msg.find("cannot tell whether the run was created") != std::string::npos);
  CHECK(hint.find("impact_request_id=") != std::string::npos);
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 1);
}

TEST_CASE("a gateway's bare 502 with no run made is sent again; with the run made, the run is returned") {
  std::atomic<int> posts{0};
  Fixture f([&](const SeenRequest& r) {
    if (r.method == "POST") {
      if (++posts == 1) return impact::test::reply(502, "<h1>502 Bad Gateway</h1>", "Content-Type: text/html\r\n");
      return js(200, {{"run_id", "second"}});
    }
    if (starts(r.target, "/ga4gh/wes/v1/runs?")) return js(200, {{"runs", json::array()}, {"next_page_token", ""}});
    return js(404, {});
  });
  auto c = f.client();
  CHECK(c.submit(some_request()) == "second");
  CHECK(posts == 2);

  Sapporo sap;
  Fixture g([&](const SeenRequest& r) {
    if (r.method == "POST") {
      sap.handle(r);  // made, then the proxy fails
      return impact::test::reply(504, "Gateway Timeout", "Content-Type: text/plain\r\n");
    }
    return sap.handle(r);
  });
  auto d = g.client("");
  CHECK(d.submit(some_request()) == "run-1");
  CHECK(g.count("POST", "/runs") == 1);
}

TEST_CASE("batch resume after kill -9 during a POST, on sapporo: the run is found among the runs made since") {
  test::TempDir tmp;
  Sapporo sap;
  for (int i = 0; i < 25; ++i) sap.runs.emplace_back("old-" + std::to_string(i), json{{"impact_request_id", "x"}}.dump());
  Fixture f([&](const SeenRequest& r) {
    if (r.target.find("/status") != std::string::npos) return js(200, {{"state", "COMPLETE"}});
    return sap.handle(r);
  });
  auto c = f.client("");
  BatchSpec spec;
  spec.base = some_request();
  spec.rows = parse_sheet("n\n1\n");
  spec.wait = quick();
  const auto ledger = tmp.path() / "b" / "ledger.json";
  ensure_private_dir(ledger.parent_path());
  // What the killed process left: the snapshot of ids before its POST, the row marked attempted, and a
  // run the server made from that POST.
  json before = json::array();
  for (const auto& [id, tags] : sap.runs) before.push_back(id);
  write_file_atomic(ledger.string() + ".before", json{{"row", 1}, {"listed", true}, {"ids", before}}.dump());
  write_file_atomic(ledger, json{{"rows", {{{"row", 1}, {"request_id", "abcd"}, {"run_id", ""}, {"state", "UNKNOWN"},
                                            {"attempted", true}}}}}
                                .dump());
  sap.runs.emplace_back("made-by-killed", json{{"impact_request_id", "abcd"}}.dump());
  auto result = run_batch(c, spec, ledger);
  CHECK(result.rows.at(0).run_id == "made-by-killed");
  CHECK(f.count("POST", "/runs") == 0);
  CHECK_FALSE(std::filesystem::exists(ledger.string() + ".before"));  // kept only while a POST is in flight
  CHECK(f.count("GET", "/runs/old-") == 0);

  // Without the snapshot and with a list that cannot be read, the batch stops instead of resubmitting.
  std::filesystem::remove(ledger.string() + ".before");
  write_file_atomic(ledger, json{{"rows", {{{"row", 1}, {"request_id", "efgh"}, {"run_id", ""}, {"state", "UNKNOWN"},
                                            {"attempted", true}}}}}
                                .dump());
  sap.list_forbidden = true;
  std::string hint;
  CHECK(thrown([&] { run_batch(c, spec, ledger); }, &hint).find("cannot tell whether its run was created") !=
        std::string::npos);
  CHECK(hint.find("impact_request_id=efgh") != std::string::npos);
  CHECK(f.count("POST", "/runs") == 0);
}

TEST_CASE("wait: a run in a state outside the spec ends the wait; *_ERROR is a failure") {
  Fixture f([](const SeenRequest& r) {
    if (r.target == "/ga4gh/wes/v1/runs/u/status") return js(200, {{"state", "UPLOADER_ERROR"}});
    if (r.target == "/ga4gh/wes/v1/runs/d/status") return js(200, {{"state", "DELETING"}});
    if (r.target == "/ga4gh/wes/v1/runs/x/status") return js(200, {{"state", "EXECUTOR_ERROR"}});
    if (r.target == "/ga4gh/wes/v1/runs/r/status") return js(200, {{"state", "RUNNING"}});
    return js(404, {});
  });
  auto c = f.client();
  auto one = wait(c, {"u"}, quick());  // no timeout: it must end by itself
  CHECK(to_string(one.runs.at(0).second) == "UPLOADER_ERROR");
  CHECK(one.exit_code() == exit_code::run_other_error);
  auto two = wait(c, {"d"}, quick());
  CHECK(to_string(two.runs.at(0).second) == "DELETING");
  CHECK(two.exit_code() == exit_code::run_other_state);
  auto opts = quick();
  opts.timeout = std::chrono::milliseconds(50);
  auto three = wait(c, {"x", "r"}, opts);
  CHECK(three.timed_out);
  CHECK(three.exit_code() == exit_code::run_executor_error);
}

// ---- dialects: sapporo and WESkit (docs/servers.md)

TEST_CASE("a WESkit-like server: unknown fields refused, a run_dir tag required; each fixed once, each said") {
  Fixture f([](const SeenRequest& r) {
    if (r.method != "POST") return js(404, {});
    if (r.body.find("name=\"workflow_engine\"") != std::string::npos)
      return js(400, {{"msg", "Malformed request: [{'workflow_engine': ['unknown field']}]"}, {"status_code", 400}});
    if (r.body.find("run_dir") == std::string::npos)
      return js(400, {{"msg", "Malformed request: [\"'run_dir' tag is required and missing\"]"}, {"status_code", 400}});
    return js(200, {{"run_id", "0b7c6c2e-0000-4000-8000-000000000001"}});
  });
  auto c = f.client();
  std::vector<std::string> notes;
  c.on_adjustment([&](const std::string& n) { notes.push_back(n); });
  RunRequest rq;
  rq.workflow_url = "file:Snakefile";
  rq.type = "SMK";
  rq.type_version = "7.21.0";
  rq.engine = "snakemake";
  CHECK(c.submit(rq) == "0b7c6c2e-0000-4000-8000-000000000001");
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 3);
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].find("workflow_engine") != std::string::npos);
  CHECK(notes[1].find("run_dir=impact-") != std::string::npos);
  const auto last = f.server.requests().back().body;
  CHECK(last.find("\"run_dir\":\"impact-" + request_id_of(last)) != std::string::npos);
}

TEST_CASE("a refusal that no change can answer shows the server's reason, once, on one line") {
  Fixture f([](const SeenRequest& r) {
    if (r.method == "POST")
      return impact::test::reply(400, "Malformed request:\n[\"Unknown workflow_type 'SMK'\"]\x1b]0;x\x07",
                                 "Content-Type: text/plain\r\n");
    return js(404, {});
  });
  auto c = f.client();
  RunRequest rq;
  rq.workflow_url = "file:Snakefile";
  rq.type = "SMK";
  try {
    c.submit(rq);
    FAIL("refused");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()) ==
          "submitting the run failed: HTTP 400: Malformed request: [\"Unknown workflow_type 'SMK'\"]\\x1b]0;x\\x07");
  }
  CHECK(f.count("POST", "/ga4gh/wes/v1/runs") == 1);
}

TEST_CASE("logs from WESkit's endpoints: held back (409) until the run completes, then its content") {
  std::atomic<bool> done{false};
  Fixture f([&](const SeenRequest& r) {
    if (r.target == "/weskit/v1/runs/run-1/stdout") {
      if (!done) return js(409, {{"msg", "Run 'run-1' is not in COMPLETED state"}, {"status_code", 409}});
      return js(200, {{"content", "line 1\nline 2\n"}});
    }
    if (r.target == "/weskit/v1/runs/run-1/stderr") return js(200, {{"content", {"warn 1", "warn 2"}}});
    return impact::test::reply(404, "<html><h1>Not Found</h1></html>", "Content-Type: text/html\r\n");
  });
  auto c = f.client();
  RunLog run;
  run.run_id = "run-1";
  run.state = State::running;
  run.run_log.stdout_log = "/data/runs/ab/run-1/stdout";
  run.run_log.stderr_log = "/data/runs/ab/run-1/stderr";
  try {
    c.run_log_text(run, false);
    FAIL("held back");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::pending);
    CHECK(exit_code_for(e.kind()) == exit_code::pending);
    CHECK(std::string(e.what()).find("not available until the run completes (it is RUNNING)") != std::string::npos);
  }
  run.state = State::executor_error;
  CHECK_THROWS_WITH_AS(c.run_log_text(run, false), doctest::Contains("only once it has completed"), Error);
  done = true;
  run.state = State::complete;
  CHECK(c.run_log_text(run, false) == "line 1\nline 2\n");
  CHECK(c.run_log_text(run, true) == "warn 1\nwarn 2\n");
  CHECK(f.server.requests().back().headers.at("authorization") == "Bearer tok-123");
  run.run_log.stdout_log = "inline text";
  CHECK(c.run_log_text(run, false) == "inline text");
  // A server with a path and no endpoint: said plainly, not printed as if it were the log.
  run.run_id = "other";
  run.run_log.stdout_log = "/data/runs/other/stdout";
  CHECK_THROWS_WITH_AS(c.run_log_text(run, false), doctest::Contains("only as a path on its own disk (/data/runs/other/stdout)"),
                       Error);
  // Without the run's details (WESkit answers 500 until the end): the endpoint alone, by id and state.
  done = false;
  CHECK_THROWS_AS(c.endpoint_log_text("run-1", State::running, false), Error);
  done = true;
  CHECK(c.endpoint_log_text("run-1", State::complete, false) == "line 1\nline 2\n");
  CHECK_THROWS_WITH_AS(c.endpoint_log_text("other", State::running, false), doctest::Contains("gives no stdout of run other"), Error);
}

TEST_CASE("tasks: a server without the endpoint answering an HTML page falls back to the inline task logs") {
  Fixture f([](const SeenRequest& r) {
    if (r.target.find("/tasks") != std::string::npos && r.target.find("/html200/") != std::string::npos)
      return impact::test::reply(200, "<html>a web page</html>", "Content-Type: text/html\r\n");
    return impact::test::reply(404, "<!doctype html><title>404 Not Found</title><h1>Not Found</h1>", "Content-Type: text/html\r\n");
  });
  auto c = f.client();
  RunLog run;
  run.run_id = "r";
  run.task_logs = {Log{"", "inline", "", "", "", "", "", std::nullopt, {}}};
  CHECK(c.tasks(run).size() == 1);
  run.run_id = "html200";
  CHECK(c.tasks(run).size() == 1);
}

TEST_CASE("wait_with: out of time while the service does not answer is its error, not a run still going") {
  WaitOptions opts;
  opts.initial = std::chrono::milliseconds(5);
  opts.cap = std::chrono::milliseconds(5);
  opts.timeout = std::chrono::milliseconds(40);
  opts.max_failed_rounds = 1000;
  int rounds = 0;
  auto down = [&](std::vector<std::pair<std::string, State>>&) -> int {
    ++rounds;
    throw Error(ErrorKind::network, "cannot connect to 127.0.0.1:9: Connection refused");
  };
  try {
    (void)wait_with(down, {"r1"}, opts);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::network);
    CHECK(std::string(e.what()) ==
          "the wait ran out of time while the service could not be reached (cannot connect to 127.0.0.1:9: Connection "
          "refused): the state of the runs is unknown");
  }
  CHECK(rounds >= 2);
  // a service that answers again before the end: a plain timeout on a run still going
  int n = 0;
  auto flaky = [&](std::vector<std::pair<std::string, State>>& now) -> int {
    if (++n == 1) throw Error(ErrorKind::server, "HTTP 503");
    now[0].second = State::running;
    return 1;
  };
  auto r = wait_with(flaky, {"r1"}, opts);
  CHECK(r.timed_out);
  CHECK(r.exit_code() == exit_code::pending);
}
