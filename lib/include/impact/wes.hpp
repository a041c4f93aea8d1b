// GA4GH Workflow Execution Service (WES 1.0 and 1.1): the model, a client that copes with the small ways
// servers differ from the spec, exactly-once submission, and the polling rules `run wait` uses.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "impact/api_client.hpp"
#include "impact/http.hpp"
#include "impact/service_info.hpp"

namespace impact::wes {

// A run's state: one of the WES specification's, or a name outside it kept verbatim (sapporo's
// UPLOADER_ERROR). Two states are equal when they have the same code and, outside the spec, the same name.
class State {
 public:
  enum Code {
    unknown, queued, initializing, running, paused, complete, executor_error, system_error, canceled, canceling,
    preempted,
    other_error,  // outside the spec, named *_ERROR: a final failure
    other,        // outside the spec, anything else: impact cannot tell whether it will change
  };
  State(Code c = unknown) : code_(c) {}  // NOLINT: State::complete is a State
  static State named(std::string_view name);  // an outside-the-spec state (its name sanitised and bounded)
  Code code() const noexcept { return code_; }
  const std::string& name() const noexcept { return name_; }  // empty for the spec's states
  friend bool operator==(const State& a, const State& b) { return a.code_ == b.code_ && a.name_ == b.name_; }
  friend bool operator<(const State& a, const State& b) {
    return a.code_ != b.code_ ? a.code_ < b.code_ : a.name_ < b.name_;
  }

 private:
  Code code_;
  std::string name_;
};
// The state's name as the server spelt it (the spec's names in upper case). The view lives as long as `s`.
std::string_view to_string(const State& s) noexcept;
State parse_state(std::string_view text);  // "" -> UNKNOWN; names outside the spec are kept
// COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED, PREEMPTED, and *_ERROR states outside the spec.
bool is_terminal(const State& s) noexcept;
// Whether waiting for this state to change makes sense: not once it is final, nor in a state outside the
// spec that names no error (impact cannot know whether such a state ever changes).
bool stops_wait(const State& s) noexcept;
// The exit code `run wait` ends with for a run in this state (exit_code::run_* in error.hpp); 0 for the
// states a run passes through.
int exit_code_for(const State& s) noexcept;

using Tags = std::map<std::string, std::string>;

// The tag impact adds to every submission so that a lost answer can be recovered without a second run.
inline constexpr std::string_view kRequestIdTag = "impact_request_id";
std::string new_request_id();  // 32 random hex digits

struct RunSummary {
  std::string run_id;
  State state = State::unknown;
  std::string start_time, end_time;  // RFC 3339 UTC when the server's text could be read as a time
  Tags tags;
  bool tags_known = false;  // the server's entry carried tags (WES 1.0 summaries have none)
};

// A server's time as RFC 3339 UTC: a zone offset is applied, a time without one is taken as UTC
// ("2026-12-04T16:07:47" -> "2026-12-04T16:07:47Z"); text that is not such a time is kept as it came.
std::string normalize_time(std::string_view text);

// A run's or a task's log. `stdout_log`/`stderr_log` are URLs (spec) or the text itself (some servers).
struct Log {
  std::string id, name, cmd, start_time, end_time, stdout_log, stderr_log;
  std::optional<long long> exit_code;
  std::vector<std::string> system_logs;
};

struct RunLog {
  std::string run_id;
  State state = State::unknown;
  nlohmann::json request = nlohmann::json::object();  // the echo; tags/params parsed when sent as strings
  Log run_log;
  std::vector<Log> task_logs;  // the deprecated inline list, when the server sends one
  std::string task_logs_url;
  nlohmann::json outputs = nlohmann::json::object();  // always an object (lists of {file_name,file_url} folded)
  Tags tags() const;
};

void to_json(nlohmann::json& j, const RunSummary& r);
void to_json(nlohmann::json& j, const Log& l);
void to_json(nlohmann::json& j, const RunLog& r);
RunSummary parse_summary(const nlohmann::json& j);
Log parse_log(const nlohmann::json& j);
RunLog parse_run_log(const nlohmann::json& j);

struct Attachment {
  std::filesystem::path file;  // on this machine
  std::string name;            // relative name sent as the part's filename ("data/x.vcf")
};

struct RunRequest {
  std::string workflow_url;
  std::string type, type_version, engine, engine_version;
  nlohmann::json params = nlohmann::json::object();
  Tags tags;
  std::map<std::string, std::string> engine_params;
  std::vector<Attachment> attachments;
  // The engine to send where the server requires one and `engine` is empty (the profile's wes_engine);
  // never sent otherwise.
  std::string engine_if_required;
};

// The multipart/form-data fields of a RunRequest, in the order WES 1.0/1.1 list them.
std::vector<http::FormPart> form_parts(const RunRequest& r);

// Checks a request against what the server says it supports; throws Error(usage) naming each problem.
void validate(const RunRequest& r, const ServiceInfo& info);

// Fills type (from the file name), type_version (from a CWL file's cwlVersion, else the newest the server
// lists) when the user left them empty.
void complete_request(RunRequest& r, const ServiceInfo& info, const std::filesystem::path& local_workflow);

// ---- dialects: how a request is shaped for what a server says (service-info) and does (its refusals).
// The rules are listed in docs/servers.md.

// The WES version a service-info claims in supported_wes_versions ("1.0.0", "sapporo-wes-1.1.0", ...):
// v1_0 when every listed version is below 1.1, v1_1 when any is 1.1 or newer, unknown when none is listed.
enum class WesVersion { unknown, v1_0, v1_1 };
WesVersion wes_version(const ServiceInfo& info);

// The engine for a request that needs one: `engine_if_required` when set, else the first engine the server
// lists (workflow_engine_versions, its key verbatim) that runs the request's language — CWL: cwltool, toil,
// arvados-cwl-runner, streamflow; NFL: nextflow; WDL: cromwell, miniwdl; SMK: snakemake. Throws Error(usage)
// naming the server's engines when none fits.
std::string choose_engine(const RunRequest& r, const ServiceInfo* info);

// One change to a refused submission that may make the server accept it; each kind is made at most once.
struct Adjustment {
  enum class Kind { add_engine, drop_unknown_fields, add_run_dir, file_url };
  Kind kind;
  RunRequest request;  // the request to send instead
  std::string note;    // what changed, for the user
};
// The change a 400 refusal with this reason asks for: an engine where the server requires one; no
// workflow_engine(_version) where it refuses them as unknown fields; a `run_dir` tag where one is required
// ("impact-" and the request id); a `file:` workflow URL where a bare attachment name was refused.
// nullopt when the refusal is not one of these, or the change in `done` was already made.
std::optional<Adjustment> adjust_after_refusal(const RunRequest& sent, long status, std::string_view reason,
                                               const ServiceInfo* info, const std::vector<Adjustment::Kind>& done);

// The server's own reason for refusing a request, from its body: {msg}, {message}, {detail}, {title} or
// {error} of a JSON body, a text body, or the text of an HTML page; one line, control characters shown as
// \xNN, at most 300 characters. "" when the body says nothing, or only a stock phrase ("Internal Server
// Error", Werkzeug's generic page).
std::string server_reason(const http::Response& r);

// The name a server that drops folders stores an attachment under ("data/x.txt" as "data_x.txt").
std::string flattened_name(std::string_view name);

// Whether a log field is a path on the server's own disk, not a URL nor text: one word with a '/', absolute
// ("/data/runs/…/stdout"), relative to the run's folder (".weskit/<start>/stdout"), or a file:// URL.
bool is_server_path(std::string_view field);

// A safe relative attachment name: no absolute path, no "..", ".", empty segments or backslashes.
bool valid_attachment_name(std::string_view name);

using TokenFn = std::function<std::string()>;

// Back-off for polling: starts at `initial`, grows by half each time up to `cap`, resets on change.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap) : initial_(initial), cap_(cap), cur_(initial) {}
  std::chrono::milliseconds next();  // the wait to use now; the following one is longer
  void reset() { cur_ = initial_; }
  std::chrono::milliseconds initial() const { return initial_; }

 private:
  std::chrono::milliseconds initial_, cap_, cur_;
};

struct ListOptions {
  std::size_t page_size = 1000;
  std::size_t max_pages = 1000;  // bounds a listing whatever the server does
};

// The run ids a server listed just before a submission. After a lost answer only runs outside it can be
// the submission's, so the search for its request tag reads those few runs, whatever the list's order,
// page size, entries (sapporo's carry no tags) or length.
struct RunSnapshot {
  std::set<std::string> ids;
  bool listed = false;  // the list could be read (to its end or to the bound)
};

// What looking for a submission's run by its request tag found out.
struct Lookup {
  enum Outcome { found, absent, undecided } outcome = undecided;
  std::string run_id;  // when found
  std::string why;     // when undecided: what could not be read
};

// The bounds of exactly-once submission (see Client::submit): they are also in impact-run(1).
inline constexpr std::size_t kLookupListPages = 50;     // list requests per listing (1000 runs a page)
inline constexpr std::size_t kLookupReads = 50;         // GET /runs/{id} of new runs without tags in the list
inline constexpr std::chrono::seconds kLookupTime{60};  // per listing or search, plus one request in flight

class Client : public impact::detail::ApiClient {
 public:
  // `base_url` is the WES API root (…/ga4gh/wes/v1) or the server's origin (the root is then discovered).
  // Without `token` (an anonymous profile) requests carry no Authorization header.
  Client(http::Client& http, std::string base_url, TokenFn token);

  ServiceInfo service_info();  // also settles the API root; WES 1.0 service-info and a missing one are fine
  // Calls `visit` for each run, page by page, until it returns false or the list ends. Returns true when
  // the list ended (the server had no more), false when `visit` or the page bound stopped it.
  bool list(const std::function<bool(const RunSummary&)>& visit, const ListOptions& opts = {});
  RunLog get(const std::string& run_id);
  State status(const std::string& run_id);
  // Tasks from WES 1.1 /runs/{id}/tasks (paged), else the RunLog's inline task_logs.
  std::vector<Log> tasks(const RunLog& run);
  void cancel(const std::string& run_id);
  // Submits once. The request carries a client request id tag; before the POST the ids the server lists
  // are noted (`before`, or a snapshot taken here: at most kLookupListPages requests and kLookupTime;
  // 1 request on a server that lists every run at once). After a lost answer (network error, timeout) or
  // a 5xx, the runs not in the snapshot are searched for the tag (find_by_request_id): found, it is
  // returned; surely absent, nothing was made and the request is sent again (3 attempts in all, each
  // after such a search), the last 5xx reported with the server's own reason; when the search cannot
  // decide, it throws with the server's reason if any, saying the run may exist and which tag finds it.
  // Never two runs. A 4xx is a refusal, reported with the server's reason. A 400 that asks for
  // workflow_engine is answered by sending the server's only engine. Returns the run id.
  std::string submit(RunRequest request, const ServiceInfo* info = nullptr, const RunSnapshot* before = nullptr);
  // The ids the server lists now (bounded as above); `listed` false when the list could not be read.
  RunSnapshot snapshot();
  // The run whose tag `kRequestIdTag` has this value, among the runs listed now and not in `before`
  // (every listed run when `before` is null): runs whose list entry carries tags are judged from it,
  // the others read one by one (at most kLookupReads). Undecided when the list or a candidate cannot be
  // read, or the bounds are hit.
  Lookup find_by_request_id(const std::string& id, const RunSnapshot* before = nullptr);
  // A log field's text: fetched when it is a URL (with the token only on the WES origin), else itself.
  std::string fetch_log(const std::string& field);
  // The run's stdout (or stderr): the field's text, or fetched from its URL; where the field is a path on the
  // server's disk, read from WESkit's /weskit/v1/runs/{id}/stdout|stderr on the WES origin. Throws
  // Error(pending) while the server holds the log back until the run completes (409), Error(not_found) when
  // the server names a path and has no endpoint to read it.
  std::string run_log_text(const RunLog& run, bool stderr_log);
  // The same from WESkit's endpoint alone, for a run whose details the server does not give yet (`state`
  // from /status); `path` is the log field, if known, for the message when there is no such endpoint.
  std::string endpoint_log_text(const std::string& run_id, State state, bool stderr_log, const std::string& path = {});
  // Called with a line for the user whenever submit() changes a refused request and sends it again.
  void on_adjustment(std::function<void(const std::string&)> f) { on_adjustment_ = std::move(f); }

 private:
  http::Response get_json(const std::string& path, std::string_view what);

  std::function<void(const std::string&)> on_adjustment_;
};


// ---- waiting for runs to end

struct WaitOptions {
  std::chrono::milliseconds initial{2000};   // first polling interval, and the one after any change
  std::chrono::milliseconds cap{30000};      // longest polling interval
  std::optional<std::chrono::milliseconds> timeout;
  std::size_t list_threshold = 4;            // from this many pending runs on, poll with the run list
  std::size_t list_pages = 10;               // at most this many list pages per round
  int max_failed_rounds = 5;                 // consecutive rounds without an answer before giving up
};

class WaitObserver {
 public:
  virtual ~WaitObserver() = default;
  virtual void on_state(const std::string& /*run_id*/, State /*from*/, State /*to*/) {}
  virtual void on_problem(const std::string& /*message*/) {}  // a round failed; the wait goes on
  // After each polling round: every run's state now.
  virtual void on_round(const std::vector<std::pair<std::string, State>>& /*runs*/) {}
};

struct WaitResult {
  std::vector<std::pair<std::string, State>> runs;  // in the order asked for
  bool timed_out = false;
  int requests = 0;  // HTTP requests made (for the rate bound)
  // The highest of exit_code_for() of each run and, when timed out, 8: a failed run outranks a pending one.
  int exit_code() const;
};

// Polls until every run is in a final state (or one outside the spec: stops_wait) or the timeout passes.
// Ctrl-C throws Error(cancelled).
WaitResult wait(Client& client, const std::vector<std::string>& run_ids, const WaitOptions& opts,
                WaitObserver* observer = nullptr);

// The polling loop behind wait() (and tes::wait): `poll` sets the current state of every entry that
// stops_wait() does not stop and returns the number of requests it made. Its errors of passing kinds
// (network, timeout, server, rate limit) are reported to the observer and retried, up to max_failed_rounds.
using PollRound = std::function<int(std::vector<std::pair<std::string, State>>&)>;
WaitResult wait_with(const PollRound& poll, const std::vector<std::string>& ids, const WaitOptions& opts,
                     WaitObserver* observer = nullptr);

// ---- batches: one run per sample-sheet row, a bounded number active, a ledger for resuming

// A TSV sheet: the header names workflow parameters; each row gives their values (a cell that is JSON —
// number, boolean, object, array — is taken as such, anything else as a string). '#' lines are skipped.
std::vector<nlohmann::json> parse_sheet(std::string_view tsv);

struct BatchSpec {
  RunRequest base;                  // each row's parameters are merged over base.params
  std::vector<nlohmann::json> rows;
  std::size_t max_in_flight = 4;
  WaitOptions wait;                 // polling intervals and the timeout
};

struct BatchRow {
  std::size_t row = 0;              // 1-based data row
  std::string request_id, run_id;
  State state = State::unknown;
  bool attempted = false;           // a submission was started (its answer may have been lost)
};

void to_json(nlohmann::json& j, const BatchRow& r);

struct BatchResult {
  std::vector<BatchRow> rows;
  bool timed_out = false;
  int exit_code() const;            // 0 all COMPLETE, 8 timed out, else 6 (partial)
};

class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void on_submitted(std::size_t /*row*/, const std::string& /*run_id*/, bool /*recovered*/) {}
  virtual void on_state(std::size_t /*row*/, const std::string& /*run_id*/, State /*to*/) {}
};

// Where the ledger of this (sheet, workflow, service) batch lives under `dir`.
std::filesystem::path ledger_path(const std::filesystem::path& dir, std::string_view sheet, std::string_view workflow,
                                  std::string_view wes_url);

// Runs (or resumes) the batch recorded in `ledger`: each row's client request id is written before its
// submission, so an interrupted batch, run again, finds its runs instead of creating them twice.
BatchResult run_batch(Client& client, const BatchSpec& spec, const std::filesystem::path& ledger,
                      BatchObserver* observer = nullptr);

// Sleeps, waking early to throw Error(cancelled) on Ctrl-C.
void sleep_for(std::chrono::milliseconds d);

}  // namespace impact::wes
