// WES model: states, parsing with the dialects servers speak, the multipart request, and validation.
#include <array>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/wes.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::wes {
namespace {

constexpr std::array<std::string_view, 11> kStateNames = {
    "UNKNOWN",  "QUEUED",   "INITIALIZING", "RUNNING",   "PAUSED",   "COMPLETE",
    "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "CANCELING", "PREEMPTED"};

using detail::strings_of;

// A member as text: a string as it is, another value as JSON, "" when it is missing or null.
std::string str(const nlohmann::json& j, const char* key) {
  const auto* v = detail::member(j, key);
  if (v == nullptr || v->is_null()) return {};
  return detail::as_text(*v);
}

// Some servers echo JSON fields (tags, workflow_params) as the strings they were sent as.
nlohmann::json as_object(const nlohmann::json& v) {
  if (v.is_object()) return v;
  if (v.is_string()) {
    auto parsed = impact::detail::parse_json(v.get<std::string>());
    if (parsed.is_object()) return parsed;
  }
  return nlohmann::json::object();
}

Tags parse_tags(const nlohmann::json& v) {
  Tags tags;
  const auto obj = as_object(v);
  for (const auto& [k, val] : obj.items()) tags[k] = detail::as_text(val);
  return tags;
}

// outputs as an object (spec), or as a list of {file_name, file_url} (some servers): always an object.
nlohmann::json fold_outputs(const nlohmann::json& v) {
  if (v.is_object()) return v;
  auto out = nlohmann::json::object();
  if (v.is_string()) return as_object(v);
  if (!v.is_array()) return out;
  for (const auto& item : v) {
    if (!item.is_object()) continue;
    std::string name = str(item, "file_name");
    if (name.empty()) name = str(item, "name");
    if (name.empty()) continue;
    out[name] = item.contains("file_url") ? item["file_url"] : item;
  }
  return out;
}

std::string lower_ext(const std::filesystem::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = text::lower(c);
  return e;
}

bool has_scheme(std::string_view url) {
  auto colon = url.find("://");
  return colon != std::string_view::npos && colon > 0 &&
         url.substr(0, colon).find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") ==
             std::string_view::npos;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

std::string_view to_string(State s) noexcept { return kStateNames.at(static_cast<std::size_t>(s)); }

State parse_state(std::string_view t) noexcept {
  for (std::size_t i = 0; i < kStateNames.size(); ++i)
    if (text::iequals(t, kStateNames[i])) return static_cast<State>(i);
  if (text::iequals(t, "CANCELLED")) return State::canceled;  // British spelling seen in the wild
  return State::unknown;
}

bool is_terminal(State s) noexcept {
  return s == State::complete || s == State::executor_error || s == State::system_error || s == State::canceled ||
         s == State::preempted;
}

int exit_code_for(State s) noexcept {
  switch (s) {
    case State::complete: return exit_code::ok;
    case State::executor_error: return exit_code::run_executor_error;
    case State::system_error: return exit_code::run_system_error;
    case State::canceled: return exit_code::run_canceled;
    case State::preempted: return exit_code::run_preempted;
    default: return exit_code::pending;
  }
}

std::string new_request_id() {
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 4; ++i) id += fmt::format("{:08x}", rd());
  return id;
}

std::chrono::milliseconds Backoff::next() {
  auto now = cur_;
  cur_ = std::min(cap_, cur_ + cur_ / 2);
  return now;
}

Tags RunLog::tags() const { return request.is_object() && request.contains("tags") ? parse_tags(request["tags"]) : Tags{}; }

RunSummary parse_summary(const nlohmann::json& j) {
  RunSummary r;
  r.run_id = str(j, "run_id");
  if (r.run_id.empty()) r.run_id = str(j, "id");
  r.state = parse_state(str(j, "state"));
  r.start_time = str(j, "start_time");
  r.end_time = str(j, "end_time");
  if (j.is_object() && j.contains("tags")) r.tags = parse_tags(j["tags"]);
  return r;
}

Log parse_log(const nlohmann::json& j) {
  Log l;
  l.id = str(j, "id");
  l.name = str(j, "name");
  if (j.is_object() && j.contains("cmd") && j["cmd"].is_array()) {
    for (const auto& part : strings_of(j["cmd"])) l.cmd += (l.cmd.empty() ? "" : " ") + part;
  } else {
    l.cmd = str(j, "cmd");
  }
  l.start_time = str(j, "start_time");
  l.end_time = str(j, "end_time");
  l.stdout_log = str(j, "stdout");
  l.stderr_log = str(j, "stderr");
  if (j.is_object() && j.contains("exit_code")) {
    const auto& e = j["exit_code"];
    if (e.is_number_integer()) l.exit_code = e.get<long long>();
    else if (e.is_string()) {
      try { l.exit_code = std::stoll(e.get<std::string>()); } catch (const std::exception&) {}
    }
  }
  l.system_logs = detail::strings_member(j, "system_logs");
  return l;
}

RunLog parse_run_log(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(ErrorKind::protocol, "the WES server sent a run log that is not a JSON object");
  RunLog r;
  r.run_id = str(j, "run_id");
  r.state = parse_state(str(j, "state"));
  if (j.contains("request") && j["request"].is_object()) {
    r.request = j["request"];
    for (const char* k : {"tags", "workflow_params", "workflow_engine_parameters"})
      if (r.request.contains(k)) r.request[k] = as_object(r.request[k]);
  }
  if (j.contains("run_log")) r.run_log = parse_log(j["run_log"]);
  if (j.contains("task_logs") && j["task_logs"].is_array())
    for (const auto& t : j["task_logs"]) r.task_logs.push_back(parse_log(t));
  r.task_logs_url = str(j, "task_logs_url");
  if (j.contains("outputs")) r.outputs = fold_outputs(j["outputs"]);
  return r;
}

void to_json(nlohmann::json& j, const RunSummary& r) {
  j = {{"run_id", r.run_id}, {"state", to_string(r.state)}, {"start_time", r.start_time},
       {"end_time", r.end_time}, {"tags", r.tags}};
}

void to_json(nlohmann::json& j, const Log& l) {
  j = {{"name", l.name}, {"cmd", l.cmd}, {"start_time", l.start_time}, {"end_time", l.end_time},
       {"stdout", l.stdout_log}, {"stderr", l.stderr_log}, {"system_logs", l.system_logs}};
  if (!l.id.empty()) j["id"] = l.id;
  j["exit_code"] = l.exit_code ? nlohmann::json(*l.exit_code) : nlohmann::json(nullptr);
}

void to_json(nlohmann::json& j, const RunLog& r) {
  j = {{"run_id", r.run_id}, {"state", to_string(r.state)}, {"request", r.request}, {"run_log", r.run_log},
       {"task_logs", r.task_logs}, {"outputs", r.outputs}};
  if (!r.task_logs_url.empty()) j["task_logs_url"] = r.task_logs_url;
}

bool valid_attachment_name(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    auto seg = name.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

std::vector<http::FormPart> form_parts(const RunRequest& r) {
  std::vector<http::FormPart> parts;
  auto field = [&](const char* name, std::string value) { parts.push_back({name, std::move(value), {}, {}, {}}); };
  field("workflow_params", r.params.dump());
  field("workflow_type", r.type);
  field("workflow_type_version", r.type_version);
  field("tags", nlohmann::json(r.tags).dump());
  if (!r.engine.empty()) field("workflow_engine", r.engine);
  if (!r.engine_version.empty()) field("workflow_engine_version", r.engine_version);
  if (!r.engine_params.empty()) field("workflow_engine_parameters", nlohmann::json(r.engine_params).dump());
  field("workflow_url", r.workflow_url);
  for (const auto& a : r.attachments)
    parts.push_back({"workflow_attachment", {}, a.file, a.name, "application/octet-stream"});
  return parts;
}

void complete_request(RunRequest& r, const ServiceInfo& info, const std::filesystem::path& local) {
  if (r.type.empty()) {
    const auto ext = lower_ext(r.workflow_url.substr(0, r.workflow_url.find('#')));
    const std::string file = std::filesystem::path(r.workflow_url).filename().string();
    if (ext == ".cwl") r.type = "CWL";
    else if (ext == ".wdl") r.type = "WDL";
    else if (ext == ".nf") r.type = "NFL";
    else if (ext == ".smk" || file == "Snakefile") r.type = "SMK";
    else
      throw Error(ErrorKind::usage, "cannot tell the workflow language of '" + r.workflow_url + "'",
                  "give it with --type CWL|WDL|NFL|SMK");
  }
  if (!r.type_version.empty()) return;
  if (r.type == "CWL" && !local.empty()) {
    std::ifstream in(local);
    std::string line;
    for (int n = 0; n < 200 && std::getline(in, line); ++n) {
      auto pos = line.find("cwlVersion");
      if (pos == std::string::npos) continue;
      auto v = line.find('v', pos + 10);
      if (v == std::string::npos) continue;
      auto end = line.find_first_of(" \t\"',}\r", v);
      r.type_version = line.substr(v, end == std::string::npos ? std::string::npos : end - v);
      return;
    }
  }
  const auto& wtv = info.extra.value("workflow_type_versions", nlohmann::json::object());
  if (wtv.is_object() && !wtv.empty() && !wtv.contains(r.type)) return;  // validate() names the type
  if (wtv.is_object() && wtv.contains(r.type)) {
    auto versions = strings_of(wtv[r.type].value("workflow_type_version", nlohmann::json::array()));
    if (!versions.empty()) {
      std::sort(versions.begin(), versions.end());
      r.type_version = versions.back();
      return;
    }
  }
  throw Error(ErrorKind::usage, "no workflow type version for " + r.type, "give it with --type-version");
}

void validate(const RunRequest& r, const ServiceInfo& info) {
  std::vector<std::string> problems;
  const auto& x = info.extra;
  const auto wtv = x.value("workflow_type_versions", nlohmann::json::object());
  if (wtv.is_object() && !wtv.empty()) {
    std::vector<std::string> types;
    for (const auto& [k, v] : wtv.items()) types.push_back(k);
    if (!wtv.contains(r.type)) {
      problems.push_back(fmt::format("workflow type {} (it runs: {})", r.type, joined(types)));
    } else {
      auto versions = strings_of(wtv[r.type].value("workflow_type_version", nlohmann::json::array()));
      if (!versions.empty() && !contains(versions, r.type_version))
        problems.push_back(fmt::format("{} version {} (it runs: {})", r.type, r.type_version, joined(versions)));
    }
  }
  const auto engines = x.value("workflow_engine_versions", nlohmann::json::object());
  if (!r.engine.empty() && engines.is_object() && !engines.empty()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : engines.items()) names.push_back(k);
    if (!engines.contains(r.engine)) {
      problems.push_back(fmt::format("engine {} (it has: {})", r.engine, joined(names)));
    } else if (!r.engine_version.empty()) {
      const auto& e = engines[r.engine];
      auto versions = e.is_object() ? strings_of(e.value("workflow_engine_version", nlohmann::json::array()))
                                    : std::vector<std::string>{};
      if (e.is_string()) versions.push_back(e.get<std::string>());
      if (!versions.empty() && !contains(versions, r.engine_version))
        problems.push_back(fmt::format("{} version {} (it has: {})", r.engine, r.engine_version, joined(versions)));
    }
  }
  const auto protocols = strings_of(x.value("supported_filesystem_protocols", nlohmann::json::array()));
  if (!protocols.empty() && has_scheme(r.workflow_url)) {
    std::string scheme = r.workflow_url.substr(0, r.workflow_url.find("://"));
    for (auto& c : scheme) c = text::lower(c);
    if (!contains(protocols, scheme))
      problems.push_back(fmt::format("workflow URLs of scheme {} (it reads: {})", scheme, joined(protocols)));
  }
  for (const auto& a : r.attachments)
    if (!valid_attachment_name(a.name))
      throw Error(ErrorKind::usage, "attachment name '" + a.name + "' is not a plain relative path",
                  "attach files from the workflow's directory or below it; '..' is refused");
  if (problems.empty()) return;
  std::string msg = "the WES service does not support ";
  for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; nor " : "") + problems[i];
  throw Error(ErrorKind::usage, msg, "see: impact service-info wes");
}

}  // namespace impact::wes
