#include <doctest/doctest.h>

#include "impact/retry.hpp"

using namespace impact;
using namespace impact::http;
using namespace std::chrono;

namespace {
system_clock::time_point at(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
  return sys_days(year_month_day{year{y}, month{m}, day{d}}) + hours(hh) + minutes(mm) + seconds(ss);
}
}  // namespace

TEST_CASE("retryable statuses are exactly 408, 429, 500, 502, 503, 504") {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L}) CHECK(is_retryable_status(s));
  for (long s : {200L, 201L, 301L, 400L, 401L, 403L, 404L, 409L, 413L, 501L, 505L}) CHECK_FALSE(is_retryable_status(s));
}

TEST_CASE("decide_retry") {
  RetryPolicy p;
  std::mt19937_64 rng(42);
  const auto now = system_clock::now();

  SUBCASE("idempotent request retried on 503 with back-off") {
    auto d = decide_retry(p, Attempt{1, true, 503, NetPhase::none, std::nullopt}, now, rng);
    CHECK(d.retry);
    CHECK(d.wait >= milliseconds(250));
    CHECK(d.wait <= milliseconds(500));
  }
  SUBCASE("no retry on a client error") {
    CHECK_FALSE(decide_retry(p, Attempt{1, true, 404, NetPhase::none, std::nullopt}, now, rng).retry);
    CHECK_FALSE(decide_retry(p, Attempt{1, true, 400, NetPhase::none, std::nullopt}, now, rng).retry);
  }
  SUBCASE("gives up after max_attempts") {
    CHECK(decide_retry(p, Attempt{3, true, 503, NetPhase::none, std::nullopt}, now, rng).retry);
    CHECK_FALSE(decide_retry(p, Attempt{4, true, 503, NetPhase::none, std::nullopt}, now, rng).retry);
  }
  SUBCASE("a POST is never re-sent after its body may have reached the server") {
    CHECK_FALSE(decide_retry(p, Attempt{1, false, 503, NetPhase::none, std::nullopt}, now, rng).retry);
    CHECK_FALSE(decide_retry(p, Attempt{1, false, 502, NetPhase::none, std::nullopt}, now, rng).retry);
    CHECK_FALSE(decide_retry(p, Attempt{1, false, 0, NetPhase::transfer, std::nullopt}, now, rng).retry);
    CHECK_FALSE(decide_retry(p, Attempt{1, false, 0, NetPhase::tls, std::nullopt}, now, rng).retry);
  }
  SUBCASE("a POST is retried when it certainly never left, or on 429") {
    CHECK(decide_retry(p, Attempt{1, false, 0, NetPhase::dns, std::nullopt}, now, rng).retry);
    CHECK(decide_retry(p, Attempt{1, false, 0, NetPhase::connect, std::nullopt}, now, rng).retry);
    CHECK(decide_retry(p, Attempt{1, false, 429, NetPhase::none, std::nullopt}, now, rng).retry);
  }
  SUBCASE("idempotent requests are retried after a reset mid-transfer") {
    CHECK(decide_retry(p, Attempt{1, true, 0, NetPhase::transfer, std::nullopt}, now, rng).retry);
  }
  SUBCASE("Retry-After in seconds is honoured exactly") {
    auto d = decide_retry(p, Attempt{1, true, 429, NetPhase::none, std::string_view("7")}, now, rng);
    CHECK(d.retry);
    CHECK(d.wait == seconds(7));
  }
  SUBCASE("Retry-After as an HTTP date") {
    const auto t = at(2026, 11, 22, 12, 0, 0);
    auto d = decide_retry(p, Attempt{1, true, 503, NetPhase::none, std::string_view("Sun, 22 Nov 2026 12:00:30 GMT")}, t, rng);
    CHECK(d.retry);
    CHECK(d.wait == seconds(30));
  }
  SUBCASE("a Retry-After longer than the policy allows is not waited for") {
    CHECK_FALSE(decide_retry(p, Attempt{1, true, 503, NetPhase::none, std::string_view("3600")}, now, rng).retry);
  }
  SUBCASE("a malformed Retry-After falls back to back-off") {
    auto d = decide_retry(p, Attempt{1, true, 503, NetPhase::none, std::string_view("soon")}, now, rng);
    CHECK(d.retry);
    CHECK(d.wait <= milliseconds(500));
  }
}

TEST_CASE("backoff doubles, is capped and jittered into [d/2, d]") {
  RetryPolicy p;
  p.base = milliseconds(100);
  p.cap = milliseconds(1000);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    auto w1 = backoff(p, 1, rng), w3 = backoff(p, 3, rng), w10 = backoff(p, 10, rng), w60 = backoff(p, 60, rng);
    CHECK(w1 >= milliseconds(50));
    CHECK(w1 <= milliseconds(100));
    CHECK(w3 >= milliseconds(200));
    CHECK(w3 <= milliseconds(400));
    CHECK(w10 >= milliseconds(500));
    CHECK(w10 <= milliseconds(1000));
    CHECK(w60 <= milliseconds(1000));
  }
}

TEST_CASE("parse_http_date accepts the three forms of RFC 9110") {
  const auto expect = at(1994, 11, 6, 8, 49, 37);
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == expect);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expect);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == expect);
  CHECK(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT  ") == expect);
}

TEST_CASE("parse_http_date rejects malformed dates") {
  for (const char* bad : {"", "GMT", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 2026 08:49:37 GMT",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49 GMT", "1994-11-06T08:49:37Z", "Sun, 06 Nov 94 08:49:37 GMT"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_http_date(bad).has_value());
  }
}

TEST_CASE("parse_retry_after") {
  const auto now = at(2026, 1, 1, 0, 0, 0);
  CHECK(parse_retry_after("0", now) == seconds(0));
  CHECK(parse_retry_after(" 120 ", now) == seconds(120));
  CHECK(parse_retry_after("99999999999999999999", now) > seconds(100000));
  CHECK(parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == seconds(60));
  CHECK(parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now) == seconds(0));  // in the past: now
  CHECK_FALSE(parse_retry_after("-5", now).has_value());
  CHECK_FALSE(parse_retry_after("1.5", now).has_value());
  CHECK_FALSE(parse_retry_after("", now).has_value());
}
