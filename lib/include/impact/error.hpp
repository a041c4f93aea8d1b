// The one error type the library throws, and the exit-code table the CLI maps it to.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace impact {

// What went wrong, in the terms a caller can act on. Each kind maps to one exit code.
enum class ErrorKind {
  generic,        // anything else (exit 1)
  usage,          // bad arguments or input from the user (exit 2)
  config,         // configuration file missing, malformed or incomplete (exit 1)
  auth_required,  // no token, or it expired and cannot be refreshed (exit 4)
  forbidden,      // 403 / missing visa (exit 5)
  not_found,      // 404 or an unknown name (exit 1)
  rate_limited,   // 429 after retries (exit 1)
  network,        // DNS, connect, TLS, reset (exit 1)
  timeout,        // stalled or too slow (exit 1)
  server,         // 5xx after retries (exit 1)
  protocol,       // the server answered something we cannot use (exit 1)
  io,             // local files (exit 1)
  partial,        // some items failed, the rest are done (exit 6)
  pending,        // a wait ran out of time, the work goes on (exit 8)
  cancelled,      // Ctrl-C (exit 130)
};

// The phase of a network operation that failed; doctor reports it.
enum class NetPhase { none, dns, connect, tls, transfer };

class Error : public std::runtime_error {
 public:
  // `message` must already be free of secrets; the constructor redacts it once more.
  Error(ErrorKind kind, std::string message, std::string hint = {});

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& hint() const noexcept { return hint_; }
  std::optional<long> http_status() const noexcept { return status_; }
  const std::string& url() const noexcept { return url_; }  // already redacted
  NetPhase phase() const noexcept { return phase_; }

  Error& with_status(long status) { status_ = status; return *this; }
  Error& with_url(std::string_view url);  // stores the redacted form
  Error& with_phase(NetPhase phase) { phase_ = phase; return *this; }
  Error& with_hint(std::string hint);

 private:
  ErrorKind kind_;
  std::string hint_;
  std::optional<long> status_;
  std::string url_;
  NetPhase phase_ = NetPhase::none;
};

// Exit codes: see README.md and impact(1). Kept here so the table has one home.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int error = 1;
inline constexpr int usage = 2;
inline constexpr int auth = 4;
inline constexpr int forbidden = 5;
inline constexpr int partial = 6;
inline constexpr int pending = 8;
// `impact run wait` (and `run submit --wait`): how the run ended; with several runs, the highest of them
// (a timeout counts as 8, so a failed run outranks a still-running one).
inline constexpr int run_other_state = 9;      // a state outside the WES spec that names no error: wait stopped
inline constexpr int run_executor_error = 10;  // EXECUTOR_ERROR: a task of the workflow failed
inline constexpr int run_system_error = 11;    // SYSTEM_ERROR: the engine or the service failed
inline constexpr int run_canceled = 12;        // CANCELED
inline constexpr int run_preempted = 13;       // PREEMPTED
inline constexpr int run_other_error = 14;     // a state outside the WES spec named *_ERROR (UPLOADER_ERROR)
inline constexpr int interrupted = 130;
}  // namespace exit_code

int exit_code_for(ErrorKind kind) noexcept;
std::string_view to_string(ErrorKind kind) noexcept;

// Maps an HTTP status to the error kind a caller should raise for it (404 -> not_found, ...).
ErrorKind kind_for_status(long status) noexcept;

}  // namespace impact
