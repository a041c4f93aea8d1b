// The pace of a polling loop: back-off that grows while nothing changes and resets when something does,
// bounded by an optional timeout.
#pragma once
#include <algorithm>
#include <chrono>

#include "impact/wes.hpp"

namespace impact::wes::detail {

class Pacer {
 public:
  explicit Pacer(const WaitOptions& o) : backoff_(o.initial, o.cap), timeout_(o.timeout), start_(clock::now()) {}

  // After a polling round: sleeps for the next interval (the first one again if `changed`). Returns false
  // at once when the timeout has passed.
  bool pause(bool changed) {
    if (changed) backoff_.reset();
    auto wait = backoff_.next();
    if (timeout_) {
      const auto used = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start_);
      if (used >= *timeout_) return false;
      wait = std::min(wait, *timeout_ - used);
    }
    sleep_for(wait);
    return true;
  }

 private:
  using clock = std::chrono::steady_clock;
  Backoff backoff_;
  std::optional<std::chrono::milliseconds> timeout_;
  clock::time_point start_;
};

}  // namespace impact::wes::detail
