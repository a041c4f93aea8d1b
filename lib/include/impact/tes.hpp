// GA4GH Task Execution Service (TES 1.1): task documents checked against the schema, a client (create
// exactly once, get with a view, bounded listing, cancel) and waiting for tasks with `run wait`'s states
// and exit codes. Task states are WES's (the two specifications share them, PREEMPTED included).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "impact/api_client.hpp"
#include "impact/http.hpp"
#include "impact/service_info.hpp"
#include "impact/wes.hpp"

namespace impact::tes {

using State = wes::State;
using Tags = wes::Tags;
using TokenFn = wes::TokenFn;

// How much of a task the server sends: MINIMAL (id and state), BASIC (no executor stdout/stderr nor input
// contents), FULL (everything).
enum class View { minimal, basic, full };
std::string_view to_string(View v) noexcept;
std::optional<View> parse_view(std::string_view text);  // case-insensitive; nullopt for anything else

// The tag impact adds to every task it creates, as for WES runs.
inline constexpr std::string_view kRequestIdTag = wes::kRequestIdTag;

// A task built from command-line pieces (the `--image --cmd` form of `task submit`).
struct Input {
  std::string url, path, content;  // url or content
};
struct Output {
  std::string path, url;
};
struct TaskSpec {
  std::string name, image;
  std::vector<std::string> command;  // argv of the one executor
  std::vector<Input> inputs;
  std::vector<Output> outputs;
  std::optional<long long> cpu_cores;
  std::optional<double> ram_gb, disk_gb;
  Tags tags;
};

// The TES task document (tesTask) for a spec; checked with validate_task().
nlohmann::json task_document(const TaskSpec& spec);

// Checks a task document against the TES 1.1 schema's rules for a request: an object; `executors` a non-empty
// array of objects with a string `image` and a non-empty array of string `command`; inputs with a string
// `path` and a `url` or `content`; outputs with string `path` and `url`; `tags` an object of strings;
// resources numbers; the server's own fields (id, state, logs, creation_time) absent. Throws Error(usage)
// naming every problem.
void validate_task(const nlohmann::json& doc);

// Refuses input and output URLs that carry credentials (user:password@, a token, a signature or a key in the
// query): a URL in a task is stored and shown by the server and its workers. Throws Error(usage) naming the
// field, the URL redacted. Presigned URLs are then sent only when `allow` is set (the user asked).
void check_url_credentials(const nlohmann::json& doc, bool allow);
// Refuses a document whose input or output URLs contain `token` (the user's own access token), whatever the
// URL's shape; Error(usage) without the token in its text. Nothing is checked for an empty token.
void check_token_not_in_urls(const nlohmann::json& doc, std::string_view token);

// ---- tasks as servers send them

struct ExecutorLog {
  std::string start_time, end_time, stdout_text, stderr_text;
  std::optional<long long> exit_code;
};

struct TaskLog {
  std::string start_time, end_time;
  std::vector<ExecutorLog> logs;
  std::vector<std::string> system_logs;
  nlohmann::json outputs = nlohmann::json::array();
};

struct Task {
  std::string id, name, description, creation_time;
  State state = State::unknown;
  Tags tags;
  bool tags_known = false;  // the server's document carried tags (a MINIMAL view has none)
  std::vector<TaskLog> logs;
  nlohmann::json document = nlohmann::json::object();  // the task as the server sent it, URLs redacted
};

// A task from a server's document: lenient (odd members read as empty), texts bounded.
Task parse_task(const nlohmann::json& j);
void to_json(nlohmann::json& j, const Task& t);

// The task document parsed from text (impact's depth bound), or Error(protocol/usage) naming `what`.
nlohmann::json parse_document(std::string_view text, std::string_view what, ErrorKind kind);

// ---- the client

struct ListFilter {
  std::string name_prefix;
  std::optional<State> state;
  Tags tags;  // an empty value matches any value of the key (as the specification says)
  View view = View::minimal;
  std::size_t page_size = 256;
  std::size_t max_pages = 100;
  std::chrono::seconds max_time{120};
};

// Whether a task's tags match a filter, by the specification's table.
bool tags_match(const Tags& filter, const Tags& tags);

// The bounds of exactly-once creation (see Client::create); they are also in impact-task(1).
inline constexpr std::size_t kLookupPages = 20;
inline constexpr std::size_t kLookupReads = 50;
inline constexpr std::chrono::seconds kLookupTime{60};

class Client : public impact::detail::ApiClient {
 public:
  // `base_url` is the TES API root (…/ga4gh/tes/v1) or the server's origin (the root is then discovered).
  Client(http::Client& http, std::string base_url, TokenFn token);

  ServiceInfo service_info();
  // Creates the task once. Its tags get kRequestIdTag (kept when the document has one). After a lost answer
  // (network error, timeout) or a 5xx, the server is asked for tasks with that tag (tag_key/tag_value, and
  // each entry's tags checked, since a server may ignore the filter): found, it is returned; surely absent,
  // the document is sent again (3 attempts in all); undecided, it throws naming the tag. Never two tasks,
  // never a blind second POST. A 4xx is a refusal with the server's reason. Returns the task id.
  // Unless `allow_token_in_urls` (the user asked for it), a document whose URLs hold the token the request
  // carries is refused before anything is sent (check_token_not_in_urls).
  std::string create(nlohmann::json doc, bool allow_token_in_urls = false);
  // The task whose kRequestIdTag is `id`: found, absent, or undecided (why), within the bounds above.
  wes::Lookup find_by_request_id(const std::string& id);
  Task get(const std::string& id, View view = View::basic);
  // Calls `visit` for each task, page by page, until it returns false or the list ends. Returns true when
  // the list ended, false when `visit`, the page bound or the time bound stopped it. Tasks that do not match
  // the filter (a server that ignores one) are not visited.
  bool list(const std::function<bool(const Task&)>& visit, const ListFilter& filter);
  void cancel(const std::string& id);
};

// Polls until every task is in a final state (or one outside the spec) or the timeout passes: `run wait`'s
// loop, states and exit codes (WaitResult::exit_code). Ctrl-C throws Error(cancelled).
wes::WaitResult wait(Client& client, const std::vector<std::string>& ids, const wes::WaitOptions& opts,
                     wes::WaitObserver* observer = nullptr);

}  // namespace impact::tes
