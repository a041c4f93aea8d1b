// What `run wait` and `task wait` share: the wait flags, the state-change printer, and the report at the end
// (one exit-code table for WES runs and TES tasks).
#pragma once

#include <cctype>
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "help.hpp"
#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/wes.hpp"

namespace impact::cli {

inline std::string now_iso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

inline void ndjson(Context& ctx, const nlohmann::json& j) {
  ctx.term().print_json(j, true);  // the same escaping (C1 controls, DEL) as every other JSON impact prints
  ctx.term().out() << std::flush;
}

inline std::pair<std::string, std::string> key_value(const std::string& arg, const char* flag) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ErrorKind::usage, fmt::format("{} wants KEY=VALUE, got '{}'", flag, arg));
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

struct WaitFlags {
  std::string timeout;
  std::string interval = "2s";
};

inline wes::WaitOptions wait_options(const WaitFlags& f) {
  wes::WaitOptions o;
  // Both flags were checked against their ranges (flags.hpp) when the command line was parsed.
  o.initial = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(f.interval));
  o.cap = std::max(o.cap, o.initial);
  if (!f.timeout.empty()) o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(f.timeout));
  return o;
}

// What a wait is about, for its table, events and messages: runs (WES) or tasks (TES).
struct WaitWords {
  std::string noun = "run", id_key = "run_id", column = "RUN_ID", list_key = "runs", spec = "WES";
};

// The command that waits again for `ids`, as it works when pasted (--profile kept).
inline std::string wait_again(const Context& ctx, const std::vector<std::string>& ids, const WaitWords& w = {}) {
  std::string again = ctx.impact_command() + " " + w.noun + " wait";
  for (const auto& id : ids) again += " " + id;
  return again;
}

// State changes: NDJSON events with --json, a line per change on a terminal, nothing in a pipe; several
// runs on a terminal: the terminal's progress line (done out of all, a count per state).
class WaitPrinter : public wes::WaitObserver {
 public:
  WaitPrinter(Context& ctx, const std::vector<std::string>& ids, WaitWords words = {})
      : ctx_(ctx), many_(ids.size() > 1), words_(std::move(words)), line_(ctx.term().progress(progress_options(ctx, ids, words_))) {}
  void on_state(const std::string& id, wes::State from, wes::State to) override {
    if (ctx_.json()) {
      ndjson(ctx_, {{"event", "state"}, {words_.id_key, id}, {"from", wes::to_string(from)}, {"state", wes::to_string(to)},
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
  void on_round(const std::vector<std::pair<std::string, wes::State>>& runs) override {
    std::map<wes::State, int> counts;
    for (const auto& [id, st] : runs) ++counts[st];
    std::string states;
    for (const auto& [st, n] : counts) states += fmt::format("{}{} {}", states.empty() ? "" : "  ", n, wes::to_string(st));
    line_.detail(states);
    for (const auto& [id, st] : runs)
      if (wes::stops_wait(st) && ended_.insert(id).second) line_.item_done(st == wes::State::complete);
    // The first round: the runs that had already ended are counted above, the plan adds the others (nothing
    // is drawn before it, so the first line is already complete).
    if (!planned_) line_.plan(runs.size() - ended_.size(), 0);
    planned_ = true;
  }
  void finish() { line_.finish(); }

 private:
  static Terminal::ProgressOptions progress_options(const Context& ctx, const std::vector<std::string>& ids,
                                                    const WaitWords& w) {
    Terminal::ProgressOptions o;
    o.noun = w.list_key;
    o.bytes = false;
    o.draw = ids.size() > 1 && !ctx.json();
    const std::string again = wait_again(ctx, ids, w);
    o.resume_hint = "the " + w.noun + (ids.size() > 1 ? "s go" : " goes") + " on; keep waiting with: " + again;
    return o;
  }
  Context& ctx_;
  bool many_;
  WaitWords words_;
  Progress line_;
  bool planned_ = false;
  std::set<std::string> ended_;
};

// Runs a wait; a service that stopped answering ends it with its error (exit 1, never "still running": the
// states are unknown) and the command that waits again once it is back.
template <class F>
auto waiting(const Context& ctx, const std::vector<std::string>& ids, const WaitWords& w, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    const bool passing = e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout ||
                         e.kind() == ErrorKind::server || e.kind() == ErrorKind::rate_limited;
    if (!passing) throw;
    Error more = e;
    const std::string hint = ctx.hint_for(e);
    throw more.with_remedy(Remedy::none)
        .with_hint((hint.empty() ? std::string() : hint + "; ") + "then keep waiting with: " + wait_again(ctx, ids, w));
  }
}

// The end of a wait: the table (or the NDJSON "done" event), the exit code, and why it stopped.
inline void report_wait(Context& ctx, const wes::WaitResult& result, const WaitFlags& f, const WaitWords& w = {}) {
  ctx.exit_code = result.exit_code();
  nlohmann::json runs = nlohmann::json::array();
  Table t{{w.column, "STATE"}, {}, {0}};
  for (const auto& [id, state] : result.runs) {
    runs.push_back({{w.id_key, id}, {"state", wes::to_string(state)}});
    t.rows.push_back({id, std::string(wes::to_string(state))});
  }
  if (ctx.json())
    ndjson(ctx, {{"event", "done"}, {w.list_key, runs}, {"timed_out", result.timed_out}, {"exit_code", ctx.exit_code}});
  else
    ctx.term().print_table(t, ctx.format());
  if (result.timed_out && !ctx.json()) {
    std::vector<std::string> going;
    for (const auto& [id, state] : result.runs)
      if (!wes::stops_wait(state)) going.push_back(id);
    ctx.term().error("still running after " + f.timeout, "keep waiting with: " + wait_again(ctx, going, w));
  }
  for (const auto& [id, state] : result.runs) {
    if (ctx.json() || (state.code() != wes::State::other && state.code() != wes::State::other_error)) continue;
    if (state.code() == wes::State::other_error)
      ctx.term().error(w.noun + " " + id + " ended in " + std::string(wes::to_string(state)) +
                           ", a state outside the " + w.spec + " specification that names an error",
                       "see: impact " + w.noun + " show " + id);
    else
      ctx.term().error(w.noun + " " + id + " is in " + std::string(wes::to_string(state)) +
                           ", a state outside the " + w.spec + " specification: impact cannot tell whether it will change, "
                           "so it stopped waiting",
                       "see: impact " + w.noun + " show " + id);
  }
}

// `wait`: the --wait flag of a submit command, which the wait flags then need (they mean nothing without
// it), or `batch` (--batch, which waits too) when given. Returns the check for the command's callback
// (after the whole command line is read: global options may come after the command's).
inline std::function<void()> add_wait_flags(CLI::App* cmd, WaitFlags& w, CLI::Option* wait = nullptr,
                                            CLI::Option* batch = nullptr) {
  // "Stop waiting ...", or "With --wait: stop waiting ..." on a submit command.
  const std::string with = !wait ? "" : batch ? "With --wait or --batch: " : "With --wait: ";
  auto described = [&with](std::string text) {
    if (with.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
    return with + text;
  };
  auto* timeout = duration_flag(cmd->add_option("--timeout", w.timeout, described("stop waiting after this long (exit 8), e.g. 30m")),
                                flag_range::timeout);
  auto* poll = duration_flag(cmd->add_option("--poll-interval", w.interval,
                                             described("first polling interval, at least 1s; it grows to 30s while nothing changes")),
                             flag_range::poll_interval)
                   ->capture_default_str();
  if (!wait) return [] {};
  return [cmd, timeout, poll, wait, batch] {
    if (wait->count() > 0 || (batch && batch->count() > 0)) return;
    for (const auto* o : {timeout, poll})
      if (o->count() > 0)
        throw Error(ErrorKind::usage,
                    o->get_name() + " needs --wait" + (batch ? std::string(" (or --batch)") : "") +
                        ": without it the command does not wait",
                    "run: " + command_path(*cmd) + " --help");
  };
}

}  // namespace impact::cli
