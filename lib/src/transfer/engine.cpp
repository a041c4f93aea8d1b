// The download engine's run: plan every source, then feed their missing parts to one http::Batch (requests
// made as places come free), finish each job as its last part ends, and fetch again once what a source with
// a renewable URL had refused.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/cancel.hpp"
#include "transfer/job.hpp"

namespace impact::transfer {
namespace {

// Socket reads per transfer: 8 times libcurl's default cuts the system calls of a large download by as much;
// 64 transfers in flight hold at most 24 MiB with the write buffer (small objects need far less).
constexpr std::uint64_t kReceiveBuffer = 128u << 10;

struct Item {
  Job* job;
  std::size_t part;
};

struct Run {
  const http::Options& http;
  const Options& options;
  Observer* observer;
  std::optional<SafeDir> root;
  std::vector<std::unique_ptr<Job>> jobs;
  Summary summary;
  bool cancelled = false;
};

bool needs_range(const Job& j, const Part& p) { return j.grid() || p.first > 0; }

void plan_all(Run& run, std::vector<Source>& sources) {
  run.summary.results.resize(sources.size());
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    auto j = plan_job(std::move(sources[i]), i, run.root, run.options, run.summary.results[i]);
    if (!j) {
      if (run.observer) run.observer->on_item(run.summary.results[i]);
      continue;
    }
    for (const auto& p : j->parts) bytes += p.done || !j->size_known ? 0 : p.length();
    j->group = run.jobs.size() + 1;
    run.jobs.push_back(std::move(j));
  }
  if (run.observer) run.observer->on_plan(run.jobs.size(), bytes);
}

// Counts each job's missing parts; a job with none (all on disk already, or empty) is verified now.
void count_pending(Run& run) {
  for (auto& j : run.jobs) {
    j->pending = static_cast<std::size_t>(std::count_if(j->parts.begin(), j->parts.end(), [](const Part& p) { return !p.done; }));
    if (j->pending != 0) continue;
    try {
      open_temp(*j);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      fail(*j, e);
    }
    finish(*j, run.observer);
  }
}

void part_processed(Run& run, Job& j) {
  if (--j.pending == 0) finish(j, run.observer);
}

// The request for one part: the file is opened and the source's request made just before each attempt
// starts (a signature stays fresh however long the queue).
http::Request make_request(Run& run, Item it) {
  Job* j = it.job;
  Part* p = &j->parts[it.part];
  const auto range = needs_range(*j, *p) ? std::optional(Range(p->first, p->last)) : std::nullopt;
  http::Request req;
  if (j->grid()) req.group = j->group;
  req.receive_buffer = static_cast<std::size_t>(std::min<std::uint64_t>(p->length(), kReceiveBuffer));
  req.prepare = [j, p, range](http::Request& r) {
    // Another part of the object failed before this one started: the object is lost for this run.
    if (j->failed()) throw Error(ErrorKind::generic, "not fetched");
    open_temp(*j);
    http::Request made = j->src.request(range);
    r.method = made.method;
    r.url = std::move(made.url);
    r.headers = std::move(made.headers);
    r.server_url = made.server_url;
    if (j->src.filter) p->filter = j->src.filter(range);
  };
  Observer* obs = run.observer;
  req.sink = [j, p, obs](std::string_view chunk) {
    if (p->filter) {
      p->filtered.clear();
      p->filter->update(chunk, p->filtered);
      chunk = p->filtered;
      if (chunk.empty()) return;
    }
    write_part(*j, *p, chunk);
    if (obs) obs->on_bytes(chunk.size());
  };
  req.on_retry = [j, p, obs] {
    if (obs) obs->on_rewind(p->received);
    j->fetched -= p->received;
    p->received = 0;
    std::string().swap(p->pending);
    p->done = false;
    if (j->inline_hash) j->inline_hash->reset();
  };
  return req;
}

// Whether a refusal may be an expired URL the source can renew (asked once per source).
bool may_renew(const Job& j, const http::Response& r) {
  return (r.status == 401 || r.status == 403) && j.src.renew && !j.renew_asked;
}

// What a response says about one part; false when the part waits for a renewed URL.
bool check_response(Job& j, Part& part, const http::Response& r, Observer* observer) {
  const bool ranged = needs_range(j, part);
  if (may_renew(j, r)) {
    part.renew = true;
    try {
      http::throw_for_status(r, "downloading " + j.src.id);
    } catch (const Error&) {
      j.refusal = std::current_exception();
    }
    return false;
  }
  if (j.src.inspect)
    for (auto& [algo, value] : j.src.inspect(r, !ranged)) j.declared.emplace(algo, value);
  if (!r.ok()) http::throw_for_status(r, "downloading " + j.src.id);
  if (ranged && r.status != 206 && j.parts.size() > 1) {
    j.discard = !j.grid();
    return fail(j, "the server ignored the Range header", "download it in one piece (a part size larger than the object)"), true;
  }
  if (part.filter) {
    part.filtered.clear();
    part.filter->finish(part.filtered);
    if (!part.filtered.empty()) write_part(j, part, part.filtered);
    if (observer) observer->on_bytes(part.filtered.size());
    part.filter.reset();
    std::string().swap(part.filtered);
  }
  end_part(j, part);
  if (j.size_known && part.received != part.length())
    return fail(j, fmt::format("truncated: received {} of {} bytes", part.received, part.length()), "run the command again"), true;
  part.done = true;
  return true;
}

// A server that ignored the Range asking for the rest after a kept prefix: the object is fetched again in
// one piece, from byte 0, in the next round (once).
bool restart_whole(Job& j, Observer* observer) {
  if (!j.overflowed || j.grid() || j.parts.size() != 2 || j.restarted) return false;
  if (observer) observer->on_rewind(j.parts[1].received);
  close_fd(j);
  j.inline_hash.reset();
  j.fetched = 0;
  j.first_open = 0;
  j.published = 0;
  Part whole;
  whole.last = j.size - 1;
  whole.renew = true;
  j.parts = {whole};
  j.result.resumed = false;
  j.overflowed = j.discard = false;
  j.restarting = j.restarted = true;
  return true;
}

// Records the outcome of one part's request; false when the part waits for another round.
bool check_outcome(Job& j, Part& part, http::Outcome& out, Observer* observer) {
  try {
    if (out.error) std::rethrow_exception(out.error);
    return check_response(j, part, *out.response, observer);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    if (restart_whole(j, observer)) return false;
    fail(j, e);
  } catch (const std::exception& e) {
    fail(j, e.what());
  }
  return true;
}

// Fetches `items` in one batch; each job is finished as its last part is processed.
void fetch(Run& run, std::vector<Item> items) {
  std::size_t cursor = 0;  // one request per item, in order: request index = item index
  http::Batch::Feed feed;
  feed.next = [&]() -> std::optional<http::Request> {
    if (cursor == items.size()) return std::nullopt;
    return make_request(run, items[cursor++]);
  };
  feed.done = [&](std::size_t index, http::Outcome outcome) {
    const Item& it = items.at(index);
    try {
      if (!check_outcome(*it.job, it.job->parts[it.part], outcome, run.observer)) return;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::cancelled) throw;
      run.cancelled = true;  // Ctrl-C: the batch is winding down; what was finished stays
      return;
    }
    part_processed(run, *it.job);
  };
  http::Batch batch(run.http, fitting_parallel(std::min(run.options.parallel, kMaxParallel)), kPartsInFlight);
  batch.run(std::move(feed));
}

// Whether a source renews its refused URL (once); fails the job when it cannot.
bool renew(Job& j) {
  j.renew_asked = true;
  try {
    if (!j.failed() && j.src.renew()) return true;
    if (j.refusal) std::rethrow_exception(j.refusal);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    fail(j, e);
  }
  return false;
}

// The parts to fetch in the next round: those refused with 401/403 by sources that renewed their URL (the
// others fail), and objects restarted from byte 0.
std::vector<Item> next_round(Run& run) {
  std::vector<Item> items;
  for (auto& j : run.jobs) {
    std::vector<std::size_t> refused;
    for (std::size_t i = 0; i < j->parts.size(); ++i)
      if (j->parts[i].renew) refused.push_back(i);
    if (refused.empty()) continue;
    const bool renewed = j->restarting || renew(*j);
    j->restarting = false;
    for (auto i : refused) {
      j->parts[i].renew = false;
      if (renewed) items.push_back({j.get(), i});
      else part_processed(run, *j);
    }
  }
  return items;
}

// Interrupted: what was finished is in place; a partial file in ranged parts stays with its state for the
// next run to resume, any other goes (a run killed outright leaves it, and the next run continues it).
[[noreturn]] void wind_down(Run& run) {
  for (auto& j : run.jobs) {
    if (j->pending == 0) continue;
    close_fd(*j);
    if (!j->grid() && j->own_temp) j->root->remove(j->temp);
  }
  throw Error(ErrorKind::cancelled, "interrupted");
}

}  // namespace

std::string_view to_string(Result::Status s) noexcept {
  static constexpr std::string_view names[] = {"downloaded", "skipped", "failed"};
  return names[static_cast<int>(s)];
}

void to_json(nlohmann::json& j, const Result& r) {
  j = {{"path", r.path}, {"size", r.size}, {"status", to_string(r.status)}, {"verified", r.verified}, {"resumed", r.resumed}};
  if (!r.error.empty()) j["error"] = r.error;
  if (r.status == Result::Status::failed) j["kind"] = impact::to_string(r.error_kind);
  if (!r.hint.empty()) j["hint"] = r.hint;
}

std::size_t Summary::count(Result::Status s) const {
  return static_cast<std::size_t>(std::count_if(results.begin(), results.end(), [s](const Result& r) { return r.status == s; }));
}

Summary download(std::vector<Source> sources, const http::Options& http, const Options& options, Observer* observer) {
  const auto started = std::chrono::steady_clock::now();
  Run run{http, options, observer, std::nullopt, {}, {}, false};
  plan_all(run, sources);
  count_pending(run);
  std::vector<Item> items;
  for (auto& j : run.jobs)
    for (std::size_t i = 0; i < j->parts.size(); ++i)
      if (!j->parts[i].done) items.push_back({j.get(), i});
  // The second round fetches what was refused because a URL had expired (with the renewed URL), and objects
  // whose kept prefix the server would not continue (from byte 0).
  for (int round = 0; round < 2 && !items.empty() && !run.cancelled; ++round) {
    fetch(run, std::move(items));
    if (run.cancelled || cancel_requested()) wind_down(run);
    items = next_round(run);
  }
  for (auto& j : run.jobs) {
    run.summary.results[j->index] = j->result;
    if (j->result.status == Result::Status::downloaded) run.summary.bytes += j->fetched;
  }
  run.summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return run.summary;
}

}  // namespace impact::transfer
