// The HTTP layer against a real loopback server: connection reuse, retries, redirects, caps, stalls.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "impact/cancel.hpp"
#include "impact/http.hpp"
#include "mini_server.hpp"

using namespace impact;
using namespace impact::http;
using impact::test::MiniServer;
using impact::test::Reply;
using impact::test::reply;

namespace {
Options fast_options() {
  Options o = default_options();
  o.retry.base = std::chrono::milliseconds(5);
  o.retry.cap = std::chrono::milliseconds(20);
  o.connect_timeout_ms = 2000;
  o.stall_seconds = 2;
  return o;
}
Request get(const std::string& url) {
  Request r;
  r.url = url;
  return r;
}
ErrorKind failure_kind(Client& c, Request r) {
  try {
    c.send(std::move(r));
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::generic;
}

struct Recorder : Observer {
  std::vector<Exchange> seen;
  void on_exchange(const Exchange& ex) override { seen.push_back(ex); }
};
}  // namespace

TEST_CASE("statuses are data, the User-Agent names impact, and one connection serves many requests") {
  MiniServer s([](const auto& rq) { return rq.target == "/missing" ? reply(404, "{}") : reply(200, "hello"); });
  Client c(fast_options());
  for (int i = 0; i < 5; ++i) {
    auto r = c.send(get(s.url("/x")));
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
  }
  CHECK(c.send(get(s.url("/missing"))).status == 404);
  CHECK(s.connections() == 1);
  CHECK(s.requests().front().headers.at("user-agent").rfind("impact/", 0) == 0);
}

TEST_CASE("503 with Retry-After is retried and then succeeds") {
  std::atomic<int> n{0};
  MiniServer s([&](const auto&) { return ++n == 1 ? reply(503, "", "Retry-After: 0\r\n") : reply(200, "ok"); });
  Client c(fast_options());
  auto r = c.send(get(s.url("/")));
  CHECK(r.status == 200);
  CHECK(r.attempts == 2);
  CHECK(s.requests().size() == 2);
}

TEST_CASE("retries stop at max_attempts and the last status is returned") {
  MiniServer s([](const auto&) { return reply(502); });
  auto o = fast_options();
  o.retry.max_attempts = 3;
  Client c(o);
  CHECK(c.send(get(s.url("/"))).status == 502);
  CHECK(s.requests().size() == 3);
}

TEST_CASE("a POST is not re-sent after a 503") {
  MiniServer s([](const auto&) { return reply(503); });
  Client c(fast_options());
  Request r = get(s.url("/runs"));
  r.method = Method::post;
  r.body = "{}";
  CHECK(c.send(r).status == 503);
  CHECK(s.requests().size() == 1);
  r.retry_safe = true;  // a read-only query may be repeated
  CHECK(c.send(r).status == 503);
  CHECK(s.requests().size() == 1 + 4);
}

TEST_CASE("a POST whose connection drops after the body went out is not re-sent") {
  MiniServer s([](const auto&) { return Reply{"", true, false}; });  // read the request, close without answer
  Client c(fast_options());
  Request r = get(s.url("/runs"));
  r.method = Method::post;
  r.body = "{\"x\":1}";
  CHECK(failure_kind(c, r) == ErrorKind::network);
  CHECK(s.requests().size() == 1);
  CHECK(failure_kind(c, get(s.url("/idempotent"))) == ErrorKind::network);
  CHECK(s.requests().size() == 1 + 4);  // a GET is retried
}

TEST_CASE("redirects: credentials stay on their origin") {
  MiniServer other([](const auto&) { return reply(200, "other"); });
  MiniServer s([&](const auto& rq) {
    if (rq.target == "/same") return reply(302, "", "Location: /final\r\n");
    if (rq.target == "/cross") return reply(302, "", "Location: " + other.url("/landing") + "\r\n");
    if (rq.target == "/cross307") return reply(307, "", "Location: " + other.url("/landing") + "\r\n");
    if (rq.target == "/see-other") return reply(303, "", "Location: /final\r\n");
    return reply(200, "final");
  });
  Client c(fast_options());
  auto with_auth = [](std::string url) {
    Request r;
    r.url = std::move(url);
    r.headers = {{"Authorization", "Bearer secret-token-123456"}, {"X-Passport", "p"}, {"Accept", "text/plain"}};
    return r;
  };

  SUBCASE("same origin keeps them") {
    auto r = c.send(with_auth(s.url("/same")));
    CHECK(r.body == "final");
    CHECK(s.requests().back().headers.count("authorization") == 1);
  }
  SUBCASE("another origin gets none") {
    auto r = c.send(with_auth(s.url("/cross")));
    CHECK(r.body == "other");
    CHECK(r.url == other.url("/landing"));
    REQUIRE(other.requests().size() == 1);
    CHECK(other.requests()[0].headers.count("authorization") == 0);
    CHECK(other.requests()[0].headers.count("x-passport") == 0);
    CHECK(other.requests()[0].headers.at("accept") == "text/plain");
  }
  SUBCASE("a body is never forwarded to another origin") {
    Request r = with_auth(s.url("/cross307"));
    r.method = Method::post;
    r.body = R"({"passports":["x"]})";
    CHECK(failure_kind(c, r) == ErrorKind::protocol);
    CHECK(other.requests().empty());
  }
  SUBCASE("303 turns a POST into a GET without body") {
    Request r = with_auth(s.url("/see-other"));
    r.method = Method::post;
    r.body = "data";
    auto resp = c.send(r);
    CHECK(resp.body == "final");
    auto last = s.requests().back();
    CHECK(last.method == "GET");
    CHECK(last.body.empty());
  }
}

TEST_CASE("bodies read into memory are capped") {
  MiniServer s([](const auto&) { return reply(200, std::string(4096, 'x')); });
  Client c(fast_options());
  Request r = get(s.url("/big"));
  r.max_body = 1024;
  CHECK(failure_kind(c, r) == ErrorKind::protocol);
  r.max_body = 8192;
  CHECK(c.send(r).body.size() == 4096);
}

TEST_CASE("a stalled transfer is detected") {
  MiniServer s([](const auto&) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", false, true};
  });
  auto o = fast_options();
  o.stall_seconds = 1;
  o.retry.max_attempts = 1;
  Client c(o);
  CHECK(failure_kind(c, get(s.url("/slow"))) == ErrorKind::timeout);
}

TEST_CASE("plain http to a remote host is refused before anything is sent") {
  Client c(fast_options());
  CHECK(failure_kind(c, get("http://example.invalid/x")) == ErrorKind::usage);
}

TEST_CASE("a refused connection is a network error in the connect phase") {
  int port;
  {
    MiniServer s([](const auto&) { return reply(200); });
    port = s.port();
  }
  auto o = fast_options();
  o.retry.max_attempts = 2;
  Client c(o);
  try {
    c.send(get("http://127.0.0.1:" + std::to_string(port) + "/"));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::network);
    CHECK(e.phase() == NetPhase::connect);
    CHECK(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
}

TEST_CASE("sinks receive only successful bodies") {
  MiniServer s([](const auto& rq) { return rq.target == "/ok" ? reply(200, "payload") : reply(404, "{\"msg\":\"no\"}"); });
  Client c(fast_options());
  std::string sunk;
  Request r = get(s.url("/ok"));
  r.sink = [&](std::string_view chunk) { sunk.append(chunk); };
  auto ok = c.send(r);
  CHECK(sunk == "payload");
  CHECK(ok.body.empty());
  sunk.clear();
  r.url = s.url("/nope");
  auto nf = c.send(r);
  CHECK(nf.status == 404);
  CHECK(sunk.empty());
  CHECK(nf.body == "{\"msg\":\"no\"}");
}

TEST_CASE("a sink that throws aborts the transfer and its error reaches the caller") {
  MiniServer s([](const auto&) { return reply(200, "payload"); });
  Client c(fast_options());
  Request r = get(s.url("/ok"));
  r.sink = [](std::string_view) { throw Error(ErrorKind::io, "disk full"); };
  CHECK(failure_kind(c, r) == ErrorKind::io);
}

TEST_CASE("the observer sees redacted exchanges, with headers only in debug mode") {
  MiniServer s([](const auto&) { return reply(200, "x", "Set-Cookie: session=abc\r\n"); });
  Recorder rec;
  auto o = fast_options();
  o.observer = &rec;
  o.debug = true;
  Client c(o);
  Request r = get(s.url("/obj?X-Amz-Signature=deadbeef&part=1"));
  r.headers = {{"Authorization", "Bearer very-secret-token"}};
  c.send(r);
  REQUIRE(rec.seen.size() == 1);
  const auto& ex = rec.seen[0];
  CHECK(ex.method == "GET");
  CHECK(ex.status == 200);
  CHECK(ex.url.find("deadbeef") == std::string::npos);
  CHECK(ex.url.find("part=1") != std::string::npos);
  bool saw_auth = false;
  for (const auto& h : ex.request_headers)
    if (h.name == "Authorization") {
      saw_auth = true;
      CHECK(h.value == "Bearer REDACTED");
    }
  CHECK(saw_auth);
  for (const auto& h : ex.response_headers)
    if (h.name == "Set-Cookie") CHECK(h.value == "REDACTED");
}

TEST_CASE("Ctrl-C stops a request with a cancelled error") {
  MiniServer s([](const auto&) { return reply(200); });
  Client c(fast_options());
  request_cancel();
  CHECK(failure_kind(c, get(s.url("/"))) == ErrorKind::cancelled);
  reset_cancel();
  CHECK(c.send(get(s.url("/"))).status == 200);
}

TEST_CASE("throw_for_status uses the server's message and the right kind") {
  Response r;
  r.status = 403;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"msg":"missing ControlledAccessGrants visa","status_code":403})";
  r.url = "https://drs.example.org/objects/x";
  try {
    throw_for_status(r, "fetching object x");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::forbidden);
    CHECK(std::string(e.what()) == "fetching object x failed: HTTP 403: missing ControlledAccessGrants visa");
    CHECK(e.http_status() == 403);
  }
  r.status = 401;
  r.body = R"({"error":"invalid_token","error_description":"expired"})";
  CHECK_THROWS_AS(throw_for_status(r, "x"), Error);
}

TEST_CASE("a batch keeps to its bound, retries per transfer and returns results in order") {
  std::atomic<int> flaky{0};
  MiniServer s([&](const auto& rq) {
    if (rq.target == "/flaky" && ++flaky == 1) return reply(503, "", "Retry-After: 0\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return reply(200, rq.target);
  });
  std::vector<Request> reqs;
  for (int i = 0; i < 20; ++i) reqs.push_back(get(s.url("/item/" + std::to_string(i))));
  reqs.push_back(get(s.url("/flaky")));
  reqs.push_back(get("http://example.invalid/refused"));
  Batch b(fast_options(), 4);
  auto out = b.run(std::move(reqs));
  REQUIRE(out.size() == 22);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(out[i].response);
    CHECK(out[i].response->body == "/item/" + std::to_string(i));
  }
  REQUIRE(out[20].response);
  CHECK(out[20].response->status == 200);
  CHECK(out[20].response->attempts == 2);
  CHECK_FALSE(out[21].response);
  CHECK(out[21].error);
  CHECK(s.max_concurrent() <= 4);
  CHECK(s.connections() <= 5);  // handles, and their connections, are reused
}

TEST_CASE("a batch keeps each group to its own bound, and ungrouped requests pass queued ones of a full group") {
  std::mutex mu;
  std::map<char, int> now, peak;  // in flight by the path's first letter: a, b (groups 1, 2), c (no group)
  std::vector<std::string> order;
  std::atomic<int> flaky{0};
  MiniServer s([&](const auto& rq) {
    const char k = rq.target[1];
    {
      std::lock_guard l(mu);
      peak[k] = std::max(peak[k], ++now[k]);
      order.push_back(rq.target);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    {
      std::lock_guard l(mu);
      --now[k];
    }
    if (rq.target == "/a/flaky" && ++flaky == 1) return reply(503, "", "Retry-After: 0\r\n");
    return reply(200, rq.target);
  });
  std::vector<Request> reqs;
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(get(s.url("/a/" + std::to_string(i))));
    reqs.back().group = 1;
  }
  reqs.push_back(get(s.url("/a/flaky")));
  reqs.back().group = 1;
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(get(s.url("/b/" + std::to_string(i))));
    reqs.back().group = 2;
  }
  for (int i = 0; i < 3; ++i) reqs.push_back(get(s.url("/c/" + std::to_string(i))));
  Batch b(fast_options(), 6, 2);
  auto out = b.run(std::move(reqs));
  REQUIRE(out.size() == 16);
  for (const auto& o : out) {
    REQUIRE(o.response);
    CHECK(o.response->status == 200);
  }
  CHECK(out[6].response->attempts == 2);  // the retry waited for a place in its group
  CHECK(peak['a'] == 2);
  CHECK(peak['b'] == 2);
  CHECK(s.max_concurrent() <= 6);
  // The ungrouped requests, queued last, started in the first round, beside two of each group: before the
  // third request of either group, which had to wait for one of its group to end.
  std::lock_guard l(mu);
  const auto at = [&](const std::string& t) { return std::find(order.begin(), order.end(), t) - order.begin(); };
  CHECK(at("/c/0") < at("/a/2"));
  CHECK(at("/c/1") < at("/a/2"));
  CHECK(at("/c/1") < at("/b/2"));
}

TEST_CASE("a fed batch takes requests as places come free, prepares every attempt, and hands over each outcome") {
  std::atomic<int> flaky{0};
  MiniServer s([&](const auto& rq) {
    if (rq.target == "/flaky" && ++flaky == 1) return reply(503, "", "Retry-After: 0\r\n");
    return reply(200, rq.target);
  });
  constexpr std::size_t kItems = 40, kParallel = 3, kLookahead = 2;
  std::size_t given = 0, ended = 0, most_held = 0;
  std::map<std::string, int> prepared;  // attempts begun, by path
  std::map<std::size_t, Outcome> outcomes;
  Batch::Feed feed;
  feed.lookahead = kLookahead;
  feed.next = [&]() -> std::optional<Request> {
    if (given == kItems + 1) return std::nullopt;
    const std::size_t i = given++;
    most_held = std::max(most_held, given - ended);
    Request r;  // no URL: prepare gives it, as a signer would
    if (i == kItems) {
      r.prepare = [](Request&) { throw Error(ErrorKind::io, "cannot open the file"); };
      return r;
    }
    const std::string path = i == 0 ? "/flaky" : "/item/" + std::to_string(i);
    r.prepare = [&, path](Request& rq) {
      ++prepared[path];
      rq.url = s.url(path);
    };
    return r;
  };
  feed.done = [&](std::size_t i, Outcome o) {
    ++ended;
    CHECK(outcomes.emplace(i, std::move(o)).second);
  };
  Batch b(fast_options(), kParallel);
  b.run(std::move(feed));
  REQUIRE(outcomes.size() == kItems + 1);
  // Held at once: the lookahead, those in flight, and the one retry waiting beside them.
  CHECK(most_held <= kLookahead + kParallel + 1);
  REQUIRE(outcomes[0].response);
  CHECK(outcomes[0].response->status == 200);
  CHECK(outcomes[0].response->attempts == 2);
  CHECK(prepared["/flaky"] == 2);
  for (std::size_t i = 1; i < kItems; ++i) {
    const std::string path = "/item/" + std::to_string(i);
    REQUIRE(outcomes[i].response);
    CHECK(outcomes[i].response->body == path);
    CHECK(prepared[path] == 1);
  }
  CHECK_FALSE(outcomes[kItems].response);
  REQUIRE(outcomes[kItems].error);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(outcomes[kItems].error), "cannot open the file", Error);
  CHECK(s.max_concurrent() <= static_cast<int>(kParallel));
}

TEST_CASE("what a fed batch's done throws ends the run, and the batch serves the next one") {
  MiniServer s([](const auto& rq) { return reply(200, rq.target); });
  Batch b(fast_options(), 4);
  std::size_t given = 0;
  Batch::Feed feed;
  feed.lookahead = 1;
  feed.next = [&]() -> std::optional<Request> {
    if (given == 50) return std::nullopt;
    return get(s.url("/x/" + std::to_string(given++)));
  };
  feed.done = [](std::size_t, Outcome) { throw Error(ErrorKind::io, "disk full"); };
  CHECK_THROWS_WITH_AS(b.run(std::move(feed)), "disk full", Error);
  CHECK(given < 50);  // it stopped taking requests
  std::vector<Request> again;
  for (int i = 0; i < 6; ++i) again.push_back(get(s.url("/y/" + std::to_string(i))));
  auto out = b.run(std::move(again));
  REQUIRE(out.size() == 6);
  for (int i = 0; i < 6; ++i) {
    REQUIRE(out[i].response);
    CHECK(out[i].response->body == "/y/" + std::to_string(i));
  }
}

TEST_CASE("a total timeout cuts off a response that trickles in") {
  // sends the headers and a first byte, then nothing: under the stall limit but over the total limit
  MiniServer s([](const auto&) { return impact::test::Reply{"HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\nx", false, true}; });
  auto o = impact::http::default_options();
  o.total_timeout_ms = 300;
  o.stall_seconds = 30;
  impact::http::Client c(o);
  impact::http::Request rq;
  rq.url = s.url("/slow");
  const auto t0 = std::chrono::steady_clock::now();
  try {
    c.send(rq);
    FAIL("no timeout");
  } catch (const impact::Error& e) {
    CHECK(e.kind() == impact::ErrorKind::timeout);
    CHECK(std::string(e.what()).find("within 300 ms") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("proxy_for reads the proxy settings as libcurl does, and proxy_address hides credentials") {
  for (const char* v : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"}) ::unsetenv(v);
  CHECK_FALSE(proxy_for("https://wes.example.org/x"));
  ::setenv("HTTPS_PROXY", "http://u:secret@proxy.example.org:3128", 1);
  auto p = proxy_for("https://wes.example.org/x");
  REQUIRE(p);
  CHECK(p->variable == "HTTPS_PROXY");
  CHECK(proxy_address(p->url) == "proxy.example.org:3128");
  CHECK_FALSE(proxy_for("http://wes.example.org/x"));  // http takes http_proxy only
  ::setenv("https_proxy", "proxy2:8080", 1);
  CHECK(proxy_for("https://wes.example.org/x")->variable == "https_proxy");
  CHECK(proxy_address("proxy2:8080") == "proxy2:8080");
  ::setenv("NO_PROXY", "localhost, .example.org", 1);
  CHECK_FALSE(proxy_for("https://wes.example.org/x"));
  CHECK_FALSE(proxy_for("https://example.org/x"));
  CHECK(proxy_for("https://badexample.org/x"));
  ::setenv("NO_PROXY", "*", 1);
  CHECK_FALSE(proxy_for("https://anything.example.net/"));
  ::unsetenv("NO_PROXY");
  ::unsetenv("https_proxy");
  ::unsetenv("HTTPS_PROXY");
  ::setenv("ALL_PROXY", "socks5h://a:b@10.0.0.1:1080/", 1);
  CHECK(proxy_for("http://wes.example.org/x")->variable == "ALL_PROXY");
  CHECK(proxy_address(proxy_for("http://wes.example.org/x")->url) == "10.0.0.1:1080");
  ::unsetenv("ALL_PROXY");
}
