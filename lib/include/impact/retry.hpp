// The retry rules, as pure functions so they can be tested without a network.
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string_view>

#include "impact/error.hpp"
#include "impact/http.hpp"

namespace impact::http {

struct Attempt {
  int number = 1;                 // 1 for the first try
  bool idempotent = true;         // method is idempotent or the request is marked retry_safe
  long status = 0;                // 0: no response
  NetPhase failed_in = NetPhase::none;  // set when no response arrived
  std::optional<std::string_view> retry_after;  // the Retry-After header, if any
};

struct RetryDecision {
  bool retry = false;
  std::chrono::milliseconds wait{0};
};

bool is_retryable_status(long status) noexcept;  // 408, 429, 500, 502, 503, 504

// Decides whether to try again and how long to wait first. A request that is not idempotent is repeated
// only when it certainly never reached the server (DNS or connect failure) or the server said 429.
RetryDecision decide_retry(const RetryPolicy& policy, const Attempt& attempt,
                           std::chrono::system_clock::time_point now, std::mt19937_64& rng);

// Capped exponential back-off with jitter: a random wait in [d/2, d] where d = min(cap, base * 2^(n-1)).
std::chrono::milliseconds backoff(const RetryPolicy& policy, int attempt_number, std::mt19937_64& rng);

// Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3); nullopt when malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

// IMF-fixdate, RFC 850 and asctime forms (RFC 9110 5.6.7).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

}  // namespace impact::http
