// impact run submit|list|show|logs|cancel|wait: GA4GH WES runs.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "outcome.hpp"
#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/run_ids_cache.hpp"
#include "impact/trs.hpp"
#include "impact/wes.hpp"
#include "service_session.hpp"
#include "workflow.hpp"
#include "waiting.hpp"

namespace impact::cli {
namespace {

namespace fs = std::filesystem;

// Forgets the profile's cached run ids (completion) when the command ends, however it ends: the runs it
// submitted or cancelled change the list.
struct ForgetRunIds {
  std::string profile;
  ~ForgetRunIds() { wes::forget_run_ids(profile); }
};

// The profile's WES (service_session.hpp).
std::unique_ptr<ServiceSession<wes::Client>> connect(Context& ctx) {
  return connect_service<wes::Client>(ctx, &Profile::wes, "WES",
                                      [](const Profile& p) { return "run: impact profile set " + p.name + " --wes URL"; });
}

// A run command's body. A 401 to an anonymous profile becomes "the service needs a login", with how to get
// one (a profile without an issuer first needs one).
template <class F>
std::function<void()> wes_action(Context& ctx, F f) {
  return ctx.action([&ctx, f] {
    try {
      f();
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::auth_required || !e.http_status()) throw;
      Config config = ctx.load_config();
      const Profile& p = ctx.profile(config);
      if (ctx.login_if_any(p) != nullptr) throw;  // a login the server did not take: the usual advice
      const std::string login = ctx.hint_for("", Remedy::login);  // "run: impact [--profile P] login"
      const std::string hint =
          p.issuer.empty()
              ? "profile '" + p.name + "' has no identity provider: add one with: impact profile add " + p.name +
                    " --force --wes " + p.wes + " --issuer ISSUER_URL (and its other services), then " + login
              : login;
      Error more(ErrorKind::auth_required, "the WES service needs a login (impact asked without one): " + std::string(e.what()),
                 hint);
      more.with_status(*e.http_status());
      throw more.with_url(e.url());
    }
  });
}

// A failed run's way to its cause, on stderr (also in a pipe): the last lines of its stderr, control
// characters shown, and the command that prints all of it.
constexpr std::size_t kFailureLines = 20;
constexpr std::size_t kFailureLineWidth = 400;
constexpr std::size_t kFailuresShown = 3;  // runs whose stderr is shown after a wait on many

void show_failure(Context& ctx, wes::Client& client, const std::string& id, const wes::State& state) {
  const std::string impact = ctx.impact_command();
  const std::string all = impact + " run logs " + id + " --stderr";
  std::string text;
  try {
    text = client.run_log_text(client.get(id), true);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    ctx.term().note(fmt::format("run {} ended in {}; its stderr cannot be read now ({}). Try: {}", id,
                                wes::to_string(state), e.what(), all));
    return;
  }
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  while (!lines.empty() && lines.back().find_first_not_of(" \t") == std::string_view::npos) lines.pop_back();
  if (lines.empty()) {
    ctx.term().note(fmt::format("run {} ended in {} with nothing on its stderr; see its tasks: {} run show {}", id,
                                wes::to_string(state), impact, id));
    return;
  }
  const std::size_t from = lines.size() > kFailureLines ? lines.size() - kFailureLines : 0;
  std::string block = fmt::format("run {} ended in {}; {} of its stderr:", id, wes::to_string(state),
                                  from == 0 ? std::string("the whole") : fmt::format("the last {} lines", lines.size() - from));
  for (std::size_t i = from; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    block += "\n  | " + visible(line.substr(0, kFailureLineWidth)) + (line.size() > kFailureLineWidth ? "…" : "");
  }
  block += "\nall of it: " + all;
  ctx.term().note(block);
}

void do_wait(Context& ctx, wes::Client& client, const std::vector<std::string>& ids, const WaitFlags& f) {
  WaitPrinter printer(ctx, ids);
  auto result = waiting(ctx, ids, {}, [&] { return wes::wait(client, ids, wait_options(f), &printer); });
  printer.finish();
  report_wait(ctx, result, f);
  std::vector<std::string> others;  // failed runs beyond those shown
  std::size_t failed = 0;
  for (const auto& [id, state] : result.runs) {
    if (state != wes::State::executor_error && state != wes::State::system_error) continue;
    if (++failed <= kFailuresShown) show_failure(ctx, client, id, state);
    else others.push_back(id);
  }
  if (!others.empty()) {
    const std::string impact = ctx.impact_command();
    // One bounded line: the ids are in the states printed above, not repeated here.
    ctx.term().note(fmt::format("{} more runs failed (their ids are in the states above); the stderr of each: {} run logs "
                                "RUN_ID --stderr, e.g. {} run logs {} --stderr",
                                others.size(), impact, impact, others.front()));
  }
}

// ---- submit

struct SubmitFlags {
  std::string workflow, type, type_version, engine, engine_version, params, batch;
  std::string trs, trs_registry, trs_as = "auto";  // --trs ID:VERSION, from which registry, sent how
  std::vector<wes::Attachment> fetched;  // --trs: the workflow's other files (then --attach is relative to here)
  std::string fetched_primary;           // --trs: the primary descriptor's path among them
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

bool attached(const wes::RunRequest& r, const std::string& name) {
  for (const auto& a : r.attachments)
    if (a.name == name) return true;
  return false;
}

bool is_url(const std::string& s) {
  auto p = s.find("://");
  return p != std::string::npos && p > 0 && s.find('/') > p;
}

// Local files the params name, checked against the attachments before anything is sent. The server finds a
// relative path among the attachments (below the workflow's folder), so one that is not attached fails the
// run later (SYSTEM_ERROR, say) with no word from impact. A CWL File or Directory (`location` or `path`)
// must be attached: refused. A plain string that happens to be a file here (WDL, Nextflow and Snakemake
// inputs are strings) may as well be a name the workflow makes sense of otherwise: a warning.
struct ParamFile {
  std::string where;  // the parameter's path in the params, e.g. "reads[0].location"
  std::string value;
  bool typed = false;  // a CWL File/Directory
  bool directory = false;
};

void collect_param_files(const nlohmann::json& v, const std::string& where, std::vector<ParamFile>& out, int depth,
                         std::size_t& budget) {
  if (depth > 32 || budget == 0) return;
  --budget;
  if (v.is_string()) {
    out.push_back({where, v.get<std::string>(), false, false});
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) collect_param_files(v[i], fmt::format("{}[{}]", where, i), out, depth + 1, budget);
  } else if (v.is_object()) {
    const auto cls = v.find("class");
    const bool file = cls != v.end() && cls->is_string() && (*cls == "File" || *cls == "Directory");
    for (const auto& [k, e] : v.items()) {
      const std::string at = where.empty() ? k : where + "." + k;
      if (file && (k == "location" || k == "path") && e.is_string())
        out.push_back({at, e.get<std::string>(), true, *cls == "Directory"});
      else if (!file || (k != "location" && k != "path"))
        collect_param_files(e, at, out, depth + 1, budget);
    }
  }
}

// `strict`: the workflow is sent with the run (a local file, or fetched from a registry), so a relative path
// can only mean an attachment and a missing one is refused; with a workflow the server has (a URL, file:),
// the server may hold the file beside it, so impact only warns.
void check_param_files(Context& ctx, const wes::RunRequest& r, const fs::path& root, bool strict) {
  std::vector<ParamFile> named;
  std::size_t budget = 100000;
  collect_param_files(r.params, "", named, 0, budget);
  for (auto& p : named) {
    std::string v = p.value;
    while (v.rfind("./", 0) == 0) v.erase(0, 2);
    // URLs (file: included), absolute paths (the server's own), empty strings and multi-line text are not
    // attachments.
    if (v.empty() || v.find(':') != std::string::npos || v.front() == '/' || v.front() == '~' ||
        v.find('\n') != std::string::npos || v.size() > 4096)
      continue;
    while (!v.empty() && v.back() == '/') v.pop_back();
    if (v.empty() || v == ".") continue;  // the run's folder itself
    const bool attached = std::any_of(r.attachments.begin(), r.attachments.end(), [&](const wes::Attachment& a) {
      return a.name == v || a.name.rfind(v + "/", 0) == 0;
    });
    if (attached) continue;
    std::error_code ec;
    const fs::path here = root / v;
    const bool exists = p.directory ? fs::is_directory(here, ec) : fs::exists(here, ec);
    std::string rel = here.lexically_relative(fs::current_path()).generic_string();
    if (rel.empty() || rel.rfind("..", 0) == 0) rel = here.generic_string();
    const bool outside = fs::path(v).lexically_normal().generic_string().rfind("..", 0) == 0;
    if (p.typed) {
      std::string what, hint;
      if (outside) {
        what = fmt::format("the params name {} ({}), outside the workflow's folder", p.value, p.where);
        hint = "attachments keep their path below the workflow's folder: move the file there, or give a URL";
      } else if (exists && !p.directory) {
        what = fmt::format("the params name {} ({}), which is not attached", p.value, p.where);
        hint = fmt::format("send it with the run: --attach {}", rel);
      } else if (exists) {
        what = fmt::format("the params name the folder {} ({}), and no file in it is attached", p.value, p.where);
        hint = fmt::format("attach its files, each with --attach {}/FILE", rel);
      } else {
        what = fmt::format("the params name {} ({}), which is neither attached nor a file at {}", p.value, p.where, rel);
        hint = "fix the path (relative to the workflow's folder), attach the file with --attach, or give a URL";
      }
      if (strict) throw Error(ErrorKind::usage, what, hint);
      ctx.term().warn(what + "; unless the server has it beside the workflow: " + hint);
      continue;
    }
    if (exists && !outside && fs::is_regular_file(here, ec))
      ctx.term().warn(fmt::format("the params value {} ({}) is a file here but is not attached: the run sees it only if "
                                  "the server has it too; to send it: --attach {}",
                                  p.value, p.where, rel));
  }
}

// The request from the flags; `local` is set to the workflow file when it is sent as an attachment.
wes::RunRequest build_request(Context& ctx, const SubmitFlags& f, fs::path& local) {
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
  } else if (f.workflow.rfind("file:", 0) == 0 || f.workflow.rfind("trs:", 0) == 0 || !f.trs.empty() ||
             std::find(f.attach.begin(), f.attach.end(), f.workflow) != f.attach.end()) {
    r.workflow_url = f.workflow;  // a file the server has, an attachment, or a TRS path the server resolves
  } else {
    // Not a URL, not a file here: a typo is far likelier than a path on the server, so nothing is sent.
    throw Error(ErrorKind::usage, f.workflow + ": no such file",
                "give a local workflow file, its https:// URL, or file:PATH for a workflow installed on the server");
  }
  if (!f.fetched_primary.empty() && local.filename() != f.fetched_primary) {
    r.workflow_url = f.fetched_primary;  // a primary descriptor in a folder keeps it
    r.attachments.back().name = f.fetched_primary;
  }
  if (!f.trs.empty()) root = fs::current_path();  // the user's own files, beside the registry's
  for (const auto& a : f.fetched) r.attachments.push_back(a);
  for (const auto& a : f.attach) {
    if (!fs::is_regular_file(a)) throw Error(ErrorKind::usage, "--attach " + a + ": no such file");
    const fs::path file = fs::weakly_canonical(a);
    const std::string name = file.lexically_relative(root).generic_string();
    if (name.empty() || name.rfind("..", 0) == 0)
      throw Error(ErrorKind::usage, "--attach " + a + " is outside " + root.string(),
                  "attachments keep their path below the workflow's directory; '..' is refused");
    if (!f.trs.empty() && (name == r.workflow_url || attached(r, name)))
      throw Error(ErrorKind::usage, "--attach " + a + ": the registered workflow has a file of that name already");
    if (name != r.workflow_url) r.attachments.push_back({file, name});
  }
  check_param_files(ctx, r, root, /*strict=*/!local.empty() || !f.trs.empty());
  return r;
}

void batch(Context& ctx, wes::Client& client, wes::RunRequest base, const SubmitFlags& f);

// Attachments in sub-folders, sent to a WES 1.0 server: some (WESkit) store them without their folders.
void warn_flattening(Context& ctx, const wes::RunRequest& req, const ServiceInfo& info) {
  if (wes::wes_version(info) != wes::WesVersion::v1_0) return;
  for (const auto& a : req.attachments) {
    if (a.name.find('/') == std::string::npos) continue;
    ctx.term().warn(fmt::format("attachment {} is in a sub-folder; some WES 1.0 services store it as {}: "
                                "if the run cannot find it, refer to that name or attach files beside the workflow",
                                a.name, wes::flattened_name(a.name)));
    return;
  }
}

// A private folder for a workflow fetched from a TRS registry, removed when the submission is done.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "impact-trs-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw Error(ErrorKind::io, "cannot make a temporary folder in " + fs::temp_directory_path().string());
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Whether the WES says it fetches `trs://` workflow URLs itself (its supported_filesystem_protocols).
bool wes_resolves_trs(const ServiceInfo& info) {
  const auto it = info.extra.find("supported_filesystem_protocols");
  if (it == info.extra.end() || !it->is_array()) return false;
  for (const auto& p : *it)
    if (p.is_string()) {
      std::string v = p.get<std::string>();
      for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (v == "trs") return true;
    }
  return false;
}

// --trs ID:VERSION: the workflow fetched from the registry (checked, into `scratch`), sent as a `trs://` URI
// where the WES resolves TRS itself (or --trs-as uri), else as attachments with their relative paths. The TRS
// id, version and descriptor checksum go into the run's tags.
void use_trs_workflow(Context& ctx, SubmitFlags& f, const ServiceInfo& info, const fs::path& scratch) {
  if (!f.workflow.empty()) throw Error(ErrorKind::usage, "give a WORKFLOW or --trs ID:VERSION, not both");
  std::vector<std::string> wanted;
  if (!f.trs_registry.empty()) wanted.push_back(f.trs_registry);
  const TrsFetched got = fetch_trs_workflow(ctx, f.trs, f.type, wanted, scratch);
  const auto& w = got.fetched;
  if (w.type == "GALAXY") throw Error(ErrorKind::usage, "impact cannot submit GALAXY workflows to a WES", "choose another --type");
  f.type = w.type;
  const bool as_uri = f.trs_as == "uri" || (f.trs_as == "auto" && wes_resolves_trs(info));
  if (as_uri) {
    f.workflow = trs::trs_uri(got.registry.url, w.id, w.version, w.type);
  } else {
    f.workflow = (scratch / w.primary).string();
    // every file under the path the registry lists (the primary descriptor too, when in a folder)
    f.fetched_primary = w.primary;
    for (const auto& file : w.files)
      if (file.path != w.primary) f.fetched.push_back({scratch / file.path, file.path});
  }
  f.tags.push_back("trs_id=" + w.id);
  f.tags.push_back("trs_version=" + w.version);
  f.tags.push_back("trs_descriptor_checksum=" + w.descriptor_checksum);
  if (!ctx.json())
    ctx.term().note(fmt::format("{}:{} ({}) from {}: {}", w.id, w.version, w.type, got.registry.name,
                                as_uri ? "sent as " + f.workflow
                                       : fmt::format("{} file(s) sent as attachments", w.files.size())));
}

void submit(Context& ctx, const SubmitFlags& flags) {
  if (flags.trs.empty() && flags.workflow.empty())
    throw Error(ErrorKind::usage, "give the WORKFLOW to run, or --trs ID:VERSION");
  auto s = connect(ctx);
  const ForgetRunIds forget{ctx.profile(s->config).name};
  SubmitFlags f = flags;
  std::optional<ScratchDir> scratch;
  std::optional<ServiceInfo> early;
  if (!f.trs.empty()) {
    early = s->client->service_info();
    scratch.emplace();
    use_trs_workflow(ctx, f, *early, scratch->path());
  }
  fs::path local;
  auto req = build_request(ctx, f, local);
  req.engine_if_required = ctx.profile(s->config).wes_engine;
  auto info = early ? *early : s->client->service_info();
  wes::complete_request(req, info, local);
  try {
    wes::validate(req, info);
  } catch (const Error& e) {
    if (f.engine.empty() || wes::wes_version(info) != wes::WesVersion::v1_0) throw;
    throw Error(e.kind(), e.what(), "leave out --engine: this service chooses its engine itself");
  }
  if (!ctx.json()) warn_flattening(ctx, req, info);
  s->client->on_adjustment([&ctx](const std::string& note) {
    if (!ctx.json()) ctx.term().note(note);
  });
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
  // No line of counts (rows finished by an earlier process are not reported), but Ctrl-C says how to resume.
  Terminal::ProgressOptions hint_only;
  hint_only.noun = "rows";
  hint_only.draw = false;
  Progress resumable = ctx.term().progress(hint_only);
  auto result = wes::run_batch(client, spec, ledger, &printer);
  resumable.finish();
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

// Runs read one by one for --tag when the server's list carries no tags: at most this many, with a note
// on stderr from kTagReadsNote on.
constexpr std::size_t kTagReads = 200;
constexpr std::size_t kTagReadsNote = 20;

void list(Context& ctx, const ListFlags& f) {
  auto s = connect(ctx);
  std::vector<wes::State> states;
  for (const auto& st : f.states) {
    auto parsed = wes::parse_state(st);
    if (parsed.code() == wes::State::other || parsed.code() == wes::State::other_error)
      ctx.term().note("'" + st + "' is not a WES state; showing runs the server reports in it");
    states.push_back(parsed);
  }
  wes::Tags want;
  for (const auto& t : f.tags) want.insert(key_value(t, "--tag"));
  auto matches = [&](const wes::Tags& tags) {
    for (const auto& [k, v] : want) {
      auto it = tags.find(k);
      if (it == tags.end() || it->second != v) return false;
    }
    return true;
  };
  std::vector<wes::RunSummary> runs, unread;  // unread: the list entry has no tags to filter on
  // Without filters every listed run is shown, so --limit N needs no page larger than N.
  wes::ListOptions page;
  if (f.limit != 0 && states.empty() && want.empty()) page.page_size = std::min(page.page_size, f.limit);
  const bool ended = s->client->list([&](const wes::RunSummary& r) {
    if (!states.empty() && std::find(states.begin(), states.end(), r.state) == states.end()) return true;
    if (!want.empty() && !r.tags_known) {
      unread.push_back(r);
      return unread.size() <= kTagReads;
    }
    if (!matches(r.tags)) return true;
    runs.push_back(r);
    return f.limit == 0 || runs.size() < f.limit;
  }, page);
  if (unread.size() > kTagReads)
    throw Error(ErrorKind::generic,
                fmt::format("the WES server's run list carries no tags, and filtering by tag would read more than {} "
                            "runs one by one",
                            kTagReads),
                "narrow the list with --state, or look at a run with: impact run show RUN_ID");
  const bool stopped_here = unread.size() > kTagReads || (f.limit != 0 && runs.size() >= f.limit);
  if (!ended && !stopped_here)  // the page bound, not the list's end: never a silent partial listing
    throw Error(ErrorKind::protocol, fmt::format("the WES run list did not end after {} pages", wes::ListOptions{}.max_pages),
                "the service keeps sending new pages; narrow the list with --state or --limit, or ask its operators");
  if (unread.size() >= kTagReadsNote)
    ctx.term().note(fmt::format("the WES server's run list carries no tags: reading {} runs one by one", unread.size()));
  std::size_t unreadable = 0;
  for (auto& r : unread) {
    if (f.limit != 0 && runs.size() >= f.limit) break;
    try {
      const auto run = s->client->get(r.run_id);
      r.tags = run.tags();
      r.tags_known = true;
      if (r.start_time.empty()) r.start_time = run.run_log.start_time;
      if (r.end_time.empty()) r.end_time = run.run_log.end_time;
      if (matches(r.tags)) runs.push_back(r);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      ++unreadable;
      ctx.term().warn("run " + r.run_id + ": its tags cannot be read (" + e.what() + "); it may match");
    }
  }
  if (unreadable > 0) ctx.exit_code = exit_code::partial;
  // Newest first whatever order the server used; runs without a start time (queued) lead.
  std::stable_sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    if (a.start_time.empty() != b.start_time.empty()) return a.start_time.empty();
    return a.start_time > b.start_time;
  });
  if (ctx.json()) {
    ctx.term().print_json({{"runs", runs}}, false, "runs");
    return;
  }
  Table t{{"RUN_ID", "STATE", "STARTED", "ENDED", "TAGS"}, {}, {4}};
  for (const auto& r : runs) {
    std::string tags;
    for (const auto& [k, v] : r.tags)
      if (k != wes::kRequestIdTag) tags += (tags.empty() ? "" : ",") + k + "=" + v;  // impact's own tag: --json only
    t.rows.push_back({r.run_id, std::string(wes::to_string(r.state)), r.start_time, r.end_time, tags});
  }
  ctx.term().print_table(t, ctx.format());
}

// `run show` in TSV: "exit_code" for "Exit code"; a field with its tabs and newlines as spaces, controls visible.
std::string tsv_key(std::string_view k) {
  std::string out(k);
  for (auto& c : out) c = c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
std::string tsv_field(std::string v) {
  for (auto& c : v)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return visible(v);
}

// A server that cannot give a run's details before it finishes (WESkit answers 500): the run from /status.
bool show_from_status(Context& ctx, wes::Client& client, const std::string& id, const Error& why) {
  wes::State state;
  try {
    state = client.status(id);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    return false;  // no such run, or the server is down: the first error says it
  }
  const std::string note = "the server does not give this run's details (" + std::string(why.what()) +
                           "); they are available once the run finishes";
  if (ctx.json()) {
    ctx.term().print_json({{"run_id", id}, {"state", wes::to_string(state)}, {"note", note}});
    return true;
  }
  auto& out = ctx.term().out();
  if (ctx.format() != Format::table) {
    out << "run\t" << tsv_field(id) << "\nstate\t" << wes::to_string(state) << '\n';
  } else {
    out << ctx.term().style(fmt::format("{:<10}", "Run"), Terminal::Style::bold) << id << '\n';
    out << ctx.term().style(fmt::format("{:<10}", "State"), Terminal::Style::bold) << wes::to_string(state) << '\n';
  }
  ctx.term().note(note);
  return true;
}

// An output value on one line: a URL or a path as it is, a CWL File by its location, a list item by item.
std::string output_text(const nlohmann::json& v, int depth = 0) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && depth < 8) {
    for (const char* k : {"location", "url", "file_url", "path"})
      if (v.contains(k) && v[k].is_string()) return v[k].get<std::string>();
  }
  if (v.is_array() && depth < 8) {
    if (v.empty()) return "(none)";
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + output_text(e, depth + 1);
    return out;
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}


void show(Context& ctx, const std::string& id) {
  auto s = connect(ctx);
  wes::RunLog run;
  try {
    run = s->client->get(id);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::server || !show_from_status(ctx, *s->client, id, e)) throw;
    return;
  }
  std::vector<wes::Log> tasks = run.task_logs;
  try {
    tasks = s->client->tasks(run);
  } catch (const Error& e) {  // no task list (WES 1.0, or a broken one): the run's inline task logs
    if (e.kind() == ErrorKind::cancelled) throw;
  }
  if (ctx.json()) {
    nlohmann::json j = run;
    j["tasks"] = tasks;
    ctx.term().print_json(j);
    return;
  }
  auto& out = ctx.term().out();
  // A table on a terminal; in TSV every line names what it holds in its first field ("state\tCOMPLETE",
  // "task\tID\tNAME\tEXIT\tSTARTED\tENDED"), so a script never meets a row it cannot place.
  const bool tsv = ctx.format() != Format::table;
  auto line = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    if (tsv) out << tsv_key(k) << '\t' << tsv_field(v) << '\n';
    else out << ctx.term().style(fmt::format("{:<10}", k), Terminal::Style::bold) << visible(v) << '\n';
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
  for (const auto& [k, v] : run.tags())
    if (k != wes::kRequestIdTag) tags += (tags.empty() ? "" : ", ") + k + "=" + v;
  line("Tags", tags);
  if (rq.contains("workflow_params")) line("Params", rq["workflow_params"].dump());
  for (const auto& [k, v] : run.outputs.items()) {
    if (v.is_array() && !v.empty() && !v.front().is_object()) {  // a list of files ({"S3": [URL, ...]}): one per line
      for (const auto& e : v) line("Output", k + ": " + redact_url(output_text(e)));
      continue;
    }
    line("Output", k + ": " + redact_url(output_text(v)));
  }
  for (const auto& msg : run.run_log.system_logs) line("Log", msg);
  if (tasks.empty()) return;
  if (tsv) {
    for (const auto& task : tasks)
      out << "task\t" << tsv_field(task.id) << '\t' << tsv_field(task.name) << '\t'
          << (task.exit_code ? std::to_string(*task.exit_code) : "") << '\t' << tsv_field(task.start_time) << '\t'
          << tsv_field(task.end_time) << '\n';
    return;
  }
  out << '\n';
  Table t{{"TASK", "NAME", "EXIT", "STARTED", "ENDED"}, {}, {1}};
  for (const auto& task : tasks)
    t.rows.push_back({task.id, task.name, task.exit_code ? std::to_string(*task.exit_code) : "", task.start_time,
                      task.end_time});
  ctx.term().print_table(t, Format::table);
}

struct LogsFlags {
  std::string id, task;
  bool stderr_log = false, follow = false;
};

void logs(Context& ctx, const LogsFlags& f) {
  auto s = connect(ctx);
  auto& client = *s->client;
  bool held_noted = false;
  // A log the server holds back until the run completes (WESkit): exit 8 without --follow, else wait for it.
  auto held_back = [&](const Error& e, const wes::State& state) {
    if (!f.follow || wes::is_terminal(state)) throw Error(e.kind(), e.what(), "wait for it: impact run logs " + f.id + " --follow");
    if (!held_noted && !ctx.json()) ctx.term().note(std::string(e.what()) + "; waiting");
    held_noted = true;
    return std::string();
  };
  auto text_now = [&](wes::State& state) {
    wes::RunLog run;
    try {
      run = client.get(f.id);
    } catch (const Error& e) {
      // A server that gives a run's details only once it has finished (WESkit: 500): the state from
      // /status, the log from the server's own endpoint, which says whether it is held back.
      if (e.kind() != ErrorKind::server || !f.task.empty()) throw;
      try {
        state = client.status(f.id);
        return client.endpoint_log_text(f.id, state, f.stderr_log);
      } catch (const Error& e2) {
        if (e2.kind() == ErrorKind::pending) return held_back(e2, state);
        if (e2.kind() == ErrorKind::cancelled || e2.http_status() == 409) throw;
        throw e;  // no such endpoint either: the server's first answer says what is wrong
      }
    }
    state = run.state;
    if (f.task.empty()) {
      try {
        return client.run_log_text(run, f.stderr_log);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::pending) throw;
        return held_back(e, state);
      }
    }
    for (const auto& t : client.tasks(run))
      if (t.id == f.task || t.name == f.task) return client.fetch_log(f.stderr_log ? t.stderr_log : t.stdout_log);
    if (!f.follow || wes::stops_wait(state))
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
  while (!wes::stops_wait(state)) {
    wes::sleep_for(backoff.next());
    text = text_now(state);
    if (text.size() > shown) {  // logs only grow; a shorter text is a server that trimmed: print nothing
      ctx.term().out() << shown_text(std::string_view(text).substr(shown)) << std::flush;
      shown = text.size();
      backoff.reset();
    }
  }
}

// Cancels one run and says how it went: the state it is then in (CANCELING or CANCELED), or why not.
struct CancelOutcome {
  bool done = false;
  std::string state, problem;
  std::optional<Error> error;  // the request itself failed
};

CancelOutcome cancel_one(wes::Client& client, const std::string& id) {
  CancelOutcome o;
  auto read_state = [&]() -> std::optional<wes::State> {
    try {
      return client.status(id);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      return std::nullopt;
    }
  };
  if (auto before = read_state(); before && wes::is_terminal(*before)) {
    o.state = wes::to_string(*before);
    o.problem = "the run had already ended (" + o.state + "): nothing to cancel";
    return o;
  }
  try {
    client.cancel(id);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    const auto status = e.http_status().value_or(0);
    const std::string_view msg(e.what());
    const bool bare_5xx = status >= 500 && msg.find(": ", msg.find("HTTP ")) == std::string_view::npos;
    if (status == 501 || status == 405 || bare_5xx)
      o.error = Error(e.kind(), fmt::format("this WES server does not implement cancel (it answered HTTP {})", status),
                      "the run goes on; ask the service's operators to stop it");
    else
      o.error = e;
    return o;
  }
  // Re-read: a server may answer 200 and do nothing (sapporo ignores a cancel of a QUEUED run).
  const auto after = read_state();
  if (!after) {
    o.done = true;  // cancelled as far as the server said; its state cannot be read now
    o.state = "UNKNOWN";
    return o;
  }
  o.state = wes::to_string(*after);
  if (*after == wes::State::canceling || *after == wes::State::canceled) {
    o.done = true;
  } else if (wes::is_terminal(*after)) {
    o.problem = "the run ended (" + o.state + ") before the cancel took effect";
  } else {
    o.problem = "the server accepted the cancel but ignored it: the run is still " + o.state;
  }
  return o;
}

// Exit (outcome.hpp): 0 when every run is CANCELING or CANCELED; when none is and each failure was an
// error, the first error's code; else 6 (some runs not cancelled: already ended, or the server ignored
// the cancel).
void cancel(Context& ctx, const std::vector<std::string>& ids) {
  auto s = connect(ctx);
  const ForgetRunIds forget{ctx.profile(s->config).name};
  nlohmann::json done = nlohmann::json::array(), failed = nlohmann::json::array();
  Table t{{"RUN_ID", "STATE"}, {}};
  Outcome outcome(ctx, "runs");
  for (const auto& id : ids) {
    auto o = cancel_one(*s->client, id);
    if (o.done) {
      done.push_back({{"run_id", id}, {"state", o.state}});
      t.rows.push_back({id, o.state});
      outcome.succeeded();
      continue;
    }
    nlohmann::json f = {{"run_id", id}};
    if (!o.state.empty()) f["state"] = o.state;
    // "cancelling run ID failed: ..." names the run already: no "ID: " before it
    const std::string label = o.error && std::string_view(o.error->what()).find(id) != std::string_view::npos ? "" : id;
    failed.push_back(o.error ? outcome.failed(std::move(f), *o.error, label) : outcome.not_done(std::move(f), o.problem, id));
  }
  if (ctx.json()) ctx.term().print_json({{"runs", done}, {"failed", failed}}, false, "runs");
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

}  // namespace

void register_run(CLI::App& app, Context& ctx) {
  auto* run = add_command(app, "run");
  run->require_subcommand(1);
  run->footer("Examples:\n  impact run submit workflow.cwl --params params.json --wait\n  impact run list --state RUNNING\n"
              "  impact run logs RUN_ID --stderr");

  auto sf = std::make_shared<SubmitFlags>();
  auto* sub = run->add_subcommand("submit", "Submit a workflow run (prints the run id)");
  sub->add_option("workflow", sf->workflow, "Workflow URL, or a local file sent as an attachment");
  sub->add_option("--trs", sf->trs, "A registered workflow ID:VERSION from the profile's TRS registries")->group("TRS");
  sub->add_option("--trs-registry", sf->trs_registry, "With --trs: the registry (a name of the profile, or a URL)")
      ->group("TRS");
  sub->add_option("--trs-as", sf->trs_as,
                  "With --trs: send a trs:// URI (uri), the fetched files (files), or uri where the WES lists the "
                  "trs protocol (auto)")
      ->check(CLI::IsMember({"auto", "uri", "files"}))
      ->capture_default_str()
      ->group("TRS");
  sub->add_option("--type", sf->type, "Workflow language (default: from the file name)")
      ->check(CLI::IsMember({"CWL", "WDL", "NFL", "SMK"}));
  sub->add_option("--type-version", sf->type_version, "Language version (default: the file's, else the newest the service runs)");
  sub->add_option("--engine", sf->engine, "Workflow engine (WES 1.1)");
  sub->add_option("--engine-version", sf->engine_version, "Workflow engine version (WES 1.1)");
  sub->add_option("--params", sf->params, "Workflow parameters: a JSON file, or - for stdin");
  sub->add_option("--attach", sf->attach, "Also send this file (path kept below the workflow's directory)");
  sub->add_option("--tag", sf->tags, "Tag the run KEY=VALUE");
  sub->add_option("--engine-param", sf->engine_params, "Engine parameter KEY=VALUE");
  auto* wait_flag = sub->add_flag("--wait", sf->wait, "Then wait for the run to end, as `impact run wait`");
  auto* batch_flag = sub->add_option("--batch", sf->batch, "One run per row of this TSV sample sheet (header = parameter names); resumable")
      ->check(CLI::ExistingFile);
  sub->add_option("--max-in-flight", sf->max_in_flight, "With --batch: at most this many runs active at once")
      ->capture_default_str();
  auto wait_check = add_wait_flags(sub, sf->w, wait_flag, batch_flag);
  sub->footer("Examples:\n  impact run submit workflow.cwl --params params.json --attach data/x.vcf --wait\n"
              "  impact run submit --trs '#workflow/github.com/org/repo:main' --params params.json\n"
              "  impact run submit workflow.cwl --batch samples.tsv --max-in-flight 8");
  sub->callback(wes_action(ctx, [&ctx, sf, wait_check] {
    wait_check();
    submit(ctx, *sf);
  }));

  auto lf = std::make_shared<ListFlags>();
  auto* ls = run->add_subcommand("list", "List your runs, newest first");
  ls->footer("Examples:\n  impact run list --state RUNNING\n  impact run list --tag sample=S1 --limit 5 --json");
  ls->add_option("--state", lf->states, "Only runs in this state (repeatable)");
  ls->add_option("--tag", lf->tags, "Only runs with this tag KEY=VALUE (repeatable)");
  ls->add_option("--limit", lf->limit, "At most this many runs (0: all)")->capture_default_str();
  ls->callback(wes_action(ctx, [&ctx, lf] { list(ctx, *lf); }));

  auto id = std::make_shared<std::string>();
  auto* sh = run->add_subcommand("show", "Show a run: state, timings, request, outputs, tasks");
  sh->footer("Examples:\n  impact run show RUN_ID\n  impact run show RUN_ID --json | jq .outputs");
  sh->add_option("run_id", *id, "Run id")->required();
  sh->callback(wes_action(ctx, [&ctx, id] { show(ctx, *id); }));

  auto gf = std::make_shared<LogsFlags>();
  auto* lg = run->add_subcommand("logs", "Print a run's (or a task's) stdout or stderr");
  lg->footer("Examples:\n  impact run logs RUN_ID --stderr\n  impact run logs RUN_ID --follow");
  lg->add_option("run_id", gf->id, "Run id")->required();
  lg->add_option("--task", gf->task, "The task (id or name) instead of the whole run");
  lg->add_flag("--stderr", gf->stderr_log, "stderr instead of stdout");
  lg->add_flag("-f,--follow", gf->follow, "Keep printing new output until the run ends");
  lg->callback(wes_action(ctx, [&ctx, gf] { logs(ctx, *gf); }));

  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cn = run->add_subcommand("cancel", "Cancel runs (reports CANCELING or CANCELED)");
  cn->footer("Examples:\n  impact run cancel RUN_ID\n  impact run list --state RUNNING --format tsv | cut -f1 | xargs impact run cancel");
  cn->add_option("run_id", *ids, "Run ids")->required();
  cn->callback(wes_action(ctx, [&ctx, ids] { cancel(ctx, *ids); }));

  auto wids = std::make_shared<std::vector<std::string>>();
  auto wf = std::make_shared<WaitFlags>();
  auto* wt = run->add_subcommand("wait", "Wait for runs to end; the exit code tells how they ended");
  wt->add_option("run_id", *wids, "Run ids")->required();
  add_wait_flags(wt, *wf);
  wt->footer("Exit codes: 0 COMPLETE, 10 EXECUTOR_ERROR, 11 SYSTEM_ERROR, 12 CANCELED, 13 PREEMPTED,\n"
             "14 a *_ERROR state outside the WES spec, 9 another state outside it (the wait stops there),\n"
             "8 still running at --timeout; with several runs, the highest (a failure outranks a timeout).\n"
             "Examples:\n  impact run wait RUN_ID --timeout 2h\n  impact --json run wait RUN_A RUN_B   # NDJSON events");
  wt->callback(wes_action(ctx, [&ctx, wids, wf] {
    auto s = connect(ctx);
    do_wait(ctx, *s->client, *wids, *wf);
  }));
}

}  // namespace impact::cli
