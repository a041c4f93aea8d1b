// The one error type the library throws, and the exit-code table the CLI maps it to.
#pragma once

#include <map>
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

// What the user can do about an error when the way to do it is a command or a flag of the CLI. The library
// names the remedy (and puts what it needs in the error's facts: "run_id", "state", "url", ...); the CLI
// words it, with the command, its flags and --profile when the user chose one. The error's own hint()
// never names a command or flag; the CLI shows it before the remedy's words.
enum class Remedy {
  none,
  login,                // log in (again) to the profile
  add_service,          // the URL is not one of the profile's services: add it if trusted
  add_issuer,           // the profile has no identity provider (or no client id) to log in with
  client_secret,        // the profile's confidential client needs its secret
  profile_show,         // a setting of the profile is wrong or missing: look at it
  profile_add,          // no profile yet
  profile_choose,       // several profiles and none is the default
  profile_list,         // the profile asked for does not exist
  other_config,         // the configuration file cannot be used: fix it or use another
  cacert,               // the server's certificate is issued by a CA that is not trusted here
  passport,             // the passport does not grant the data: look at its visas
  scope,                // the identity provider refused the scopes asked for
  part_size,            // the storage ignored Range: use parts larger than the object
  exclude,              // an object key cannot be written safely under the destination: leave it out
  lower_parallel,       // the storage asks to slow down
  results_ls,           // look at what the storage holds
  results_download_url, // fact "url": an output that is downloaded alone
  run_show,             // fact "run_id": look at the run's outputs
  run_wait,             // facts "run_id", "state": the run has not finished
  run_list_tag,         // facts "tag", "value": a run may exist with this tag
  task_list_tag,        // facts "tag", "value": a TES task may exist with this tag
  run_status,           // check the run id
  workflow_type,        // the workflow language cannot be told from the file name
  type_version,         // the service names no version of the workflow language
  service_info,         // fact "service" ("wes"): see what the service supports
  drs_resolver,         // the profile has no resolver for compact identifiers
  client_credentials,   // the provider has no device flow: a confidential client can log in without it
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
  Remedy remedy() const noexcept { return remedy_; }
  // A fact the remedy needs ("" when absent). Facts are redacted like the message.
  std::string fact(const std::string& name) const;
  const std::map<std::string, std::string>& facts() const noexcept { return facts_; }

  Error& with_status(long status) { status_ = status; return *this; }
  Error& with_url(std::string_view url);  // stores the redacted form
  Error& with_phase(NetPhase phase) { phase_ = phase; return *this; }
  Error& with_hint(std::string hint);
  Error& with_remedy(Remedy remedy) { remedy_ = remedy; return *this; }
  Error& with_fact(const std::string& name, std::string_view value);

 private:
  ErrorKind kind_;
  std::string hint_;
  std::optional<long> status_;
  std::string url_;
  NetPhase phase_ = NetPhase::none;
  Remedy remedy_ = Remedy::none;
  std::map<std::string, std::string> facts_;
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
