// The TES client: API root discovery, bounded listing with the specification's filters, exactly-once
// creation through a request tag, cancel, and waiting through WES's polling loop.
#include <set>

#include <fmt/format.h>

#include "api_request.hpp"
#include "http/retry_wait.hpp"
#include "impact/error.hpp"
#include "impact/tes.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::tes {
namespace {

using nlohmann::json;
using clock = std::chrono::steady_clock;

constexpr std::string_view kApiRoot = "/ga4gh/tes/v1";

// A refusal or failure with the server's own reason (wes::server_reason: one sanitised line) when the HTTP
// layer's message lacks it.
void check(const http::Response& r, std::string_view what) {
  if (r.ok()) return;
  try {
    http::throw_for_status(r, what);
  } catch (const Error& e) {
    const std::string reason = wes::server_reason(r);
    if (reason.empty() || std::string_view(e.what()).find(reason) != std::string_view::npos) throw;
    Error more(e.kind(), std::string(e.what()) + ": " + reason, e.hint());
    if (e.http_status()) more.with_status(*e.http_status());
    throw more.with_url(r.url);
  }
}

json body_of(const http::Response& r, std::string_view what) {
  return parse_document(r.body, what, ErrorKind::protocol);
}

bool transient(const Error& e) { return e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout; }

}  // namespace

Client::Client(http::Client& http, std::string base_url, TokenFn token)
    : impact::detail::ApiClient(http, std::move(base_url), std::move(token), kApiRoot,
                [](const json& j) { return j.is_object() && j.contains("type"); }) {}

ServiceInfo Client::service_info() {
  discover();
  return fetch_service_info(http_, base_, "TES");
}

Task Client::get(const std::string& id, View view) {
  discover();
  auto r = http_.send(request(http::Method::get, "tasks/" + percent_encode(id) + "?view=" + std::string(to_string(view))));
  check(r, "getting task " + id);
  auto t = parse_task(body_of(r, "the TES task"));
  if (t.id.empty()) t.id = id;
  return t;
}

bool Client::list(const std::function<bool(const Task&)>& visit, const ListFilter& f) {
  const auto deadline = clock::now() + f.max_time;
  std::string query = fmt::format("tasks?view={}&page_size={}", to_string(f.view), f.page_size);
  if (!f.name_prefix.empty()) query += "&name_prefix=" + percent_encode(f.name_prefix);
  if (f.state) query += "&state=" + std::string(wes::to_string(*f.state));
  for (const auto& [k, v] : f.tags) query += "&tag_key=" + percent_encode(k) + "&tag_value=" + percent_encode(v);
  std::string token;
  std::set<std::string> tokens, ids;
  for (std::size_t page = 0; page < f.max_pages; ++page) {
    if (page > 0 && clock::now() >= deadline) return false;
    discover();
    std::string path = query;
    if (!token.empty()) path += "&page_token=" + percent_encode(token);
    auto r = http_.send(request(http::Method::get, path));
    check(r, "listing tasks");
    auto j = body_of(r, "the TES task list");
    const auto* tasks = detail::member(j, "tasks", json::value_t::array);
    if (tasks == nullptr) {
      if (detail::member(j, "tasks") != nullptr || !j.is_object())
        throw Error(ErrorKind::protocol, "the TES task list has no 'tasks' array").with_url(r.url);
      return true;  // {} (protobuf JSON drops an empty list): no tasks
    }
    bool fresh = false;
    for (const auto& item : *tasks) {
      auto t = parse_task(item);
      if (t.id.empty() || !ids.insert(t.id).second) continue;  // a server that repeats itself
      fresh = true;
      // A server that ignores a filter: checked here too (tags only when the entry shows them).
      if (f.state && t.state != *f.state) continue;
      if (!f.name_prefix.empty() && !t.name.empty() && t.name.rfind(f.name_prefix, 0) != 0) continue;
      if (!f.tags.empty() && t.tags_known && !tags_match(f.tags, t.tags)) continue;
      if (!visit(t)) return false;
    }
    token = detail::string_member(j, "next_page_token");
    // Funnel sends a token after every full page, so the last one may lead to an empty page: stop there.
    if (token.empty() || !fresh || !tokens.insert(token).second) return true;
  }
  return false;
}

void Client::cancel(const std::string& id) {
  discover();
  auto req = request(http::Method::post, "tasks/" + percent_encode(id) + ":cancel");
  req.headers.push_back({"Content-Type", "application/json"});
  req.body = "{}";
  req.retry_safe = true;  // cancelling twice is cancelling once
  check(http_.send(std::move(req)), "cancelling task " + id);
}

wes::Lookup Client::find_by_request_id(const std::string& id) {
  wes::Lookup out;
  ListFilter f;
  f.view = View::basic;  // MINIMAL entries may carry no tags (Funnel)
  f.tags[std::string(kRequestIdTag)] = id;
  f.page_size = 256;
  f.max_pages = kLookupPages;
  f.max_time = kLookupTime;
  std::vector<std::string> unread;  // entries without tags: read one by one
  bool ended = false;
  try {
    ended = list(
        [&](const Task& t) {
          if (t.tags_known) {
            auto it = t.tags.find(std::string(kRequestIdTag));
            if (it != t.tags.end() && it->second == id) {
              out.outcome = wes::Lookup::found;
              out.run_id = t.id;
              return false;
            }
            return true;
          }
          unread.push_back(t.id);
          return unread.size() <= kLookupReads;
        },
        f);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    out.why = std::string("the task list cannot be read: ") + e.what();
    return out;
  }
  if (out.outcome == wes::Lookup::found) return out;
  if (unread.size() > kLookupReads) {
    out.why = fmt::format("more than {} tasks without tags would have to be read one by one", kLookupReads);
    return out;
  }
  if (!ended) {
    out.why = fmt::format("the task list did not end within {} pages or {} s", kLookupPages, kLookupTime.count());
    return out;
  }
  for (const auto& task_id : unread) {
    try {
      auto t = get(task_id, View::basic);
      auto it = t.tags.find(std::string(kRequestIdTag));
      if (it != t.tags.end() && it->second == id) {
        out.outcome = wes::Lookup::found;
        out.run_id = task_id;
        return out;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      out.why = fmt::format("task {} cannot be read: {}", task_id, e.what());
      return out;
    }
  }
  out.outcome = wes::Lookup::absent;
  return out;
}

std::string Client::create(json doc, bool allow_token_in_urls) {
  validate_task(doc);
  if (token_ && !allow_token_in_urls) check_token_not_in_urls(doc, token_());
  discover();
  const std::string key(kRequestIdTag);
  if (!doc.contains("tags")) doc["tags"] = json::object();
  if (!doc["tags"].contains(key) || !doc["tags"][key].is_string() || doc["tags"][key].get<std::string>().empty())
    doc["tags"][key] = wes::new_request_id();
  const std::string id = doc["tags"][key].get<std::string>();
  auto look = [&](const std::string& what_happened, ErrorKind kind) {
    auto l = find_by_request_id(id);
    if (l.outcome == wes::Lookup::undecided)
      throw Error(kind, what_happened + "; impact cannot tell whether the task was created: " + l.why)
          .with_remedy(Remedy::task_list_tag)
          .with_fact("tag", key)
          .with_fact("value", id);
    return l;
  };
  const std::string body = doc.dump();
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    auto req = request(http::Method::post, "tasks");
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = body;  // retry_safe stays false: never re-sent by the HTTP layer, nor on a reused connection
    http::Response r;
    try {
      r = http_.send(std::move(req));
    } catch (const Error& e) {
      if (!transient(e)) throw;
      auto l = look(e.what(), e.kind());
      if (l.outcome == wes::Lookup::found) return l.run_id;
      if (attempt >= kAttempts) throw Error(e.kind(), std::string(e.what()) + " (the task was not created)", "try again later");
      http::detail::wait_interruptibly(std::chrono::milliseconds(500 * attempt));
      continue;
    }
    if (r.ok()) {
      auto j = body_of(r, "the TES create answer");
      std::string task_id = detail::string_member(j, "id");
      if (task_id.empty()) throw Error(ErrorKind::protocol, "the TES server accepted the task but sent no id").with_url(r.url);
      return task_id;
    }
    if (r.status >= 500) {
      std::string happened = fmt::format("creating the task failed: HTTP {}", r.status);
      if (auto reason = wes::server_reason(r); !reason.empty()) happened += ": " + reason;
      auto l = look(happened, ErrorKind::server);
      if (l.outcome == wes::Lookup::found) return l.run_id;
      if (attempt < kAttempts) {
        http::detail::wait_interruptibly(std::chrono::milliseconds(500 * attempt));
        continue;
      }
    }
    check(r, "creating the task");
    throw Error(ErrorKind::protocol, "creating the task failed");  // not reached
  }
}

wes::WaitResult wait(Client& client, const std::vector<std::string>& ids, const wes::WaitOptions& opts,
                     wes::WaitObserver* observer) {
  return wes::wait_with(
      [&client](std::vector<std::pair<std::string, State>>& now) {
        int requests = 0;
        for (auto& [id, state] : now) {
          if (wes::stops_wait(state)) continue;
          state = client.get(id, View::minimal).state;
          ++requests;
        }
        return requests;
      },
      ids, opts, observer);
}

}  // namespace impact::tes
