// impact task submit|list|show|logs|cancel|wait: single containerised steps on a GA4GH TES.
#include <algorithm>
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/tes.hpp"
#include "service_session.hpp"
#include "waiting.hpp"

namespace impact::cli {
namespace {

// The profile's TES (service_session.hpp).
std::unique_ptr<ServiceSession<tes::Client>> connect(Context& ctx) {
  return connect_service<tes::Client>(ctx, &Profile::tes, "TES", [](const Profile& p) {
    return "run: impact profile set " + p.name + " --tes URL";
  });
}

const WaitWords kTaskWords{"task", "task_id", "TASK_ID", "tasks", "TES"};

void do_wait(Context& ctx, tes::Client& client, const std::vector<std::string>& ids, const WaitFlags& f) {
  WaitPrinter printer(ctx, ids, kTaskWords);
  auto result = waiting(ctx, ids, kTaskWords, [&] { return tes::wait(client, ids, wait_options(f), &printer); });
  printer.finish();
  report_wait(ctx, result, f, kTaskWords);
}

// ---- submit

struct SubmitFlags {
  std::string file, name, image, cmd;
  std::vector<std::string> inputs, outputs, tags;
  std::optional<long long> cpu;
  std::optional<double> ram, disk;
  bool wait = false, allow_credentials = false;
  WaitFlags w;
};

nlohmann::json build_document(const SubmitFlags& f) {
  const bool flags = !f.image.empty() || !f.cmd.empty() || !f.inputs.empty() || !f.outputs.empty() || f.cpu || f.ram ||
                     f.disk || !f.name.empty();
  if (!f.file.empty() && flags)
    throw Error(ErrorKind::usage, "give either TASK.json or --image/--cmd and their options, not both",
                "tags (--tag) can be added to either");
  nlohmann::json doc;
  if (!f.file.empty()) {
    std::string text;
    if (f.file == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
    else text = read_file(f.file);
    doc = tes::parse_document(text, f.file, ErrorKind::usage);
  } else {
    if (f.image.empty() || f.cmd.empty())
      throw Error(ErrorKind::usage, "a task needs --image and --cmd (or a TASK.json file)",
                  "e.g. impact task submit --image alpine --cmd 'wc -l /data/in.txt' --input URL=/data/in.txt");
    tes::TaskSpec spec;
    spec.name = f.name;
    spec.image = f.image;
    spec.command = {"/bin/sh", "-c", f.cmd};
    for (const auto& in : f.inputs) {
      auto eq = in.rfind('=');  // URL=PATH: a URL's query may hold '=', a path in the container does not
      if (eq == std::string::npos || eq == 0 || eq + 1 == in.size())
        throw Error(ErrorKind::usage, "--input wants URL=PATH, got '" + redact_url(in) + "'");
      spec.inputs.push_back({in.substr(0, eq), in.substr(eq + 1), {}});
    }
    for (const auto& out : f.outputs) {
      auto eq = out.find('=');  // PATH=URL
      if (eq == std::string::npos || eq == 0 || eq + 1 == out.size())
        throw Error(ErrorKind::usage, "--output wants PATH=URL, got '" + redact_url(out) + "'");
      spec.outputs.push_back({out.substr(0, eq), out.substr(eq + 1)});
    }
    spec.cpu_cores = f.cpu;
    spec.ram_gb = f.ram;
    spec.disk_gb = f.disk;
    doc = tes::task_document(spec);
  }
  if (!f.tags.empty()) {
    if (!doc.is_object()) throw Error(ErrorKind::usage, f.file + " is not a JSON object");
    if (!doc.contains("tags")) doc["tags"] = nlohmann::json::object();
    for (const auto& t : f.tags) {
      auto [k, v] = key_value(t, "--tag");
      if (doc["tags"].is_object()) doc["tags"][k] = v;
    }
  }
  tes::validate_task(doc);
  tes::check_url_credentials(doc, f.allow_credentials);
  return doc;
}

void submit(Context& ctx, const SubmitFlags& f) {
  auto doc = build_document(f);
  auto s = connect(ctx);
  const std::string id = s->client->create(std::move(doc), f.allow_credentials);
  if (ctx.json()) ndjson(ctx, {{"event", "submitted"}, {"task_id", id}});
  else ctx.term().out() << id << '\n' << std::flush;
  if (f.wait) do_wait(ctx, *s->client, {id}, f.w);
}

// ---- list, show, logs, cancel

struct ListFlags {
  std::string state, name_prefix, view = "BASIC";  // MINIMAL has no name, time nor tags for the table
  std::vector<std::string> tags;
  std::size_t limit = 0, page_size = 256;
};

std::string tags_text(const tes::Tags& tags, const char* sep) {
  std::string out;
  for (const auto& [k, v] : tags) out += (out.empty() ? "" : sep) + k + "=" + v;
  return out;
}

void list(Context& ctx, const ListFlags& f) {
  tes::ListFilter filter;
  filter.name_prefix = f.name_prefix;
  if (!f.state.empty()) {
    auto st = wes::parse_state(f.state);
    if (st.code() == wes::State::other || st.code() == wes::State::other_error)
      throw Error(ErrorKind::usage, "'" + f.state + "' is not a TES state",
                  "states: QUEUED INITIALIZING RUNNING PAUSED COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELED CANCELING PREEMPTED");
    filter.state = st;
  }
  for (const auto& t : f.tags) {
    auto eq = t.find('=');
    if (eq == 0) throw Error(ErrorKind::usage, "--tag wants KEY or KEY=VALUE, got '" + t + "'");
    if (eq == std::string::npos) filter.tags[t] = "";  // any value, as the specification says
    else filter.tags[t.substr(0, eq)] = t.substr(eq + 1);
  }
  auto view = tes::parse_view(f.view);
  if (!view) throw Error(ErrorKind::usage, "--view must be MINIMAL, BASIC or FULL");
  filter.view = *view;
  if (f.page_size < 1 || f.page_size > 2047) throw Error(ErrorKind::usage, "--page-size must be 1 to 2047");
  filter.page_size = f.page_size;
  auto s = connect(ctx);
  std::vector<tes::Task> tasks;
  const bool ended = s->client->list(
      [&](const tes::Task& t) {
        tasks.push_back(t);
        return f.limit == 0 || tasks.size() < f.limit;
      },
      filter);
  if (!ended && (f.limit == 0 || tasks.size() < f.limit))
    throw Error(ErrorKind::protocol,
                fmt::format("the TES task list did not end within {} pages or {} s", filter.max_pages, filter.max_time.count()),
                "narrow the list with --state, --name-prefix, --tag or --limit");
  if (ctx.json()) {
    ctx.term().print_json({{"tasks", tasks}}, false, "tasks");
    return;
  }
  Table t{{"TASK_ID", "STATE", "NAME", "CREATED", "TAGS"}, {}, {2, 4}};
  for (const auto& task : tasks)
    t.rows.push_back({task.id, std::string(wes::to_string(task.state)), task.name, task.creation_time, tags_text(task.tags, ",")});
  ctx.term().print_table(t, ctx.format());
}

void show(Context& ctx, const std::string& id) {
  auto s = connect(ctx);
  const auto task = s->client->get(id, tes::View::full);
  if (ctx.json()) {
    ctx.term().print_json(task);
    return;
  }
  auto& out = ctx.term().out();
  auto line = [&](const char* k, const std::string& v) {
    if (!v.empty()) out << ctx.term().style(fmt::format("{:<10}", k), Terminal::Style::bold) << visible(v) << '\n';
  };
  const auto& doc = task.document;
  line("Task", task.id);
  line("State", std::string(wes::to_string(task.state)));
  line("Name", task.name);
  line("Created", task.creation_time);
  line("Tags", tags_text(task.tags, ", "));
  if (const auto it = doc.find("executors"); it != doc.end() && it->is_array())
    for (const auto& e : *it) {
      std::string cmd;
      if (e.is_object() && e.contains("command") && e["command"].is_array())
        for (const auto& c : e["command"]) cmd += (cmd.empty() ? "" : " ") + (c.is_string() ? c.get<std::string>() : c.dump());
      line("Executor", (e.is_object() ? e.value("image", std::string()) : std::string()) + ": " + cmd);
    }
  for (const char* list : {"inputs", "outputs"}) {
    const auto it = doc.find(list);
    if (it == doc.end() || !it->is_array()) continue;
    for (const auto& io : *it) {
      if (!io.is_object()) continue;
      const std::string path = io.value("path", std::string());
      const std::string url = io.value("url", std::string());  // already redacted
      line(std::string(list) == "inputs" ? "Input" : "Output",
           std::string(list) == "inputs" ? (url.empty() ? "(content)" : url) + " -> " + path : path + " -> " + url);
    }
  }
  for (const auto& l : task.logs) {
    line("Started", l.start_time);
    line("Ended", l.end_time);
    for (std::size_t i = 0; i < l.logs.size(); ++i)
      if (l.logs[i].exit_code && !l.logs[i].end_time.empty())  // servers send 0 until an executor ends
        line("Exit code", fmt::format("{} (executor {})", *l.logs[i].exit_code, i));
    for (const auto& m : l.system_logs) line("Log", m);
  }
}

struct LogsFlags {
  std::string id;
  std::size_t executor = 0;
  bool stderr_log = false, follow = false;
};

// The text of one executor's stdout or stderr across the task's attempts (FULL view).
std::string log_text(const tes::Task& t, const LogsFlags& f) {
  std::string text;
  for (const auto& l : t.logs)
    if (f.executor < l.logs.size()) text += f.stderr_log ? l.logs[f.executor].stderr_text : l.logs[f.executor].stdout_text;
  return text;
}

void logs(Context& ctx, const LogsFlags& f) {
  auto s = connect(ctx);
  auto task = s->client->get(f.id, tes::View::full);
  auto shown_text = [&](std::string_view t) { return ctx.term().out_tty() ? visible(t, true) : std::string(t); };
  std::string text = log_text(task, f);
  ctx.term().out() << shown_text(text) << std::flush;
  if (!f.follow) return;
  std::size_t shown = text.size();
  wes::Backoff backoff(std::chrono::seconds(1), std::chrono::seconds(15));
  while (!wes::stops_wait(task.state)) {
    wes::sleep_for(backoff.next());
    task = s->client->get(f.id, tes::View::full);
    text = log_text(task, f);
    if (text.size() > shown) {  // logs only grow; a shorter text is a server that trimmed: print nothing
      ctx.term().out() << shown_text(std::string_view(text).substr(shown)) << std::flush;
      shown = text.size();
      backoff.reset();
    }
  }
}

// Exit 0 when every task is CANCELING or CANCELED afterwards, else 6 (or the one error's code).
void cancel(Context& ctx, const std::vector<std::string>& ids) {
  auto s = connect(ctx);
  nlohmann::json done = nlohmann::json::array(), failed = nlohmann::json::array();
  Table t{{"TASK_ID", "STATE"}, {}};
  std::optional<Error> last;
  for (const auto& id : ids) {
    std::string problem, state;
    try {
      const auto before = s->client->get(id, tes::View::minimal).state;
      if (wes::is_terminal(before)) {
        problem = "the task had already ended (" + std::string(wes::to_string(before)) + "): nothing to cancel";
        state = wes::to_string(before);
      } else {
        s->client->cancel(id);
        const auto after = s->client->get(id, tes::View::minimal).state;
        state = wes::to_string(after);
        if (after != wes::State::canceling && after != wes::State::canceled)
          problem = wes::is_terminal(after) ? "the task ended (" + state + ") before the cancel took effect"
                                            : "the server accepted the cancel but the task is still " + state;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      problem = e.what();
      last = e;
    }
    if (problem.empty()) {
      done.push_back({{"task_id", id}, {"state", state}});
      t.rows.push_back({id, state});
      continue;
    }
    nlohmann::json fj = {{"task_id", id}, {"error", problem}};
    if (!state.empty()) fj["state"] = state;
    failed.push_back(std::move(fj));
    if (!ctx.json()) ctx.term().error(id + ": " + problem);
  }
  if (ctx.json()) ctx.term().print_json({{"tasks", done}, {"failed", failed}}, false, "tasks");
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  if (failed.empty()) return;
  ctx.exit_code = done.empty() && failed.size() == 1 && last ? exit_code_for(last->kind()) : exit_code::partial;
}

}  // namespace

void register_task(CLI::App& app, Context& ctx) {
  auto* task = add_command(app, "task");
  task->require_subcommand(1);
  task->footer("Examples:\n  impact task submit --image alpine --cmd 'echo hello' --wait\n  impact task list --state RUNNING\n"
               "  impact task logs TASK_ID --stderr");

  auto sf = std::make_shared<SubmitFlags>();
  auto* sub = task->add_subcommand("submit", "Submit a task (prints the task id)");
  sub->add_option("task", sf->file, "A TES task document (JSON), or - for stdin");
  sub->add_option("--name", sf->name, "The task's name");
  sub->add_option("--image", sf->image, "Container image of the one executor");
  sub->add_option("--cmd", sf->cmd, "Command the executor runs (with /bin/sh -c)");
  sub->add_option("--input", sf->inputs, "Input URL=PATH (repeatable)");
  sub->add_option("--output", sf->outputs, "Output PATH=URL (repeatable)");
  sub->add_option("--cpu", sf->cpu, "CPU cores")->check(CLI::Range(1LL, 100000LL));
  sub->add_option("--ram", sf->ram, "RAM in GB")->check(CLI::PositiveNumber);
  sub->add_option("--disk", sf->disk, "Disk in GB")->check(CLI::PositiveNumber);
  sub->add_option("--tag", sf->tags, "Tag the task KEY=VALUE (repeatable)");
  sub->add_flag("--allow-url-credentials", sf->allow_credentials,
                "Send input/output URLs that carry credentials (presigned or user:password@) as they are");
  auto* wait_flag = sub->add_flag("--wait", sf->wait, "Then wait for the task to end, as `impact task wait`");
  auto wait_check = add_wait_flags(sub, sf->w, wait_flag);
  sub->footer("Examples:\n  impact task submit task.json --wait\n"
              "  impact task submit --image alpine --cmd 'wc -l /in/x.txt > /out/n.txt' \\\n"
              "      --input https://example.org/x.txt=/in/x.txt --output /out/n.txt=s3://bucket/n.txt");
  sub->callback(ctx.action([&ctx, sf, wait_check] {
    wait_check();
    submit(ctx, *sf);
  }));

  auto lf = std::make_shared<ListFlags>();
  auto* ls = task->add_subcommand("list", "List your tasks");
  ls->add_option("--state", lf->state, "Only tasks in this state");
  ls->add_option("--name-prefix", lf->name_prefix, "Only tasks whose name starts so");
  ls->add_option("--tag", lf->tags, "Only tasks with this tag KEY=VALUE, or KEY with any value (repeatable)");
  ls->add_option("--view", lf->view, "MINIMAL, BASIC or FULL")->capture_default_str();
  ls->add_option("--limit", lf->limit, "At most this many tasks (0: all)")->capture_default_str();
  ls->add_option("--page-size", lf->page_size, "Tasks asked for per page")->capture_default_str();
  ls->footer("Examples:\n  impact task list --state RUNNING\n  impact task list --tag sample=S1 --view BASIC --json");
  ls->callback(ctx.action([&ctx, lf] { list(ctx, *lf); }));

  auto id = std::make_shared<std::string>();
  auto* sh = task->add_subcommand("show", "Show a task (FULL view): state, executors, inputs, outputs, logs");
  sh->add_option("task_id", *id, "Task id")->required();
  sh->footer("Examples:\n  impact task show TASK_ID\n  impact --json task show TASK_ID | jq .logs");
  sh->callback(ctx.action([&ctx, id] { show(ctx, *id); }));

  auto gf = std::make_shared<LogsFlags>();
  auto* lg = task->add_subcommand("logs", "Print an executor's stdout or stderr");
  lg->add_option("task_id", gf->id, "Task id")->required();
  lg->footer("Examples:\n  impact task logs TASK_ID --stderr\n  impact task logs TASK_ID --follow");
  lg->add_option("--executor", gf->executor, "Which executor (0: the first)")->capture_default_str();
  lg->add_flag("--stderr", gf->stderr_log, "stderr instead of stdout");
  lg->add_flag("-f,--follow", gf->follow, "Keep printing new output until the task ends");
  lg->callback(ctx.action([&ctx, gf] { logs(ctx, *gf); }));

  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cn = task->add_subcommand("cancel", "Cancel tasks (reports CANCELING or CANCELED)");
  cn->add_option("task_id", *ids, "Task ids")->required();
  cn->footer("Examples:\n  impact task cancel TASK_ID\n  impact task list --state RUNNING --format tsv | cut -f1 | xargs impact task cancel");
  cn->callback(ctx.action([&ctx, ids] { cancel(ctx, *ids); }));

  auto wids = std::make_shared<std::vector<std::string>>();
  auto wf = std::make_shared<WaitFlags>();
  auto* wt = task->add_subcommand("wait", "Wait for tasks to end; the exit code tells how they ended");
  wt->add_option("task_id", *wids, "Task ids")->required();
  add_wait_flags(wt, *wf);
  wt->footer("Exit codes (as for `run wait`): 0 COMPLETE, 10 EXECUTOR_ERROR, 11 SYSTEM_ERROR, 12 CANCELED,\n"
             "13 PREEMPTED, 14 a *_ERROR state outside the spec, 9 another state outside it, 8 still running at --timeout.\n"
             "Examples:\n  impact task wait TASK_ID --timeout 1h\n  impact --json task wait TASK_A TASK_B   # NDJSON events");
  wt->callback(ctx.action([&ctx, wids, wf] {
    auto s = connect(ctx);
    do_wait(ctx, *s->client, *wids, *wf);
  }));
}

}  // namespace impact::cli
