// The WES client: API root discovery, paging, tasks with the inline fallback, and exactly-once submission.
#include <set>

#include <fmt/format.h>

#include "http/retry_wait.hpp"
#include "impact/error.hpp"
#include "impact/url.hpp"
#include "impact/wes.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::wes {
namespace {

constexpr std::string_view kApiRoot = "/ga4gh/wes/v1";

nlohmann::json body_json(const http::Response& r) {
  auto j = impact::detail::parse_json(r.body);
  return j.is_discarded() ? nlohmann::json() : j;
}

// The status a server meant: some answer client errors with 500 and the real code in the body
// ({msg, status_code} or {msg, status}).
long meant_status(const http::Response& r) {
  if (r.status < 500) return r.status;
  auto j = body_json(r);
  if (!j.is_object()) return r.status;
  for (const char* k : {"status_code", "status"}) {
    if (auto s = detail::integer_member(j, k); s && *s >= 400 && *s < 500) return static_cast<long>(*s);
  }
  return r.status;
}

void check(const http::Response& r, std::string_view what) {
  if (r.ok()) return;
  http::Response copy = r;
  copy.status = meant_status(r);
  http::throw_for_status(copy, what);
}

bool transient(const Error& e) {
  return e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout;
}

std::string only_engine(const ServiceInfo& info) {
  const auto engines = info.extra.value("workflow_engine_versions", nlohmann::json::object());
  if (engines.is_object() && engines.size() == 1) return engines.begin().key();
  return {};
}

}  // namespace

Client::Client(http::Client& http, std::string base_url, TokenFn token)
    : http_(http), base_(std::move(base_url)), token_(std::move(token)) {
  while (base_.size() > 1 && base_.back() == '/') base_.pop_back();
}

http::Request Client::request(http::Method m, const std::string& path) {
  http::Request r;
  r.method = m;
  r.url = join_url(base_, path);
  r.headers.push_back({"Accept", "application/json"});
  if (token_) r.headers.push_back({"Authorization", "Bearer " + token_()});
  return r;
}

void Client::discover() {
  if (discovered_) return;
  discovered_ = true;
  if (base_.find("/ga4gh/wes/") != std::string::npos) return;
  // Given the server's origin (or a prefix): the spec's root below it answers service-info.
  http::Request r;
  r.url = base_ + std::string(kApiRoot) + "/service-info";
  try {
    auto resp = http_.send(std::move(r));
    auto j = body_json(resp);
    if (resp.ok() && j.is_object() && j.contains("type")) base_ += kApiRoot;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
  }
}

http::Response Client::get_json(const std::string& path, std::string_view what) {
  discover();
  auto r = http_.send(request(http::Method::get, path));
  check(r, what);
  return r;
}

ServiceInfo Client::service_info() {
  discover();
  return fetch_service_info(http_, base_, "WES");
}

void Client::list(const std::function<bool(const RunSummary&)>& visit, const ListOptions& opts) {
  std::string token;
  std::set<std::string> tokens, ids;
  bool sized = true;  // cleared for a server that refuses our page_size: it then picks its own
  for (std::size_t page = 0; page < opts.max_pages; ++page) {
    std::string path = sized ? fmt::format("runs?page_size={}", opts.page_size) : std::string("runs");
    if (!token.empty()) {
      path += sized ? '&' : '?';
      path += "page_token=" + percent_encode(token);
    }
    discover();
    auto r = http_.send(request(http::Method::get, path));
    if (page == 0 && sized && meant_status(r) == 400) {
      sized = false;  // the retry counts as a page: still bounded
      continue;
    }
    check(r, "listing runs");
    auto j = parse_json_body(r, "the WES run list");
    if (!j.is_object() || !j.contains("runs") || !j["runs"].is_array())
      throw Error(ErrorKind::protocol, "the WES run list has no 'runs' array").with_url(r.url);
    bool fresh = false;
    for (const auto& item : j["runs"]) {
      auto s = parse_summary(item);
      if (!ids.insert(s.run_id).second) continue;  // a server that repeats itself
      fresh = true;
      if (!visit(s)) return;
    }
    token = detail::string_member(j, "next_page_token");
    if (token.empty() || !fresh || !tokens.insert(token).second) return;
  }
  throw Error(ErrorKind::protocol, fmt::format("the WES run list did not end after {} pages", opts.max_pages),
              "the service keeps sending new pages; ask its operators");
}

RunLog Client::get(const std::string& run_id) {
  auto r = get_json("runs/" + percent_encode(run_id), "getting run " + run_id);
  auto log = parse_run_log(parse_json_body(r, "the WES run log"));
  if (log.run_id.empty()) log.run_id = run_id;
  return log;
}

State Client::status(const std::string& run_id) {
  auto r = get_json("runs/" + percent_encode(run_id) + "/status", "getting the state of run " + run_id);
  auto j = parse_json_body(r, "the WES run status");
  return parse_state(j.is_object() ? j.value("state", "") : "");
}

std::vector<Log> Client::tasks(const RunLog& run) {
  discover();
  std::vector<Log> out;
  std::string token;
  std::set<std::string> tokens;
  for (int page = 0; page < 1000; ++page) {
    std::string path = "runs/" + percent_encode(run.run_id) + "/tasks?page_size=1000";
    if (!token.empty()) path += "&page_token=" + percent_encode(token);
    auto r = http_.send(request(http::Method::get, path));
    const long s = meant_status(r);
    if (page == 0 && (s == 404 || s == 405 || s == 501 || s == 400)) return run.task_logs;  // a WES 1.0 server
    check(r, "listing the tasks of run " + run.run_id);
    auto j = parse_json_body(r, "the WES task list");
    if (!j.is_object() || !j.contains("task_logs") || !j["task_logs"].is_array()) return run.task_logs;
    for (const auto& t : j["task_logs"]) out.push_back(parse_log(t));
    token = detail::string_member(j, "next_page_token");
    if (token.empty() || !tokens.insert(token).second) break;
  }
  return out;
}

void Client::cancel(const std::string& run_id) {
  discover();
  auto req = request(http::Method::post, "runs/" + percent_encode(run_id) + "/cancel");
  req.retry_safe = true;  // cancelling twice is cancelling once
  check(http_.send(std::move(req)), "cancelling run " + run_id);
}

std::optional<std::string> Client::find_by_request_id(const std::string& id, std::size_t max_runs) {
  std::optional<std::string> found;
  std::vector<std::string> untagged;  // WES 1.0 summaries carry no tags: look at the newest few in full
  std::size_t seen = 0;
  list(
      [&](const RunSummary& s) {
        auto it = s.tags.find(std::string(kRequestIdTag));
        if (it != s.tags.end() && it->second == id) found = s.run_id;
        if (s.tags.empty() && untagged.size() < 20) untagged.push_back(s.run_id);
        return !found && ++seen < max_runs;
      },
      {100, max_runs / 100 + 1});
  for (std::size_t i = 0; !found && i < untagged.size(); ++i) {
    auto tags = get(untagged[i]).tags();
    auto it = tags.find(std::string(kRequestIdTag));
    if (it != tags.end() && it->second == id) found = untagged[i];
  }
  return found;
}

std::string Client::submit(RunRequest rq, const ServiceInfo* info) {
  discover();
  const std::string key(kRequestIdTag);
  if (rq.tags[key].empty()) rq.tags[key] = new_request_id();
  const std::string id = rq.tags[key];
  const std::string lost_hint =
      fmt::format("the run may exist: look for it with: impact run list --tag {}={}", key, id);
  constexpr int kAttempts = 3;
  bool engine_added = false;
  for (int attempt = 1;; ++attempt) {
    auto req = request(http::Method::post, "runs");
    req.form = form_parts(rq);
    http::Response r;
    try {
      r = http_.send(std::move(req));
    } catch (const Error& e) {
      if (!transient(e)) throw;
      // The request may have reached the server: never send it again before looking for it.
      std::optional<std::string> found;
      try {
        found = find_by_request_id(id);
      } catch (const Error& e2) {
        if (e2.kind() == ErrorKind::cancelled) throw;
        throw Error(e.kind(), std::string(e.what()) + "; and the run list cannot be read to check it", lost_hint);
      }
      if (found) return *found;
      if (attempt >= kAttempts) throw Error(e.kind(), e.what(), lost_hint);
      http::detail::wait_interruptibly(std::chrono::milliseconds(500 * attempt));
      continue;
    }
    if (r.ok()) {
      auto j = parse_json_body(r, "the WES submission answer");
      std::string run_id = j.is_object() ? j.value("run_id", "") : "";
      if (run_id.empty()) throw Error(ErrorKind::protocol, "the WES server accepted the run but sent no run_id").with_url(r.url);
      return run_id;
    }
    const long meant = meant_status(r);
    // A server that requires workflow_engine says so in a 400: send the one engine it has.
    if (meant == 400 && rq.engine.empty() && !engine_added && info && text::icontains(r.body, "workflow_engine")) {
      rq.engine = only_engine(*info);
      engine_added = true;
      if (!rq.engine.empty()) continue;
    }
    if (meant >= 500 && attempt < kAttempts) {
      // The server may have created the run before failing; resubmit only when it did not.
      if (auto found = find_by_request_id(id)) return *found;
      http::detail::wait_interruptibly(std::chrono::milliseconds(500 * attempt));
      continue;
    }
    check(r, "submitting the run");
  }
}

std::string Client::fetch_log(const std::string& field) {
  if (!(field.rfind("http://", 0) == 0 || field.rfind("https://", 0) == 0)) return field;  // the content itself
  discover();
  require_allowed_url(field, "the log URL", ErrorKind::protocol);
  http::Request r;
  r.url = field;
  const auto a = Url::parse(field);
  const auto b = Url::parse(base_);
  // The token goes only where the WES API lives; a log on another host (object storage) gets none.
  if (token_ && a && b && same_origin(*a, *b)) r.headers.push_back({"Authorization", "Bearer " + token_()});
  auto resp = http_.send(std::move(r));
  check(resp, "fetching a log");
  return resp.body;
}

}  // namespace impact::wes
