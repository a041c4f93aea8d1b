// Retry-After values and HTTP dates (retry.hpp), and the retry decision that reads them.
#include <chrono>

#include "fuzz.hpp"
#include "impact/retry.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto value = fuzz::text(data, size);
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  (void)http::parse_http_date(value);
  if (auto wait = http::parse_retry_after(value, now); wait && wait->count() < 0) __builtin_trap();
  http::RetryPolicy policy;
  http::Attempt attempt;
  attempt.status = 503;
  attempt.retry_after = value;
  std::mt19937_64 rng(size);
  if (http::decide_retry(policy, attempt, now, rng).wait.count() < 0) __builtin_trap();
  return 0;
}
