// Bounded-parallel transfers over libcurl's multi interface, in the shape of libmamba's downloader: one
// state object per request (`Tracker`), and a run made of named steps — take requests from the feed
// (`top_up`), start what may start (`prepare_next`), let libcurl work and collect finished attempts
// (`update`), settle each of them (`done`: redirect, retry later, or hand the outcome over), and sleep until
// something can happen (`wait`). A pool of at most `max_parallel` easy handles is reused across requests, so
// connections are too.
#include <algorithm>
#include <deque>
#include <map>

#include "curl_easy.hpp"
#include "impact/cancel.hpp"
#include "impact/retry.hpp"
#include "retry_wait.hpp"

namespace impact::http {

using detail::curl_api;

namespace {

// What outlives one run: the bounds, the multi handle and the idle easy handles.
struct Engine {
  Options options;
  std::size_t max_parallel = 1;
  std::size_t max_per_group = 0;
  detail::Multi multi;
  std::vector<detail::Easy> pool;  // idle handles

  detail::Easy take_handle() {
    if (pool.empty()) return detail::Easy{};
    detail::Easy e = std::move(pool.back());
    pool.pop_back();
    return e;
  }
};

// One request from the moment the feed gives it until its outcome is handed over.
struct Tracker {
  Request request;
  std::unique_ptr<detail::Transfer> transfer;  // from the first attempt on
};

// An attempt attached to the multi handle.
struct Slot {
  std::size_t index;
  detail::Easy easy;
};

// A retry that is not due yet.
struct Waiting {
  std::size_t index;
  std::chrono::steady_clock::time_point due;
};

// One Batch::run(Feed): its state and its steps.
class Run {
 public:
  Run(Engine& engine, Batch::Feed& feed)
      : engine_(engine), feed_(feed), lookahead_(std::max<std::size_t>(1, feed.lookahead)) {}
  // Whatever ends the run, no easy handle stays attached to the multi handle.
  ~Run() {
    for (auto& s : active_) {
      curl_api().multi_remove_handle(engine_.multi.get(), s->easy.get());
      engine_.pool.push_back(std::move(s->easy));
    }
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  void loop();

 private:
  void top_up();
  bool idle() const { return queue_.empty() && waiting_.empty() && active_.empty(); }
  void prepare_next();
  bool update();
  bool done(Slot* raw, CURLcode code);
  void wait();
  void abort_all();

  bool group_full(std::size_t i) const;
  bool begin(std::size_t i);
  void start(std::size_t i, detail::Easy easy);
  std::unique_ptr<Slot> detach(Slot* s);
  void give(std::size_t i, Outcome o);
  void give_error(std::size_t i, std::exception_ptr e);
  bool has_room() const { return active_.size() < engine_.max_parallel; }

  Engine& engine_;
  Batch::Feed& feed_;
  const std::size_t lookahead_;
  std::map<std::size_t, Tracker> trackers_;      // taken from the feed, outcome not yet given
  std::size_t taken_ = 0;
  bool exhausted_ = false;
  std::deque<std::size_t> queue_;                // taken, not started
  std::vector<Waiting> waiting_;                 // retries not yet due
  std::vector<std::unique_ptr<Slot>> active_;    // attached to the multi handle
  std::map<std::size_t, std::size_t> in_group_;  // group -> its requests in `active_`
  bool answered_ = false;  // an attempt has ended
  bool rescan_ = true;  // the queue may hold a request that can start: at first, and after a transfer ends
};

void Run::loop() {
  while (true) {
    top_up();
    if (idle()) return;
    if (cancel_requested()) {
      abort_all();
      return;
    }
    prepare_next();
    if (active_.empty() && waiting_.empty()) continue;
    const bool freed = update();  // a slot came free: fill it at once rather than after the next poll
    if (freed && (!queue_.empty() || !exhausted_)) continue;
    wait();
  }
}

// Keeps the queue topped up from the feed.
void Run::top_up() {
  while (!exhausted_ && queue_.size() < lookahead_) {
    // A slow feed waits until every request taken has started and, at first, until one has been answered
    // (so that a request was surely sent before the feed's own).
    if (feed_.slow && (!queue_.empty() || (!active_.empty() && !answered_)) && feed_.slow()) return;
    if (feed_.hold && !trackers_.empty() && feed_.hold()) return;
    std::optional<Request> r = feed_.next();
    if (!r) {
      exhausted_ = true;
      return;
    }
    const std::size_t i = taken_++;
    trackers_.emplace(i, Tracker{std::move(*r), nullptr});
    queue_.push_back(i);
    rescan_ = true;
  }
}

// Starts what may start, up to the bounds: retries that are due first, then queued requests in order,
// passing over those whose group is full.
void Run::prepare_next() {
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < waiting_.size() && has_room();) {
    if (waiting_[k].due <= now && !group_full(waiting_[k].index)) {
      const std::size_t i = waiting_[k].index;
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(k));
      if (begin(i)) start(i, engine_.take_handle());
    } else {
      ++k;
    }
  }
  // Passing over the queued requests of full groups costs a scan of the queue: done only when a place may
  // have come free, not at every wake-up of a large download.
  for (auto it = queue_.begin(); rescan_ && it != queue_.end() && has_room();) {
    if (group_full(*it)) {
      ++it;
      continue;
    }
    const std::size_t i = *it;
    it = queue_.erase(it);
    if (begin(i)) start(i, engine_.take_handle());
  }
  rescan_ = false;
}

// Lets libcurl move the transfers on and settles every attempt that ended. True when a slot came free.
bool Run::update() {
  int running = 0;
  curl_api().multi_perform(engine_.multi.get(), &running);
  int left = 0;
  bool freed = false;
  while (CURLMsg* msg = curl_api().multi_info_read(engine_.multi.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Slot* raw = nullptr;
    curl_api().easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
    if (done(raw, msg->data.result)) freed = true;
  }
  return freed;
}

// One attempt ended: follow a redirect on the same handle, schedule a retry, or hand the outcome over.
// False when the handle went straight on with a redirect.
bool Run::done(Slot* raw, CURLcode code) {
  auto slot = detach(raw);
  answered_ = true;
  const std::size_t i = slot->index;
  detail::Transfer& t = *trackers_.at(i).transfer;
  const auto step = t.finish(slot->easy.get(), code);
  if (step == detail::Transfer::Step::redirect) {
    start(i, std::move(slot->easy));
    return false;
  }
  engine_.pool.push_back(std::move(slot->easy));
  if (auto pause = detail::retry_wait(t, step, engine_.options.retry)) {
    waiting_.push_back({i, std::chrono::steady_clock::now() + *pause});
  } else if (step == detail::Transfer::Step::failed) {
    give_error(i, t.error());
  } else {
    Outcome o;
    o.response = std::move(t.response());
    give(i, std::move(o));
  }
  return true;
}

// Sleeps until there is socket activity, a retry falls due, or 50 ms pass (to notice Ctrl-C).
void Run::wait() {
  int timeout_ms = 50;
  for (const auto& w : waiting_) {
    if (group_full(w.index)) continue;  // it can start only when one of its group ends: socket activity
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(w.due - std::chrono::steady_clock::now()).count();
    timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, timeout_ms));
  }
  // Nothing in flight and no retry pending: the loop is done (or starts queued work) without waiting.
  if (!active_.empty() || !waiting_.empty()) curl_api().multi_poll(engine_.multi.get(), nullptr, 0, timeout_ms, nullptr);
}

// Ctrl-C: every request not yet answered ends as cancelled.
void Run::abort_all() {
  auto cancelled = [] { return std::make_exception_ptr(Error(ErrorKind::cancelled, "interrupted")); };
  while (!active_.empty()) {
    auto s = detach(active_.back().get());
    engine_.pool.push_back(std::move(s->easy));
    give_error(s->index, cancelled());
  }
  auto queued = std::move(queue_);
  queue_.clear();
  for (auto i : queued) give_error(i, cancelled());
  auto due = std::move(waiting_);
  waiting_.clear();
  for (auto& w : due) give_error(w.index, cancelled());
}

bool Run::group_full(std::size_t i) const {
  const std::size_t g = trackers_.at(i).request.group;
  if (g == 0 || engine_.max_per_group == 0) return false;
  const auto it = in_group_.find(g);
  return it != in_group_.end() && it->second >= engine_.max_per_group;
}

// An attempt begins: the request is prepared (the first attempt and every retry), then set up.
bool Run::begin(std::size_t i) {
  Tracker& tr = trackers_.at(i);
  try {
    if (tr.request.prepare) tr.request.prepare(tr.request);
    if (!tr.transfer)
      tr.transfer = std::make_unique<detail::Transfer>(tr.request, engine_.options, i);
    else
      tr.transfer->restart();
  } catch (...) {
    give_error(i, std::current_exception());
    return false;
  }
  return true;
}

void Run::start(std::size_t i, detail::Easy easy) {
  Tracker& tr = trackers_.at(i);
  try {
    tr.transfer->setup(easy.get());
  } catch (...) {
    engine_.pool.push_back(std::move(easy));
    give_error(i, std::current_exception());
    return;
  }
  auto slot = std::make_unique<Slot>(Slot{i, std::move(easy)});
  curl_api().easy_setopt(slot->easy.get(), CURLOPT_PRIVATE, slot.get());
  curl_api().multi_add_handle(engine_.multi.get(), slot->easy.get());
  if (const std::size_t g = tr.request.group) ++in_group_[g];
  active_.push_back(std::move(slot));
}

std::unique_ptr<Slot> Run::detach(Slot* s) {
  curl_api().multi_remove_handle(engine_.multi.get(), s->easy.get());
  if (const std::size_t g = trackers_.at(s->index).request.group) --in_group_[g];
  rescan_ = true;
  auto it = std::find_if(active_.begin(), active_.end(), [&](const auto& p) { return p.get() == s; });
  auto owned = std::move(*it);
  active_.erase(it);
  return owned;
}

void Run::give(std::size_t i, Outcome o) {
  trackers_.erase(i);
  feed_.done(i, std::move(o));
}

void Run::give_error(std::size_t i, std::exception_ptr e) {
  Outcome o;
  o.error = std::move(e);
  give(i, std::move(o));
}

}  // namespace

struct Batch::Impl {
  Engine engine;
};

Batch::Batch(Options options, std::size_t max_parallel, std::size_t max_per_group)
    : impl_(std::make_unique<Impl>()) {
  Engine& e = impl_->engine;
  e.options = std::move(options);
  e.max_parallel = std::max<std::size_t>(1, max_parallel);
  e.max_per_group = max_per_group;
  curl_api().multi_setopt(e.multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(e.max_parallel));
}
Batch::~Batch() = default;

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
  Run r(impl_->engine, feed);
  r.loop();
}

}  // namespace impact::http
