// Bounded-parallel transfers over libcurl's multi interface (the shape of curl's 10-at-a-time example):
// a pool of at most `max_parallel` easy handles, reused across requests so connections are too, each
// request with its own retry state.
#include <algorithm>
#include <deque>
#include <map>

#include "curl_easy.hpp"
#include "impact/cancel.hpp"
#include "impact/retry.hpp"
#include "retry_wait.hpp"

namespace impact::http {

struct Batch::Impl {
  Options options;
  std::size_t max_parallel;
  std::size_t max_per_group;
  detail::Multi multi;
  std::vector<detail::Easy> pool;  // idle handles
};

Batch::Batch(Options options, std::size_t max_parallel, std::size_t max_per_group)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->max_parallel = std::max<std::size_t>(1, max_parallel);
  impl_->max_per_group = max_per_group;
  curl_multi_setopt(impl_->multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(impl_->max_parallel));
}
Batch::~Batch() = default;

namespace {
struct Slot {
  std::size_t index;
  detail::Easy easy;
};
struct Waiting {
  std::size_t index;
  std::chrono::steady_clock::time_point due;
};
}  // namespace

std::vector<Outcome> Batch::run(std::vector<Request> requests) {
  std::vector<Outcome> out(requests.size());
  std::size_t taken = 0;
  Feed feed;
  feed.next = [&]() -> std::optional<Request> {
    if (taken == requests.size()) return std::nullopt;
    return std::move(requests[taken++]);
  };
  feed.done = [&](std::size_t i, Outcome o) { out[i] = std::move(o); };
  feed.lookahead = std::max<std::size_t>(requests.size(), 1);  // all of them: they are in memory anyway
  run(std::move(feed));
  return out;
}

void Batch::run(Feed feed) {
  struct Entry {
    Request request;
    std::unique_ptr<detail::Transfer> transfer;  // from the first attempt on
  };
  std::map<std::size_t, Entry> entries;          // taken from the feed, outcome not yet given
  std::size_t taken = 0;
  bool exhausted = false;
  std::deque<std::size_t> queue;                 // taken, not started
  std::vector<Waiting> waiting;                  // retries not yet due
  std::vector<std::unique_ptr<Slot>> active;     // attached to the multi handle
  std::map<std::size_t, std::size_t> in_group;   // group -> its requests in `active`
  bool rescan = true;  // the queue may hold a request that can start: at first, and after a transfer ends
  CURLM* m = impl_->multi.get();
  const std::size_t lookahead = std::max<std::size_t>(1, feed.lookahead);

  // Whatever ends the run, no easy handle stays attached to the multi handle.
  struct Detacher {
    CURLM* m;
    std::vector<std::unique_ptr<Slot>>& active;
    std::vector<detail::Easy>& pool;
    ~Detacher() {
      for (auto& s : active) {
        curl_multi_remove_handle(m, s->easy.get());
        pool.push_back(std::move(s->easy));
      }
      active.clear();
    }
  } detacher{m, active, impl_->pool};

  auto group_full = [&](std::size_t i) {
    const std::size_t g = entries.at(i).request.group;
    if (g == 0 || impl_->max_per_group == 0) return false;
    const auto it = in_group.find(g);
    return it != in_group.end() && it->second >= impl_->max_per_group;
  };
  auto give = [&](std::size_t i, Outcome o) {
    entries.erase(i);
    feed.done(i, std::move(o));
  };
  auto give_error = [&](std::size_t i, std::exception_ptr e) {
    Outcome o;
    o.error = std::move(e);
    give(i, std::move(o));
  };
  auto take_handle = [&]() {
    if (!impl_->pool.empty()) {
      detail::Easy e = std::move(impl_->pool.back());
      impl_->pool.pop_back();
      return e;
    }
    return detail::Easy{};
  };
  // An attempt begins: the request is prepared (the first attempt and every retry), then set up.
  auto begin = [&](std::size_t i) {
    Entry& e = entries.at(i);
    try {
      if (e.request.prepare) e.request.prepare(e.request);
      if (!e.transfer)
        e.transfer = std::make_unique<detail::Transfer>(e.request, impl_->options, i);
      else
        e.transfer->restart();
    } catch (...) {
      give_error(i, std::current_exception());
      return false;
    }
    return true;
  };
  auto start = [&](std::size_t i, detail::Easy easy) {
    Entry& e = entries.at(i);
    try {
      e.transfer->setup(easy.get());
    } catch (...) {
      impl_->pool.push_back(std::move(easy));
      give_error(i, std::current_exception());
      return;
    }
    auto slot = std::make_unique<Slot>(Slot{i, std::move(easy)});
    curl_easy_setopt(slot->easy.get(), CURLOPT_PRIVATE, slot.get());
    curl_multi_add_handle(m, slot->easy.get());
    if (const std::size_t g = e.request.group) ++in_group[g];
    active.push_back(std::move(slot));
  };
  auto detach = [&](Slot* s) {
    curl_multi_remove_handle(m, s->easy.get());
    if (const std::size_t g = entries.at(s->index).request.group) --in_group[g];
    rescan = true;
    auto it = std::find_if(active.begin(), active.end(), [&](const auto& p) { return p.get() == s; });
    auto owned = std::move(*it);
    active.erase(it);
    return owned;
  };
  auto abort_all = [&]() {
    auto cancelled = [] { return std::make_exception_ptr(Error(ErrorKind::cancelled, "interrupted")); };
    while (!active.empty()) {
      auto s = detach(active.back().get());
      impl_->pool.push_back(std::move(s->easy));
      give_error(s->index, cancelled());
    }
    auto queued = std::move(queue);
    queue.clear();
    for (auto i : queued) give_error(i, cancelled());
    auto due = std::move(waiting);
    waiting.clear();
    for (auto& w : due) give_error(w.index, cancelled());
  };

  while (true) {
    // Keep the queue topped up from the feed.
    while (!exhausted && queue.size() < lookahead) {
      std::optional<Request> r = feed.next();
      if (!r) {
        exhausted = true;
        break;
      }
      const std::size_t i = taken++;
      entries.emplace(i, Entry{std::move(*r), nullptr});
      queue.push_back(i);
      rescan = true;
    }
    if (queue.empty() && waiting.empty() && active.empty()) break;
    if (cancel_requested()) {
      abort_all();
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    // Retries that are due go first, then new requests, up to the bound.
    for (std::size_t k = 0; k < waiting.size() && active.size() < impl_->max_parallel;) {
      if (waiting[k].due <= now && !group_full(waiting[k].index)) {
        const std::size_t i = waiting[k].index;
        waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(k));
        if (begin(i)) start(i, take_handle());
      } else {
        ++k;
      }
    }
    // Passing over the queued requests of full groups costs a scan of the queue: done only when a place
    // may have come free, not at every wake-up of a large download.
    for (auto it = queue.begin(); rescan && it != queue.end() && active.size() < impl_->max_parallel;) {
      if (group_full(*it)) {
        ++it;
        continue;
      }
      const std::size_t i = *it;
      it = queue.erase(it);
      if (begin(i)) start(i, take_handle());
    }
    rescan = false;
    if (active.empty() && waiting.empty()) continue;

    int running = 0;
    curl_multi_perform(m, &running);
    int left = 0;
    bool freed = false;  // a slot came free: fill it at once rather than after the next poll
    while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Slot* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      const CURLcode code = msg->data.result;
      auto slot = detach(raw);
      const std::size_t i = slot->index;
      auto& t = *entries.at(i).transfer;
      const auto step = t.finish(slot->easy.get(), code);
      if (step == detail::Transfer::Step::redirect) {
        start(i, std::move(slot->easy));
        continue;
      }
      impl_->pool.push_back(std::move(slot->easy));
      freed = true;
      Attempt a;
      a.number = t.response().attempts;
      a.idempotent = t.idempotent();
      if (step == detail::Transfer::Step::failed) {
        a.failed_in = t.failed_phase();
        if (a.failed_in != NetPhase::none) {
          auto d = decide_retry(impl_->options.retry, a, std::chrono::system_clock::now(), detail::retry_rng());
          if (d.retry) {
            waiting.push_back({i, std::chrono::steady_clock::now() + d.wait});
            continue;
          }
        }
        give_error(i, t.error());
      } else {
        a.status = t.response().status;
        a.retry_after = t.response().header("Retry-After");
        auto d = decide_retry(impl_->options.retry, a, std::chrono::system_clock::now(), detail::retry_rng());
        if (d.retry) {
          waiting.push_back({i, std::chrono::steady_clock::now() + d.wait});
          continue;
        }
        Outcome o;
        o.response = std::move(t.response());
        give(i, std::move(o));
      }
    }
    if (freed && (!queue.empty() || !exhausted)) continue;
    // Sleep until there is socket activity, a retry falls due, or 50 ms pass (to notice Ctrl-C).
    int timeout_ms = 50;
    for (const auto& w : waiting) {
      if (group_full(w.index)) continue;  // it can start only when one of its group ends: socket activity
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(w.due - std::chrono::steady_clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, timeout_ms));
    }
    // Nothing in flight and no retry pending: the loop is done (or starts queued work) without waiting.
    if (!active.empty() || !waiting.empty()) curl_multi_poll(m, nullptr, 0, timeout_ms, nullptr);
  }
}

}  // namespace impact::http
