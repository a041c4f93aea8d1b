// The download engine's run: plan the sources batch by batch (the next batch is asked for once the requests
// of the earlier ones have all started), feed their missing parts to one http::Batch (requests made as places
// come free), finish and let go of each job as its last part ends, and fetch again once what a source with a
// renewable URL had refused.
#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <unordered_map>

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
  bool collect;  // keep every result in summary.results (the vector API)
  std::optional<SafeDir> root;
  std::map<std::size_t, std::unique_ptr<Job>> jobs;  // by source index: planned and not yet finished
  std::size_t taken = 0;                             // sources taken from the caller so far
  Summary summary;
  bool cancelled = false;
};

bool needs_range(const Job& j, const Part& p) { return j.grid() || p.first > 0; }

void record(Run& run, const Result& r, std::size_t index) {
  ++run.summary.tally[static_cast<int>(r.status)];
  if (run.collect) run.summary.results[index] = r;
}

// A job's last part was processed: it is verified and placed (or failed), recorded, and let go.
void settle(Run& run, Job& j) {
  finish(j, run.observer);
  record(run, j.result, j.index);
  if (j.result.status == Result::Status::downloaded) run.summary.bytes += j.fetched;
  run.jobs.erase(j.index);
}

// Plans one batch of sources and queues their missing parts; a job with none (all on disk already, or
// empty) is verified now.
void plan_batch(Run& run, std::vector<Source>& sources, std::deque<Item>& queue) {
  std::vector<Job*> planned;
  std::uint64_t bytes = 0;
  for (auto& src : sources) {
    const std::size_t index = run.taken++;
    if (run.collect) run.summary.results.resize(run.taken);
    Result r;
    auto j = plan_job(std::move(src), index, run.root, run.options, r);
    if (!j) {
      record(run, r, index);
      if (run.observer) run.observer->on_item(r);
      continue;
    }
    for (const auto& p : j->parts) bytes += p.done || !j->size_known ? 0 : p.length();
    j->group = index + 1;
    planned.push_back(j.get());
    run.jobs.emplace(index, std::move(j));
  }
  if (run.observer && !planned.empty()) run.observer->on_plan(planned.size(), bytes);
  for (Job* j : planned) {
    j->pending = static_cast<std::size_t>(std::count_if(j->parts.begin(), j->parts.end(), [](const Part& p) { return !p.done; }));
    if (j->pending == 0) {
      try {
        open_temp(*j);
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::cancelled) throw;
        fail(*j, e);
      }
      settle(run, *j);
      continue;
    }
    for (std::size_t i = 0; i < j->parts.size(); ++i)
      if (!j->parts[i].done) queue.push_back({j, i});
  }
}

void part_processed(Run& run, Job& j) {
  if (--j.pending == 0) settle(run, j);
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

// Fetches the parts in `queue`, then those of the batches `more` gives (each asked for once the queue has
// gone out); each job is finished as its last part is processed.
void fetch(Run& run, std::deque<Item> queue, SourceStream* more) {
  std::unordered_map<std::size_t, Item> taken;  // request index -> its part
  std::size_t next_index = 0;
  bool ended = more == nullptr;
  http::Batch::Feed feed;
  std::exception_ptr stopped;  // the caller's batches failed (a listing page, Ctrl-C while listing)
  feed.next = [&]() -> std::optional<http::Request> {
    while (queue.empty() && !ended) {
      try {
        auto batch = (*more)();
        if (!batch) ended = true;
        else plan_batch(run, *batch, queue);
      } catch (...) {
        stopped = std::current_exception();  // what is in flight finishes first
        ended = true;
      }
    }
    if (queue.empty()) return std::nullopt;
    const Item it = queue.front();
    queue.pop_front();
    taken.emplace(next_index++, it);
    return make_request(run, it);
  };
  feed.slow = [&] { return queue.empty() && !ended; };
  feed.done = [&](std::size_t index, http::Outcome outcome) {
    const auto found = taken.find(index);
    const Item it = found->second;
    taken.erase(found);
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
  if (!stopped) return;
  try {
    std::rethrow_exception(stopped);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::cancelled) throw;
    run.cancelled = true;  // wound down like a Ctrl-C during the transfers
  }
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
std::deque<Item> next_round(Run& run) {
  std::deque<Item> items;
  for (auto next = run.jobs.begin(); next != run.jobs.end();) {
    Job* j = (next++)->second.get();  // part_processed may let the job go
    std::vector<std::size_t> refused;
    for (std::size_t i = 0; i < j->parts.size(); ++i)
      if (j->parts[i].renew) refused.push_back(i);
    if (refused.empty()) continue;
    const bool renewed = j->restarting || renew(*j);
    j->restarting = false;
    for (auto i : refused) {
      j->parts[i].renew = false;
      if (renewed) items.push_back({j, i});
      else part_processed(run, *j);
    }
  }
  return items;
}

// Interrupted: what was finished is in place; a partial file in ranged parts stays with its state for the
// next run to resume, any other goes (a run killed outright leaves it, and the next run continues it).
[[noreturn]] void wind_down(Run& run) {
  for (auto& [index, j] : run.jobs) {
    if (j->pending == 0) continue;
    close_fd(*j);
    if (!j->grid() && j->own_temp) j->root->remove(j->temp);
  }
  throw Error(ErrorKind::cancelled, "interrupted");
}

Summary run_download(SourceStream next_batch, const http::Options& http, const Options& options, Observer* observer,
                     bool collect) {
  const auto started = std::chrono::steady_clock::now();
  Run run{http, options, observer, collect, std::nullopt, {}, 0, {}, false};
  // The second round fetches what was refused because a URL had expired (with the renewed URL), and objects
  // whose kept prefix the server would not continue (from byte 0).
  fetch(run, {}, &next_batch);
  if (run.cancelled || cancel_requested()) wind_down(run);
  if (auto items = next_round(run); !items.empty()) {
    fetch(run, std::move(items), nullptr);
    if (run.cancelled || cancel_requested()) wind_down(run);
  }
  // What is left would need a third round: failed (never counted as downloaded), its parts kept for a resume.
  for (auto& [index, j] : run.jobs) {
    if (!j->failed())
      fail(*j, "some of its parts were refused again after a second try", "run the same command again to resume",
           ErrorKind::network);
    close_fd(*j);
    record(run, j->result, index);
    if (run.observer) run.observer->on_item(j->result);
  }
  run.summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return run.summary;
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

Summary download(SourceStream next_batch, const http::Options& http, const Options& options, Observer* observer) {
  return run_download(std::move(next_batch), http, options, observer, false);
}

Summary download(std::vector<Source> sources, const http::Options& http, const Options& options, Observer* observer) {
  bool given = false;
  SourceStream once = [&]() -> std::optional<std::vector<Source>> {
    if (given) return std::nullopt;
    given = true;
    return std::move(sources);
  };
  return run_download(std::move(once), http, options, observer, true);
}

}  // namespace impact::transfer
