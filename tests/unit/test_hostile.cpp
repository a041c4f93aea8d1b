// What a hostile or broken server can send, across the library: JSON nested without end, URLs impact will not
// use, answers that trickle, listings that never end (issue 22).
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/http.hpp"
#include "impact/service_info.hpp"
#include "impact/storage.hpp"
#include "impact/url.hpp"
#include "mini_server.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::Reply;
using impact::test::reply;
using clk = std::chrono::steady_clock;

namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']', std::string_view inner = "1") {
  return std::string(depth, open) + std::string(inner) + std::string(depth, close);
}

http::Response json_response(std::string body) {
  http::Response r;
  r.status = 200;
  r.url = "https://wes.example.org/ga4gh/wes/v1/runs/r1";
  r.body = std::move(body);
  return r;
}

http::Options quick() {
  auto o = http::default_options();
  o.retry.max_attempts = 1;
  o.connect_timeout_ms = 2000;
  return o;
}

ErrorKind kind_of(http::Client& c, http::Request r) {
  try {
    c.send(std::move(r));
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::generic;
}

}  // namespace

TEST_CASE("JSON nested deeper than 128 levels is refused at once, naming the server; 128 levels are read") {
  // the answer of issue 22: 40 KB nesting 20,000 levels (and worse: 100,000 of objects)
  for (const auto& body : {nested(20'000), nested(100'000, '{', '}', ""), "{\"a\":" + nested(200) + "}"}) {
    const auto t0 = clk::now();
    try {
      parse_json_body(json_response(body), "the WES run log");
      FAIL("a deep document was accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::protocol);
      CHECK(std::string(e.what()) == "the WES run log: the answer nests JSON deeper than 128 levels");
      CHECK(e.url().find("wes.example.org") != std::string::npos);
    }
    CHECK(clk::now() - t0 < std::chrono::seconds(1));
  }
  // brackets inside strings are text, not nesting
  auto text = parse_json_body(json_response("{\"s\":\"" + std::string(1000, '[') + "\"}"), "x");
  CHECK(text["s"].get<std::string>().size() == 1000);

  // 128 levels are fine, and print in size linear in the input: at most 2 spaces of indent per level per line
  const std::string deep = nested(128);
  auto j = parse_json_body(json_response(deep), "x");
  const auto printed = j.dump(2);
  CHECK(printed.size() < deep.size() * (2 * 128 + 2));
  CHECK(nlohmann::json::parse(printed) == j);
  CHECK_THROWS_AS(parse_json_body(json_response(nested(129)), "x"), Error);
}

TEST_CASE("a URL the user gave that impact refuses is a usage error (2); one a server sent is a protocol error (1)") {
  CHECK(is_allowed_url("https://example.org/x"));
  CHECK(is_allowed_url("http://127.0.0.1:8080/device"));
  CHECK_FALSE(is_allowed_url("http://example.org/x"));
  CHECK_FALSE(is_allowed_url("file:///etc/passwd"));
  CHECK_FALSE(is_allowed_url("javascript:alert(1)"));
  for (const auto* bad : {"http://example.org/x", "file:///etc/passwd", "not a url"}) {
    CAPTURE(bad);
    try {
      require_allowed_url(bad, "the log URL", ErrorKind::protocol);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::protocol);
      CHECK(e.hint().find("the server sent it") != std::string::npos);
    }
    try {
      require_allowed_url(bad, "the WES endpoint");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }

  // through the HTTP layer: a request to a URL from a server's answer, and a redirect to plain http elsewhere
  MiniServer s([](const test::SeenRequest&) { return reply(302, "", "Location: http://example.org/data\r\n"); });
  http::Client c(quick());
  http::Request from_server;
  from_server.url = "http://example.org/object";
  from_server.server_url = true;
  CHECK(kind_of(c, from_server) == ErrorKind::protocol);
  http::Request users;
  users.url = "http://example.org/object";
  CHECK(kind_of(c, users) == ErrorKind::usage);
  http::Request redirected;
  redirected.url = s.url("/object");
  CHECK(kind_of(c, redirected) == ErrorKind::protocol);
}

TEST_CASE("an API answer that trickles a byte at a time ends at its deadline; a download at its speed floor") {
  MiniServer s([](const test::SeenRequest&) {
    Reply r{"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", false, true};
    r.trickle_ms = 100;  // 10 bytes a second: never "stalled" by the 1 byte/s rule
    return r;
  });
  auto o = quick();
  o.stall_seconds = 2;
  o.api_deadline_ms = 1500;
  {
    http::Client c(o);
    http::Request r;
    r.url = s.url("/runs");
    const auto t0 = clk::now();
    try {
      c.send(r);
      FAIL("no deadline");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::timeout);
      CHECK(std::string(e.what()).find("within 1500 ms") != std::string::npos);
    }
    CHECK(clk::now() - t0 < std::chrono::seconds(5));
  }
  {
    o.api_deadline_ms = 0;  // a download (a sink) has no total limit, only the floor: under 1 KiB/s for 2 s
    http::Client c(o);
    http::Request r;
    r.url = s.url("/data");
    std::size_t got = 0;
    r.sink = [&](std::string_view chunk) { got += chunk.size(); };
    const auto t0 = clk::now();
    try {
      c.send(r);
      FAIL("no speed floor");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::timeout);
      CHECK(std::string(e.what()).find("under 1024 bytes/s for 2 s") != std::string::npos);
    }
    CHECK(clk::now() - t0 < std::chrono::seconds(8));
  }
  CHECK(http::default_options().api_deadline_ms == 300'000);
  CHECK(http::default_options().min_speed == 1024);
}

TEST_CASE("an S3 listing that hands out the same continuation token again ends with an error") {
  MiniServer s([](const test::SeenRequest&) {
    return reply(200,
                 "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken>"
                 "<Contents><Key>runs/r1/a.txt</Key><Size>2</Size></Contents></ListBucketResult>");
  });
  auto keys = storage::static_keys({"AKID", "secret", ""});
  storage::S3Client s3(s.url(""), "us-east-1", *keys, quick());
  try {
    s3.list("results", "runs/r1/");
    FAIL("an endless listing ended well");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::protocol);
    CHECK(std::string(e.what()).find("continuation token it had already sent") != std::string::npos);
  }
  CHECK(s.requests().size() == 2);
}
