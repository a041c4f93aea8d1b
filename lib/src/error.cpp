#include "impact/error.hpp"

#include <atomic>

#include "impact/cancel.hpp"
#include "impact/redact.hpp"

namespace impact {

Error::Error(ErrorKind kind, std::string message, std::string hint)
    : std::runtime_error(redact(message)), kind_(kind), hint_(redact(hint)) {}

Error& Error::with_url(std::string_view url) {
  url_ = redact_url(url);
  return *this;
}

Error& Error::with_hint(std::string hint) {
  hint_ = redact(hint);
  return *this;
}

Error& Error::with_fact(const std::string& name, std::string_view value) {
  facts_[name] = redact(std::string(value));
  return *this;
}

std::string Error::fact(const std::string& name) const {
  auto it = facts_.find(name);
  return it == facts_.end() ? std::string() : it->second;
}

int exit_code_for(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::usage: return exit_code::usage;
    case ErrorKind::auth_required: return exit_code::auth;
    case ErrorKind::forbidden: return exit_code::forbidden;
    case ErrorKind::partial: return exit_code::partial;
    case ErrorKind::pending: return exit_code::pending;
    case ErrorKind::cancelled: return exit_code::interrupted;
    default: return exit_code::error;
  }
}

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::generic: return "error";
    case ErrorKind::usage: return "usage";
    case ErrorKind::config: return "config";
    case ErrorKind::auth_required: return "auth_required";
    case ErrorKind::forbidden: return "forbidden";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::network: return "network";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::server: return "server";
    case ErrorKind::protocol: return "protocol";
    case ErrorKind::io: return "io";
    case ErrorKind::partial: return "partial";
    case ErrorKind::pending: return "pending";
    case ErrorKind::cancelled: return "cancelled";
  }
  return "error";
}

ErrorKind kind_for_status(long status) noexcept {
  if (status == 401) return ErrorKind::auth_required;
  if (status == 403) return ErrorKind::forbidden;
  if (status == 404 || status == 410) return ErrorKind::not_found;
  if (status == 408) return ErrorKind::timeout;
  if (status == 429) return ErrorKind::rate_limited;
  if (status >= 500) return ErrorKind::server;
  if (status >= 400) return ErrorKind::usage;
  return ErrorKind::protocol;
}

namespace {
std::atomic<bool> g_cancel{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the SIGINT handler needs a lock-free flag");
}  // namespace

void request_cancel() noexcept { g_cancel.store(true, std::memory_order_relaxed); }
bool cancel_requested() noexcept { return g_cancel.load(std::memory_order_relaxed); }
void reset_cancel() noexcept { g_cancel.store(false, std::memory_order_relaxed); }
void throw_if_cancelled() {
  if (cancel_requested()) throw Error(ErrorKind::cancelled, "interrupted");
}

}  // namespace impact
