// The WES client: API root discovery, paging, tasks with the inline fallback, and exactly-once submission.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "api_request.hpp"
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
  try {
    http::throw_for_status(copy, what);
  } catch (const Error& e) {
    // The HTTP layer reads JSON and plain-text reasons; a server that answers in HTML or without a
    // Content-Type still has its reason shown.
    const std::string reason = server_reason(r);
    if (reason.empty() || std::string_view(e.what()).find(reason) != std::string_view::npos) throw;
    std::string hint = e.hint();
    if (e.kind() == ErrorKind::server) hint = "the WES server gave this reason; tell its operators if it is unclear";
    Error more(e.kind(), std::string(e.what()) + ": " + reason, hint);
    if (e.http_status()) more.with_status(*e.http_status());
    if (e.kind() != ErrorKind::server) more.with_remedy(e.remedy());
    throw more.with_url(r.url);
  }
}

// A refusal with the server's own reason, sanitised (server_reason), whatever the body's media type.
[[noreturn]] void refused(const http::Response& r, std::string_view what) {
  try {
    check(r, what);
  } catch (const Error& e) {
    const std::string reason = server_reason(r);
    const long status = meant_status(r);
    if (reason.empty()) throw;
    throw Error(e.kind(), fmt::format("{} failed: HTTP {}: {}", what, status, reason), e.hint())
        .with_status(status)
        .with_url(r.url)
        .with_remedy(e.remedy());
  }
  throw Error(ErrorKind::protocol, std::string(what) + " failed");  // not reached: check() throws for a refusal
}

bool transient(const Error& e) {
  return e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout;
}

}  // namespace

// Recognised by its WES fields too: WES 1.0 service-info has no GA4GH `type`.
Client::Client(http::Client& http, std::string base_url, TokenFn token)
    : impact::detail::ApiClient(http, std::move(base_url), std::move(token), kApiRoot,
                [](const nlohmann::json& j) { return looks_like_wes_service_info(j); }) {}

http::Response Client::get_json(const std::string& path, std::string_view what) {
  discover();
  auto r = http_.send(request(http::Method::get, path));
  check(r, what);
  return r;
}

ServiceInfo Client::service_info() {
  discover();
  return fetch_service_info(http_, base_, "WES", ServiceKind::wes);
}

bool Client::list(const std::function<bool(const RunSummary&)>& visit, const ListOptions& opts) {
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
    if (j.is_array()) j = {{"runs", j}};  // a server that answers the bare list
    if (!j.is_object() || !j.contains("runs") || !j["runs"].is_array())
      throw Error(ErrorKind::protocol, "the WES run list has no 'runs' array").with_url(r.url);
    bool fresh = false;
    for (const auto& item : j["runs"]) {
      auto s = parse_summary(item);
      if (!ids.insert(s.run_id).second) continue;  // a server that repeats itself
      fresh = true;
      if (!visit(s)) return false;
    }
    token = detail::string_member(j, "next_page_token");
    if (token.empty() || !fresh || !tokens.insert(token).second) return true;
  }
  return false;
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
  if (j.is_string()) return parse_state(j.get<std::string>());  // a server that answers the bare name
  return parse_state(j.is_object() ? detail::string_member(j, "state") : "");
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
    if (page == 0 && r.ok() && !body_json(r).is_object()) return run.task_logs;  // an HTML page, not a task list
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

RunSnapshot Client::snapshot() {
  RunSnapshot snap;
  const auto deadline = std::chrono::steady_clock::now() + kLookupTime;
  try {
    list(
        [&](const RunSummary& s) {
          snap.ids.insert(s.run_id);
          return std::chrono::steady_clock::now() < deadline;
        },
        {1000, kLookupListPages});
    snap.listed = true;  // a list cut short by the bound is still a list: the runs past it get read later
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    snap.ids.clear();  // no list (a server that refuses GET /runs): a lost answer then cannot be settled
  }
  return snap;
}

Lookup Client::find_by_request_id(const std::string& id, const RunSnapshot* before) {
  const auto deadline = std::chrono::steady_clock::now() + kLookupTime;
  const std::string key(kRequestIdTag);
  Lookup out;
  std::vector<std::string> unread;  // new runs whose list entry shows no tags
  bool ended = false;
  try {
    ended = list(
        [&](const RunSummary& s) {
          if (before && before->ids.count(s.run_id)) return true;
          if (s.tags_known && !s.tags.empty()) {  // every impact run has tags: empty ones say nothing
            auto it = s.tags.find(key);
            if (it != s.tags.end() && it->second == id) {
              out.outcome = Lookup::found;
              out.run_id = s.run_id;
              return false;
            }
          } else {
            unread.push_back(s.run_id);
          }
          return unread.size() <= kLookupReads && std::chrono::steady_clock::now() < deadline;
        },
        {1000, kLookupListPages});
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    out.why = std::string("the run list cannot be read: ") + e.what();
    return out;
  }
  if (out.outcome == Lookup::found) return out;
  if (unread.size() > kLookupReads) {
    out.why = fmt::format("more than {} new runs would have to be read one by one", kLookupReads);
    return out;
  }
  if (!ended) {
    out.why = fmt::format("the run list did not end within {} pages or {} s", kLookupListPages, kLookupTime.count());
    return out;
  }
  std::string unreadable;
  for (const auto& run_id : unread) {
    if (std::chrono::steady_clock::now() >= deadline) {
      out.why = fmt::format("reading the new runs took more than {} s", kLookupTime.count());
      return out;
    }
    try {
      const auto tags = get(run_id).tags();
      auto it = tags.find(key);
      if (it != tags.end() && it->second == id) {
        out.outcome = Lookup::found;
        out.run_id = run_id;
        return out;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      if (unreadable.empty()) unreadable = fmt::format("run {} cannot be read: {}", run_id, e.what());
    }
  }
  if (!unreadable.empty()) {
    out.why = unreadable;
    return out;
  }
  out.outcome = Lookup::absent;
  return out;
}

std::string Client::submit(RunRequest rq, const ServiceInfo* info, const RunSnapshot* before) {
  discover();
  const std::string key(kRequestIdTag);
  if (rq.tags[key].empty()) rq.tags[key] = new_request_id();
  const std::string id = rq.tags[key];
  RunSnapshot own;
  if (before == nullptr) {
    own = snapshot();
    before = &own;
  }
  // After a lost answer or a 5xx: was the run made? Throws when that cannot be told.
  auto look = [&](const std::string& what_happened, ErrorKind kind) -> Lookup {
    if (!before->listed) {
      throw Error(kind, what_happened + "; impact cannot tell whether the run was created: the server's run list cannot be read")
          .with_remedy(Remedy::run_list_tag)
          .with_fact("tag", key)
          .with_fact("value", id);
    }
    auto l = find_by_request_id(id, before);
    if (l.outcome == Lookup::undecided)
      throw Error(kind, what_happened + "; impact cannot tell whether the run was created: " + l.why)
          .with_remedy(Remedy::run_list_tag)
          .with_fact("tag", key)
          .with_fact("value", id);
    return l;
  };
  constexpr int kAttempts = 3;
  std::vector<Adjustment::Kind> adjusted;  // at most one of each kind: the loop stays bounded
  for (int attempt = 1;; ++attempt) {
    auto req = request(http::Method::post, "runs");
    req.form = form_parts(rq);
    http::Response r;
    try {
      r = http_.send(std::move(req));
    } catch (const Error& e) {
      if (!transient(e)) throw;
      // The request may have reached the server: never send it again before looking for it.
      auto l = look(e.what(), e.kind());
      if (l.outcome == Lookup::found) return l.run_id;
      if (attempt >= kAttempts)
        throw Error(e.kind(), std::string(e.what()) + " (the run was not created)", "try again later");
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
    // A refusal that asks for a different request shape (an engine, no WES 1.1 fields, a run_dir tag, a
    // file: URL) is answered by one resubmission per kind of change: the server created no run.
    if (auto adj = adjust_after_refusal(rq, meant, server_reason(r), info, adjusted)) {
      adjusted.push_back(adj->kind);
      rq = std::move(adj->request);
      if (on_adjustment_) on_adjustment_(adj->note);
      --attempt;
      continue;
    }
    if (meant >= 500) {
      // Refusal or a crash after the run was made? Look for the run among the new ones. Found: it was
      // made. Undecided (WESkit makes a run before refusing a forbidden engine parameter with a 500, and
      // that run cannot be read): say so, with the server's reason. Surely absent: nothing was made, so
      // sending again cannot make two runs; a server failing now and then gets its retries, one that
      // refuses for good has its reason shown after the last.
      const std::string reason = server_reason(r);
      std::string happened = fmt::format("submitting the run failed: HTTP {}", r.status);
      if (!reason.empty()) happened += ": " + reason;
      auto l = look(happened, ErrorKind::server);
      if (l.outcome == Lookup::found) return l.run_id;
      if (attempt < kAttempts) {
        http::detail::wait_interruptibly(std::chrono::milliseconds(500 * attempt));
        continue;
      }
    }
    refused(r, "submitting the run");
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

std::string Client::run_log_text(const RunLog& run, bool stderr_log) {
  const std::string& field = stderr_log ? run.run_log.stderr_log : run.run_log.stdout_log;
  if (!is_server_path(field)) return fetch_log(field);
  // A path on the server's disk is not the log: WESkit serves the text at /weskit/v1/runs/{id}/stdout|stderr.
  return endpoint_log_text(run.run_id, run.state, stderr_log, field);
}

std::string Client::endpoint_log_text(const std::string& run_id, State state, bool stderr_log, const std::string& field) {
  discover();
  const char* which = stderr_log ? "stderr" : "stdout";
  const auto origin = Url::parse(base_);
  if (!origin) throw Error(ErrorKind::config, "the WES URL is not a valid URL").with_url(base_);
  http::Request req;
  req.url = origin->origin() + "/weskit/v1/runs/" + percent_encode(run_id) + "/" + which;
  req.headers.push_back({"Accept", "application/json"});
  if (token_) req.headers.push_back({"Authorization", "Bearer " + token_()});
  auto r = http_.send(std::move(req));
  const long status = meant_status(r);
  if (status == 409 && is_terminal(state) && state != State::complete)
    throw Error(ErrorKind::not_found, fmt::format("the WES service gives the {} of a run only once it has completed; run {} is {}",
                                                  which, run_id, to_string(state)))
        .with_status(409)
        .with_url(r.url);
  if (status == 409)
    throw Error(ErrorKind::pending, fmt::format("the {} of run {} is not available until the run completes (it is {})", which,
                                                run_id, to_string(state)))
        .with_status(409)
        .with_url(r.url);
  if (status == 404 || status == 405) {
    http::Response shown;  // the path as the server wrote it, made safe to print
    shown.body = field;
    throw Error(ErrorKind::not_found,
                field.empty() ? fmt::format("the WES service gives no {} of run {}", which, run_id)
                              : fmt::format("the WES service gives the {} of run {} only as a path on its own disk ({}), "
                                            "with no way to read it",
                                            which, run_id, server_reason(shown)));
  }
  if (!r.ok()) refused(r, fmt::format("reading the {} of run {}", which, run_id));
  const auto j = body_json(r);
  if (!j.is_object()) return r.body;  // the text itself
  const auto* content = detail::member(j, "content");
  if (content == nullptr || content->is_null()) return {};
  if (content->is_array()) {  // a list of lines
    std::string text;
    for (const auto& line : *content) {
      text += detail::as_text(line);
      if (text.empty() || text.back() != '\n') text += '\n';
    }
    return text;
  }
  return detail::as_text(*content);
}

}  // namespace impact::wes
