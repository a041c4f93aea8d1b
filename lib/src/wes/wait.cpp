// Waiting for runs: a polling loop whose interval grows while nothing changes and resets when a run moves.
// Many runs are polled through the run list (one request covers a page of them), a few through /status.
#include <algorithm>
#include <optional>
#include <set>

#include "http/retry_wait.hpp"
#include "impact/error.hpp"
#include "impact/wes.hpp"
#include "wes/pacer.hpp"

namespace impact::wes {

void sleep_for(std::chrono::milliseconds d) { http::detail::wait_interruptibly(d); }

// The highest code wins: a failure (10-14) outranks a state outside the spec (9), which outranks a wait
// that timed out on runs still going (8), which outranks success (0).
int WaitResult::exit_code() const {
  int code = timed_out ? exit_code::pending : exit_code::ok;
  for (const auto& [id, state] : runs) code = std::max(code, exit_code_for(state));
  return code;
}

namespace {

// One polling round: the current state of every run not yet final. Returns the number of requests.
int poll(Client& client, std::vector<std::pair<std::string, State>>& now, const WaitOptions& opts) {
  std::set<std::string> pending;
  for (const auto& [id, s] : now)
    if (!stops_wait(s)) pending.insert(id);
  int requests = 0;
  auto assign = [&](const std::string& id, State s) {
    for (auto& [rid, st] : now)
      if (rid == id) st = s;
  };
  if (pending.size() >= opts.list_threshold) {
    std::set<std::string> left = pending;
    ListOptions lo{1000, opts.list_pages};
    client.list(
        [&](const RunSummary& s) {
          if (left.erase(s.run_id)) assign(s.run_id, s.state);
          return !left.empty();
        },
        lo);
    ++requests;  // pages after the first are bounded by list_pages
    pending = left;
  }
  for (const auto& id : pending) {
    assign(id, client.status(id));
    ++requests;
  }
  return requests;
}

}  // namespace

WaitResult wait(Client& client, const std::vector<std::string>& run_ids, const WaitOptions& opts,
                WaitObserver* observer) {
  return wait_with([&](std::vector<std::pair<std::string, State>>& now) { return poll(client, now, opts); }, run_ids,
                   opts, observer);
}

WaitResult wait_with(const PollRound& poll_round, const std::vector<std::string>& ids, const WaitOptions& opts,
                     WaitObserver* observer) {
  WaitResult result;
  for (const auto& id : ids) result.runs.emplace_back(id, State::unknown);
  detail::Pacer pacer(opts);
  int failed_rounds = 0;
  std::optional<Error> last_failure;  // of the latest round, when it failed
  while (true) {
    auto before = result.runs;
    try {
      result.requests += poll_round(result.runs);
      failed_rounds = 0;
      last_failure.reset();
    } catch (const Error& e) {
      const bool passing = e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout ||
                           e.kind() == ErrorKind::server || e.kind() == ErrorKind::rate_limited;
      if (!passing || ++failed_rounds >= opts.max_failed_rounds) throw;
      last_failure = e;
      if (observer) observer->on_problem(e.what());
    }
    bool changed = false;
    for (std::size_t i = 0; i < result.runs.size(); ++i) {
      if (result.runs[i].second == before[i].second) continue;
      changed = true;
      if (observer) observer->on_state(result.runs[i].first, before[i].second, result.runs[i].second);
    }
    if (observer) observer->on_round(result.runs);
    if (std::all_of(result.runs.begin(), result.runs.end(), [](const auto& r) { return stops_wait(r.second); }))
      return result;
    if (!pacer.pause(changed)) {
      // Out of time while the service does not answer: the runs' states are not known, so this is the
      // failure to reach it, not "still running" (a run may well have ended).
      if (last_failure) {
        Error e(last_failure->kind(),
                std::string("the wait ran out of time while the service could not be reached (") + last_failure->what() +
                    "): the state of the runs is unknown",
                "check that the service is up and reachable from here");
        if (auto st = last_failure->http_status()) e.with_status(*st);
        throw e.with_url(last_failure->url()).with_phase(last_failure->phase());
      }
      result.timed_out = true;
      return result;
    }
  }
}

}  // namespace impact::wes
