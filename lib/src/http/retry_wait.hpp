// Shared by Client and Batch: the random source for jitter and an interruptible wait.
#pragma once
#include <chrono>
#include <random>

namespace impact::http::detail {
std::mt19937_64& retry_rng();
void wait_interruptibly(std::chrono::milliseconds wait);  // throws Error(cancelled) on Ctrl-C
}  // namespace impact::http::detail
