// impact run submit|list|show|logs|cancel|wait: GA4GH WES runs.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/wes.hpp"

namespace impact::cli {
namespace {

namespace fs = std::filesystem;

// The profile's WES service with the user's token; lives for one command.
struct Session {
  Config config;
  http::Client http;
  std::unique_ptr<wes::Client> client;
};

std::unique_ptr<Session> connect(Context& ctx) {
  auto s = std::make_unique<Session>(Session{ctx.load_config(), ctx.client(), nullptr});
  const Profile& p = ctx.profile(s->config);
  if (p.wes.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no WES service",
                "run: impact profile add NAME --wes URL (or --registry URL)");
  auth::Credentials& creds = ctx.credentials(p);
  const std::string url = p.wes;
  s->client = std::make_unique<wes::Client>(s->http, url, [&creds, url] { return creds.bearer_token(url); });
  return s;
}

std::string now_iso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void ndjson(Context& ctx, const nlohmann::json& j) {
  ctx.term().out() << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
}

std::pair<std::string, std::string> key_value(const std::string& arg, const char* flag) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ErrorKind::usage, fmt::format("{} wants KEY=VALUE, got '{}'", flag, arg));
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

struct WaitFlags {
  std::string timeout;
  std::string interval = "2s";
};

wes::WaitOptions wait_options(const WaitFlags& f) {
  wes::WaitOptions o;
  o.initial = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(f.interval));
  if (o.initial < std::chrono::seconds(1))
    throw Error(ErrorKind::usage, "--poll-interval must be at least 1s", "the default is 2s");
  o.cap = std::max(o.cap, o.initial);
  if (!f.timeout.empty()) o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(f.timeout));
  return o;
}

// State changes: NDJSON events with --json, a line per change on a terminal, nothing in a pipe.
class WaitPrinter : public wes::WaitObserver {
 public:
  WaitPrinter(Context& ctx, std::size_t runs) : ctx_(ctx), many_(runs > 1) {}
  void on_state(const std::string& id, wes::State from, wes::State to) override {
    if (ctx_.json()) {
      ndjson(ctx_, {{"event", "state"}, {"run_id", id}, {"from", wes::to_string(from)}, {"state", wes::to_string(to)},
                    {"time", now_iso()}});
    } else if (ctx_.term().err_tty() && !many_) {
      auto style = to == wes::State::complete ? Terminal::Style::green
                   : wes::is_terminal(to)     ? Terminal::Style::red
                                              : Terminal::Style::cyan;
      ctx_.term().err() << now_iso() << "  " << visible(id) << "  " << wes::to_string(from) << " -> "
                        << ctx_.term().err_style(wes::to_string(to), style) << '\n';
    }
  }
  void on_problem(const std::string& message) override {
    if (!ctx_.json()) ctx_.term().warn(message + " (still waiting)");
  }
  // Several runs on a terminal: one line of counts per state, rewritten in place.
  void on_round(const std::vector<std::pair<std::string, wes::State>>& runs) override {
    if (!many_ || ctx_.json() || !ctx_.term().err_tty()) return;
    std::map<wes::State, int> counts;
    std::size_t done = 0;
    for (const auto& [id, st] : runs) {
      ++counts[st];
      done += wes::is_terminal(st);
    }
    std::string line = fmt::format("{}/{} done:", done, runs.size());
    for (const auto& [st, n] : counts) line += fmt::format(" {} {}", n, wes::to_string(st));
    ctx_.term().err() << "\r\033[K" << line << (done == runs.size() ? "\n" : "") << std::flush;
  }

 private:
  Context& ctx_;
  bool many_;
};

void do_wait(Context& ctx, wes::Client& client, const std::vector<std::string>& ids, const WaitFlags& f) {
  WaitPrinter printer(ctx, ids.size());
  auto result = wes::wait(client, ids, wait_options(f), &printer);
  ctx.exit_code = result.exit_code();
  nlohmann::json runs = nlohmann::json::array();
  Table t{{"RUN_ID", "STATE"}, {}};
  for (const auto& [id, state] : result.runs) {
    runs.push_back({{"run_id", id}, {"state", wes::to_string(state)}});
    t.rows.push_back({id, std::string(wes::to_string(state))});
  }
  if (ctx.json())
    ndjson(ctx, {{"event", "done"}, {"runs", runs}, {"timed_out", result.timed_out}, {"exit_code", ctx.exit_code}});
  else
    ctx.term().print_table(t, ctx.format());
  if (result.timed_out && !ctx.json())
    ctx.term().error("still running after " + f.timeout, "keep waiting with: impact run wait RUN_ID...");
}

// ---- submit

struct SubmitFlags {
  std::string workflow, type, type_version, engine, engine_version, params, batch;
  std::vector<std::string> attach, tags, engine_params;
  bool wait = false;
  std::size_t max_in_flight = 4;
  WaitFlags w;
};

nlohmann::json read_params(const std::string& from) {
  if (from.empty()) return nlohmann::json::object();
  std::string text;
  if (from == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
  else text = read_file(from);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object())
    throw Error(ErrorKind::usage, "--params " + from + " is not a JSON object", "workflow parameters are {\"name\": value, ...}");
  return j;
}

bool is_url(const std::string& s) {
  auto p = s.find("://");
  return p != std::string::npos && p > 0 && s.find('/') > p;
}

// The request from the flags; `local` is set to the workflow file when it is sent as an attachment.
wes::RunRequest build_request(const SubmitFlags& f, fs::path& local) {
  wes::RunRequest r;
  r.type = f.type;
  r.type_version = f.type_version;
  r.engine = f.engine;
  r.engine_version = f.engine_version;
  r.params = read_params(f.params);
  for (const auto& t : f.tags) r.tags.insert(key_value(t, "--tag"));
  for (const auto& e : f.engine_params) r.engine_params.insert(key_value(e, "--engine-param"));
  fs::path root = fs::current_path();
  if (is_url(f.workflow)) {
    r.workflow_url = f.workflow;
  } else if (fs::is_regular_file(f.workflow)) {
    local = fs::weakly_canonical(f.workflow);
    root = local.parent_path();
    r.workflow_url = local.filename().string();
    r.attachments.push_back({local, r.workflow_url});
  } else {
    r.workflow_url = f.workflow;  // relative to the attachments, or a TRS path the server resolves
  }
  for (const auto& a : f.attach) {
    if (!fs::is_regular_file(a)) throw Error(ErrorKind::usage, "--attach " + a + ": no such file");
    const fs::path file = fs::weakly_canonical(a);
    const std::string name = file.lexically_relative(root).generic_string();
    if (name.empty() || name.rfind("..", 0) == 0)
      throw Error(ErrorKind::usage, "--attach " + a + " is outside " + root.string(),
                  "attachments keep their path below the workflow's directory; '..' is refused");
    if (name != r.workflow_url) r.attachments.push_back({file, name});
  }
  return r;
}

void batch(Context& ctx, wes::Client& client, wes::RunRequest base, const SubmitFlags& f);

void submit(Context& ctx, const SubmitFlags& f) {
  auto s = connect(ctx);
  fs::path local;
  auto req = build_request(f, local);
  auto info = s->client->service_info();
  wes::complete_request(req, info, local);
  wes::validate(req, info);
  if (!f.batch.empty()) {
    batch(ctx, *s->client, std::move(req), f);
    return;
  }
  const std::string run_id = s->client->submit(req, &info);
  if (ctx.json()) ndjson(ctx, {{"event", "submitted"}, {"run_id", run_id}});
  else ctx.term().out() << run_id << '\n' << std::flush;
  if (f.wait) do_wait(ctx, *s->client, {run_id}, f.w);
}

// ---- batch: one run per sheet row, at most N active, a ledger so a rerun resumes

void batch(Context& ctx, wes::Client& client, wes::RunRequest base, const SubmitFlags& f) {
  if (f.max_in_flight < 1) throw Error(ErrorKind::usage, "--max-in-flight must be at least 1");
  auto rows = wes::parse_sheet(read_file(f.batch));
  wes::BatchSpec spec{std::move(base), std::move(rows), f.max_in_flight, wait_options(f.w)};
  const fs::path ledger = wes::ledger_path(state_home() / "batches", fs::weakly_canonical(f.batch).string(),
                                            f.workflow, client.base_url());
  struct Printer : wes::BatchObserver {
    Context& ctx;
    explicit Printer(Context& c) : ctx(c) {}
    void on_submitted(std::size_t row, const std::string& run_id, bool recovered) override {
      if (ctx.json()) ndjson(ctx, {{"event", "submitted"}, {"row", row}, {"run_id", run_id}, {"recovered", recovered}});
      else if (ctx.term().err_tty()) ctx.term().note(fmt::format("row {}: submitted {}", row, run_id));
    }
    void on_state(std::size_t row, const std::string& run_id, wes::State to) override {
      if (ctx.json()) ndjson(ctx, {{"event", "state"}, {"row", row}, {"run_id", run_id}, {"state", wes::to_string(to)}});
      else if (ctx.term().err_tty()) ctx.term().note(fmt::format("row {}: {} {}", row, run_id, wes::to_string(to)));
    }
  } printer(ctx);
  auto result = wes::run_batch(client, spec, ledger, &printer);
  Table t{{"ROW", "RUN_ID", "STATE"}, {}};
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& r : result.rows) {
    t.rows.push_back({std::to_string(r.row), r.run_id, std::string(wes::to_string(r.state))});
    rows_json.push_back({{"row", r.row}, {"run_id", r.run_id}, {"state", wes::to_string(r.state)}});
  }
  ctx.exit_code = result.exit_code();
  if (ctx.json())
    ndjson(ctx, {{"event", "done"}, {"rows", rows_json}, {"ledger", ledger.string()}, {"timed_out", result.timed_out},
                 {"exit_code", ctx.exit_code}});
  else
    ctx.term().print_table(t, ctx.format());
}

// ---- list, show, logs, cancel

struct ListFlags {
  std::vector<std::string> states, tags;
  std::size_t limit = 0;
};

void list(Context& ctx, const ListFlags& f) {
  auto s = connect(ctx);
  std::vector<wes::State> states;
  for (const auto& st : f.states) {
    auto parsed = wes::parse_state(st);
    if (parsed == wes::State::unknown && st != "UNKNOWN")
      throw Error(ErrorKind::usage, "unknown run state '" + st + "'",
                  "states: QUEUED INITIALIZING RUNNING PAUSED COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELED CANCELING PREEMPTED");
    states.push_back(parsed);
  }
  wes::Tags want;
  for (const auto& t : f.tags) want.insert(key_value(t, "--tag"));
  std::vector<wes::RunSummary> runs;
  s->client->list([&](const wes::RunSummary& r) {
    if (!states.empty() && std::find(states.begin(), states.end(), r.state) == states.end()) return true;
    for (const auto& [k, v] : want) {
      auto it = r.tags.find(k);
      if (it == r.tags.end() || it->second != v) return true;
    }
    runs.push_back(r);
    return f.limit == 0 || runs.size() < f.limit;
  });
  // Newest first whatever order the server used; runs without a start time (queued) lead.
  std::stable_sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    if (a.start_time.empty() != b.start_time.empty()) return a.start_time.empty();
    return a.start_time > b.start_time;
  });
  if (ctx.json()) {
    ctx.term().print_json({{"runs", runs}});
    return;
  }
  Table t{{"RUN_ID", "STATE", "STARTED", "ENDED", "TAGS"}, {}};
  for (const auto& r : runs) {
    std::string tags;
    for (const auto& [k, v] : r.tags) tags += (tags.empty() ? "" : ",") + k + "=" + v;
    t.rows.push_back({r.run_id, std::string(wes::to_string(r.state)), r.start_time, r.end_time, tags});
  }
  ctx.term().print_table(t, ctx.format());
}

void show(Context& ctx, const std::string& id) {
  auto s = connect(ctx);
  auto run = s->client->get(id);
  auto tasks = s->client->tasks(run);
  if (ctx.json()) {
    nlohmann::json j = run;
    j["tasks"] = tasks;
    ctx.term().print_json(j);
    return;
  }
  auto& out = ctx.term().out();
  auto line = [&](const char* k, const std::string& v) {
    if (!v.empty()) out << ctx.term().style(fmt::format("{:<10}", k), Terminal::Style::bold) << visible(v) << '\n';
  };
  const auto& rq = run.request;
  line("Run", run.run_id);
  line("State", std::string(wes::to_string(run.state)));
  line("Workflow", rq.value("workflow_url", ""));
  line("Type", rq.value("workflow_type", "") + " " + rq.value("workflow_type_version", ""));
  line("Started", run.run_log.start_time);
  line("Ended", run.run_log.end_time);
  if (run.run_log.exit_code) line("Exit code", std::to_string(*run.run_log.exit_code));
  std::string tags;
  for (const auto& [k, v] : run.tags()) tags += (tags.empty() ? "" : ", ") + k + "=" + v;
  line("Tags", tags);
  if (rq.contains("workflow_params")) line("Params", rq["workflow_params"].dump());
  for (const auto& [k, v] : run.outputs.items()) {
    std::string where = v.is_string() ? v.get<std::string>() : v.value("location", v.dump());
    line("Output", k + ": " + where);
  }
  for (const auto& msg : run.run_log.system_logs) line("Log", msg);
  if (tasks.empty()) return;
  out << '\n';
  Table t{{"TASK", "NAME", "EXIT", "STARTED", "ENDED"}, {}};
  for (const auto& task : tasks)
    t.rows.push_back({task.id, task.name, task.exit_code ? std::to_string(*task.exit_code) : "", task.start_time,
                      task.end_time});
  ctx.term().print_table(t, ctx.format() == Format::json ? Format::table : ctx.format());
}

struct LogsFlags {
  std::string id, task;
  bool stderr_log = false, follow = false;
};

void logs(Context& ctx, const LogsFlags& f) {
  auto s = connect(ctx);
  auto& client = *s->client;
  auto text_now = [&](wes::State& state) {
    auto run = client.get(f.id);
    state = run.state;
    if (f.task.empty()) return client.fetch_log(f.stderr_log ? run.run_log.stderr_log : run.run_log.stdout_log);
    for (const auto& t : client.tasks(run))
      if (t.id == f.task || t.name == f.task) return client.fetch_log(f.stderr_log ? t.stderr_log : t.stdout_log);
    if (!f.follow || wes::is_terminal(state))
      throw Error(ErrorKind::not_found, "run " + f.id + " has no task '" + f.task + "'", "see the tasks with: impact run show " + f.id);
    return std::string();
  };
  wes::State state = wes::State::unknown;
  std::string text = text_now(state);
  // A log goes to a file or pipe byte for byte; on a terminal its control characters are shown, not executed.
  auto shown_text = [&](std::string_view t) { return ctx.term().out_tty() ? visible(t, true) : std::string(t); };
  ctx.term().out() << shown_text(text) << std::flush;
  if (!f.follow) return;
  std::size_t shown = text.size();
  wes::Backoff backoff(std::chrono::seconds(1), std::chrono::seconds(15));
  while (!wes::is_terminal(state)) {
    wes::sleep_for(backoff.next());
    text = text_now(state);
    if (text.size() > shown) {  // logs only grow; a shorter text is a server that trimmed: print nothing
      ctx.term().out() << shown_text(std::string_view(text).substr(shown)) << std::flush;
      shown = text.size();
      backoff.reset();
    }
  }
}

void cancel(Context& ctx, const std::vector<std::string>& ids) {
  auto s = connect(ctx);
  nlohmann::json done = nlohmann::json::array(), failed = nlohmann::json::array();
  Table t{{"RUN_ID", "STATE"}, {}};
  std::optional<Error> last;
  for (const auto& id : ids) {
    try {
      s->client->cancel(id);
      const auto state = std::string(wes::to_string(s->client->status(id)));  // CANCELING or CANCELED, honestly
      done.push_back({{"run_id", id}, {"state", state}});
      t.rows.push_back({id, state});
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      failed.push_back({{"run_id", id}, {"error", e.what()}});
      if (!ctx.json()) ctx.term().error(id + ": " + e.what(), e.hint());
      last = e;
    }
  }
  if (ctx.json()) ctx.term().print_json({{"runs", done}, {"failed", failed}});
  else ctx.term().print_table(t, ctx.format());
  if (failed.empty()) return;
  if (done.empty() && last) {
    if (ids.size() == 1) throw *last;
    ctx.exit_code = exit_code_for(last->kind());
    return;
  }
  ctx.exit_code = exit_code::partial;
}

void add_wait_flags(CLI::App* cmd, WaitFlags& w) {
  cmd->add_option("--timeout", w.timeout, "Stop waiting after this long (exit 8), e.g. 30m");
  cmd->add_option("--poll-interval", w.interval, "First polling interval; it grows to 30s while nothing changes")
      ->capture_default_str();
}

}  // namespace

void register_run(CLI::App& app, Context& ctx) {
  auto* run = app.add_subcommand("run", "Submit, follow and manage workflow runs (GA4GH WES)");
  run->require_subcommand(1);

  auto sf = std::make_shared<SubmitFlags>();
  auto* sub = run->add_subcommand("submit", "Submit a workflow run (prints the run id)");
  sub->add_option("workflow", sf->workflow, "Workflow URL, or a local file sent as an attachment")->required();
  sub->add_option("--type", sf->type, "Workflow language (default: from the file name)")
      ->check(CLI::IsMember({"CWL", "WDL", "NFL", "SMK"}));
  sub->add_option("--type-version", sf->type_version, "Language version (default: the file's, else the newest the service runs)");
  sub->add_option("--engine", sf->engine, "Workflow engine (WES 1.1)");
  sub->add_option("--engine-version", sf->engine_version, "Workflow engine version (WES 1.1)");
  sub->add_option("--params", sf->params, "Workflow parameters: a JSON file, or - for stdin");
  sub->add_option("--attach", sf->attach, "Also send this file (path kept below the workflow's directory)");
  sub->add_option("--tag", sf->tags, "Tag the run KEY=VALUE");
  sub->add_option("--engine-param", sf->engine_params, "Engine parameter KEY=VALUE");
  sub->add_flag("--wait", sf->wait, "Then wait for the run to end, as `impact run wait`");
  sub->add_option("--batch", sf->batch, "One run per row of this TSV sample sheet (header = parameter names); resumable")
      ->check(CLI::ExistingFile);
  sub->add_option("--max-in-flight", sf->max_in_flight, "With --batch: at most this many runs active at once")
      ->capture_default_str();
  add_wait_flags(sub, sf->w);
  sub->footer("Examples:\n  impact run submit workflow.cwl --params params.json --attach data/x.vcf --wait\n"
              "  impact run submit workflow.cwl --batch samples.tsv --max-in-flight 8");
  sub->callback(ctx.action([&ctx, sf] { submit(ctx, *sf); }));

  auto lf = std::make_shared<ListFlags>();
  auto* ls = run->add_subcommand("list", "List your runs, newest first");
  ls->footer("Examples:\n  impact run list --state RUNNING\n  impact run list --tag sample=S1 --limit 5 --json");
  ls->add_option("--state", lf->states, "Only runs in this state (repeatable)");
  ls->add_option("--tag", lf->tags, "Only runs with this tag KEY=VALUE (repeatable)");
  ls->add_option("--limit", lf->limit, "At most this many runs (0: all)")->capture_default_str();
  ls->callback(ctx.action([&ctx, lf] { list(ctx, *lf); }));

  auto id = std::make_shared<std::string>();
  auto* sh = run->add_subcommand("show", "Show a run: state, timings, request, outputs, tasks");
  sh->footer("Examples:\n  impact run show RUN_ID\n  impact run show RUN_ID --json | jq .outputs");
  sh->add_option("run_id", *id, "Run id")->required();
  sh->callback(ctx.action([&ctx, id] { show(ctx, *id); }));

  auto gf = std::make_shared<LogsFlags>();
  auto* lg = run->add_subcommand("logs", "Print a run's (or a task's) stdout or stderr");
  lg->footer("Examples:\n  impact run logs RUN_ID --stderr\n  impact run logs RUN_ID --follow");
  lg->add_option("run_id", gf->id, "Run id")->required();
  lg->add_option("--task", gf->task, "The task (id or name) instead of the whole run");
  lg->add_flag("--stderr", gf->stderr_log, "stderr instead of stdout");
  lg->add_flag("-f,--follow", gf->follow, "Keep printing new output until the run ends");
  lg->callback(ctx.action([&ctx, gf] { logs(ctx, *gf); }));

  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cn = run->add_subcommand("cancel", "Cancel runs (reports CANCELING or CANCELED)");
  cn->footer("Examples:\n  impact run cancel RUN_ID\n  impact run list --state RUNNING --format tsv | cut -f1 | xargs impact run cancel");
  cn->add_option("run_id", *ids, "Run ids")->required();
  cn->callback(ctx.action([&ctx, ids] { cancel(ctx, *ids); }));

  auto wids = std::make_shared<std::vector<std::string>>();
  auto wf = std::make_shared<WaitFlags>();
  auto* wt = run->add_subcommand("wait", "Wait for runs to end; the exit code tells how they ended");
  wt->add_option("run_id", *wids, "Run ids")->required();
  add_wait_flags(wt, *wf);
  wt->footer("Exit codes: 0 COMPLETE, 10 EXECUTOR_ERROR, 11 SYSTEM_ERROR, 12 CANCELED, 13 PREEMPTED\n"
             "(with several runs, the highest), 8 still running at --timeout.\n"
             "Examples:\n  impact run wait RUN_ID --timeout 2h\n  impact --json run wait RUN_A RUN_B   # NDJSON events");
  wt->callback(ctx.action([&ctx, wids, wf] {
    auto s = connect(ctx);
    do_wait(ctx, *s->client, *wids, *wf);
  }));
}

}  // namespace impact::cli
