// TES task documents: built from a spec, checked against the TES 1.1 schema's request rules, and read
// leniently from servers.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/tes.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::tes {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxText = 1 << 20;     // one executor's stdout or stderr kept from a document
constexpr std::size_t kMaxField = 4096;       // ids, names, times
constexpr std::size_t kMaxItems = 10000;      // logs, executors, system log lines read from a document

std::string bounded(std::string s, std::size_t max) {
  if (s.size() > max) s.resize(max);
  return s;
}

std::string str(const json& j, std::string_view key, std::size_t max = kMaxField) {
  return bounded(detail::string_member(j, key), max);
}

// Every input/output URL field of a document, with where it is ("inputs[0].url").
template <class F>
void each_url(const json& doc, F f) {
  for (const char* list : {"inputs", "outputs"}) {
    const auto* items = detail::member(doc, list, json::value_t::array);
    if (items == nullptr) continue;
    for (std::size_t i = 0; i < items->size() && i < kMaxItems; ++i) {
      const auto* url = detail::member((*items)[i], "url", json::value_t::string);
      if (url != nullptr) f(fmt::format("{}[{}].url", list, i), url->get<std::string>());
    }
  }
}

}  // namespace

std::string_view to_string(View v) noexcept {
  switch (v) {
    case View::minimal: return "MINIMAL";
    case View::basic: return "BASIC";
    case View::full: return "FULL";
  }
  return "BASIC";
}

std::optional<View> parse_view(std::string_view text) {
  for (View v : {View::minimal, View::basic, View::full})
    if (text::iequals(text, to_string(v))) return v;
  return std::nullopt;
}

json task_document(const TaskSpec& s) {
  json doc = json::object();
  if (!s.name.empty()) doc["name"] = s.name;
  json ex = {{"image", s.image}, {"command", s.command}};
  doc["executors"] = json::array({ex});
  if (!s.inputs.empty()) {
    json in = json::array();
    for (const auto& i : s.inputs) {
      json e = {{"path", i.path}, {"type", "FILE"}};
      if (!i.content.empty()) e["content"] = i.content;
      else e["url"] = i.url;
      in.push_back(std::move(e));
    }
    doc["inputs"] = std::move(in);
  }
  if (!s.outputs.empty()) {
    json out = json::array();
    for (const auto& o : s.outputs) out.push_back({{"path", o.path}, {"url", o.url}, {"type", "FILE"}});
    doc["outputs"] = std::move(out);
  }
  if (s.cpu_cores || s.ram_gb || s.disk_gb) {
    json r = json::object();
    if (s.cpu_cores) r["cpu_cores"] = *s.cpu_cores;
    if (s.ram_gb) r["ram_gb"] = *s.ram_gb;
    if (s.disk_gb) r["disk_gb"] = *s.disk_gb;
    doc["resources"] = std::move(r);
  }
  if (!s.tags.empty()) doc["tags"] = s.tags;
  return doc;
}

void validate_task(const json& doc) {
  std::vector<std::string> problems;
  auto bad = [&](std::string p) { problems.push_back(std::move(p)); };
  if (!doc.is_object()) throw Error(ErrorKind::usage, "the task is not a JSON object", "a TES task is {\"executors\": [...], ...}");
  for (const char* server_field : {"id", "state", "logs", "creation_time"})
    if (doc.contains(server_field)) bad(fmt::format("'{}' is set by the server, not in a request", server_field));
  for (const char* k : {"name", "description"})
    if (doc.contains(k) && !doc[k].is_string()) bad(fmt::format("'{}' is not a string", k));
  const auto* executors = detail::member(doc, "executors");
  if (executors == nullptr || !executors->is_array() || executors->empty()) {
    bad("'executors' must be a non-empty array");
  } else {
    for (std::size_t i = 0; i < executors->size(); ++i) {
      const auto& e = (*executors)[i];
      const std::string at = fmt::format("executors[{}]", i);
      if (!e.is_object()) {
        bad(at + " is not an object");
        continue;
      }
      const auto* image = detail::member(e, "image", json::value_t::string);
      if (image == nullptr || image->get<std::string>().empty()) bad(at + ".image must be a non-empty string");
      const auto* cmd = detail::member(e, "command", json::value_t::array);
      if (cmd == nullptr || cmd->empty()) bad(at + ".command must be a non-empty array of strings");
      else
        for (const auto& c : *cmd)
          if (!c.is_string()) {
            bad(at + ".command must hold only strings");
            break;
          }
      for (const char* k : {"workdir", "stdin", "stdout", "stderr"})
        if (e.contains(k) && !e[k].is_string()) bad(fmt::format("{}.{} is not a string", at, k));
      if (e.contains("env") && (!e["env"].is_object() || std::any_of(e["env"].begin(), e["env"].end(),
                                                                    [](const json& v) { return !v.is_string(); })))
        bad(at + ".env must be an object of strings");
      if (e.contains("ignore_error") && !e["ignore_error"].is_boolean()) bad(at + ".ignore_error is not a boolean");
    }
  }
  for (const char* list : {"inputs", "outputs"}) {
    if (!doc.contains(list)) continue;
    if (!doc[list].is_array()) {
      bad(fmt::format("'{}' is not an array", list));
      continue;
    }
    const bool input = std::string_view(list) == "inputs";
    for (std::size_t i = 0; i < doc[list].size(); ++i) {
      const auto& e = doc[list][i];
      const std::string at = fmt::format("{}[{}]", list, i);
      if (!e.is_object()) {
        bad(at + " is not an object");
        continue;
      }
      if (detail::string_member(e, "path").empty()) bad(at + ".path must be a non-empty string");
      const bool has_url = !detail::string_member(e, "url").empty();
      if (input && !has_url && detail::member(e, "content", json::value_t::string) == nullptr)
        bad(at + " needs a 'url' or a 'content'");
      if (!input && !has_url) bad(at + ".url must be a non-empty string");
      if (e.contains("type") && e["type"] != "FILE" && e["type"] != "DIRECTORY") bad(at + ".type must be FILE or DIRECTORY");
    }
  }
  if (doc.contains("resources")) {
    const auto& r = doc["resources"];
    if (!r.is_object()) {
      bad("'resources' is not an object");
    } else {
      if (r.contains("cpu_cores") && (!r["cpu_cores"].is_number_integer() || r["cpu_cores"].get<long long>() < 1))
        bad("resources.cpu_cores must be a whole number of at least 1");
      for (const char* k : {"ram_gb", "disk_gb"})
        if (r.contains(k) && (!r[k].is_number() || !(r[k].get<double>() > 0) || !std::isfinite(r[k].get<double>())))
          bad(fmt::format("resources.{} must be a number above 0", k));
      if (r.contains("preemptible") && !r["preemptible"].is_boolean()) bad("resources.preemptible is not a boolean");
    }
  }
  if (doc.contains("tags") && (!doc["tags"].is_object() || std::any_of(doc["tags"].begin(), doc["tags"].end(),
                                                                       [](const json& v) { return !v.is_string(); })))
    bad("'tags' must be an object of strings");
  if (doc.contains("volumes") && (!doc["volumes"].is_array() || std::any_of(doc["volumes"].begin(), doc["volumes"].end(),
                                                                            [](const json& v) { return !v.is_string(); })))
    bad("'volumes' must be an array of strings");
  if (problems.empty()) return;
  std::string msg = "the task is not valid TES 1.1: " + problems.front();
  for (std::size_t i = 1; i < problems.size() && i < 10; ++i) msg += "; " + problems[i];
  if (problems.size() > 10) msg += fmt::format("; and {} more", problems.size() - 10);
  throw Error(ErrorKind::usage, redact(msg));
}

void check_url_credentials(const json& doc, bool allow) {
  if (allow) return;
  each_url(doc, [](const std::string& where, const std::string& url) {
    if (redact_url(url) == url) return;
    throw Error(ErrorKind::usage,
                fmt::format("{} carries credentials ({}): the TES server and its workers would store and show them",
                            where, redact_url(url)),
                "use a URL the service can read with its own credentials, or allow this one explicitly");
  });
}

void check_token_not_in_urls(const json& doc, std::string_view token) {
  if (token.empty()) return;
  each_url(doc, [&](const std::string& where, const std::string& url) {
    if (url.find(token) == std::string::npos) return;
    throw Error(ErrorKind::usage,
                where + " holds your access token: the TES server and its workers would store and show it",
                "give the service a URL it can read with its own credentials, or allow this explicitly");
  });
}

json parse_document(std::string_view text, std::string_view what, ErrorKind kind) {
  auto j = detail::parse_json(text);
  if (j.is_discarded()) throw Error(kind, fmt::format("{} is not JSON (or nests too deeply)", what));
  return j;
}

bool tags_match(const Tags& filter, const Tags& tags) {
  for (const auto& [k, v] : filter) {
    auto it = tags.find(k);
    if (it == tags.end() || (!v.empty() && it->second != v)) return false;
  }
  return true;
}

Task parse_task(const json& j) {
  Task t;
  t.id = str(j, "id");
  t.name = str(j, "name");
  t.description = str(j, "description", kMaxText);
  t.creation_time = wes::normalize_time(str(j, "creation_time"));
  t.state = wes::parse_state(str(j, "state"));
  if (const auto* tags = detail::member(j, "tags", json::value_t::object)) {
    t.tags_known = true;
    for (const auto& [k, v] : tags->items())
      if (t.tags.size() < kMaxItems) t.tags[bounded(k, kMaxField)] = bounded(detail::as_text(v), kMaxField);
  }
  if (const auto* logs = detail::member(j, "logs", json::value_t::array)) {
    for (const auto& l : *logs) {
      if (t.logs.size() >= kMaxItems) break;
      TaskLog tl;
      tl.start_time = wes::normalize_time(str(l, "start_time"));
      tl.end_time = wes::normalize_time(str(l, "end_time"));
      for (auto& s : detail::strings_member(l, "system_logs"))
        if (tl.system_logs.size() < kMaxItems) tl.system_logs.push_back(bounded(std::move(s), kMaxField));
      if (const auto* outs = detail::member(l, "outputs", json::value_t::array)) tl.outputs = *outs;
      if (const auto* el = detail::member(l, "logs", json::value_t::array)) {
        for (const auto& e : *el) {
          if (tl.logs.size() >= kMaxItems) break;
          ExecutorLog x;
          x.start_time = wes::normalize_time(str(e, "start_time"));
          x.end_time = wes::normalize_time(str(e, "end_time"));
          x.stdout_text = str(e, "stdout", kMaxText);
          x.stderr_text = str(e, "stderr", kMaxText);
          if (auto code = detail::clamped_number_member(e, "exit_code", 1LL << 31)) x.exit_code = *code;
          tl.logs.push_back(std::move(x));
        }
      }
      t.logs.push_back(std::move(tl));
    }
  }
  t.document = j.is_object() ? j : json::object();
  // URLs are shown redacted wherever the document goes (a presigned URL is a credential).
  for (const char* list : {"inputs", "outputs"}) {
    auto it = t.document.find(list);
    if (it == t.document.end() || !it->is_array()) continue;
    for (auto& e : *it)
      if (e.is_object() && e.contains("url") && e["url"].is_string()) e["url"] = redact_url(e["url"].get<std::string>());
  }
  return t;
}

void to_json(json& j, const Task& t) {
  j = t.document;
  j["id"] = t.id;
  j["state"] = std::string(wes::to_string(t.state));
}

}  // namespace impact::tes
