// WES model: states, parsing with the dialects servers speak, the multipart request, and validation.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <ctime>
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
  std::size_t index = 0;
  for (const auto& item : v) {
    std::string name = item.is_object() ? str(item, "file_name") : std::string();
    if (name.empty() && item.is_object()) name = str(item, "name");
    if (name.empty()) name = std::to_string(index);  // a bare list (CWL File[], numbers, strings): kept by position
    ++index;
    out[name] = item.is_object() && item.contains("file_url") ? item["file_url"] : item;
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

// Version order: runs of digits compare as numbers ("7.9.0" < "7.21.0"), anything else as text.
bool version_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0, db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      std::size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      std::string_view na(a.data() + i, ei - i), nb(b.data() + j, ej - j);
      while (na.size() > 1 && na.front() == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb.front() == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<std::string> keys_of(const nlohmann::json& obj) {
  std::vector<std::string> keys;
  if (obj.is_object())
    for (const auto& [k, v] : obj.items()) keys.push_back(k);
  return keys;
}

// The engines that run each workflow language, in the order impact prefers them.
std::vector<std::string_view> engines_for(std::string_view type) {
  if (type == "CWL") return {"cwltool", "toil", "arvados-cwl-runner", "streamflow"};
  if (type == "NFL") return {"nextflow"};
  if (type == "WDL") return {"cromwell", "miniwdl"};
  if (type == "SMK") return {"snakemake"};
  return {};
}

// A server's engine key names `engine` when its first word is that name, in any case ("toil (experimental)").
bool names_engine(std::string_view key, std::string_view engine) {
  const auto word = key.substr(0, key.find_first_of(" \t("));
  return text::iequals(word, engine);
}

bool attached(const RunRequest& r, std::string_view name) {
  return std::any_of(r.attachments.begin(), r.attachments.end(), [&](const Attachment& a) { return a.name == name; });
}

// A server that reads workflows only from its own files and attachments: it names file: but not http(s).
bool wants_file_urls(const ServiceInfo& info) {
  auto protocols = strings_of(info.extra.value("supported_filesystem_protocols", nlohmann::json::array()));
  for (auto& p : protocols)
    for (auto& c : p) c = text::lower(c);
  return contains(protocols, "file") && !contains(protocols, "http") && !contains(protocols, "https");
}

}  // namespace

State State::named(std::string_view name) {
  State s(other);
  for (char c : name.substr(0, 64))
    s.name_ += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ? c : '?';
  if (s.name_.size() >= 6 && text::iequals(std::string_view(s.name_).substr(s.name_.size() - 6), "_ERROR"))
    s.code_ = other_error;
  return s;
}

std::string_view to_string(const State& s) noexcept {
  if (s.code() == State::other || s.code() == State::other_error) return s.name();
  return kStateNames.at(static_cast<std::size_t>(s.code()));
}

State parse_state(std::string_view t) {
  t = text::trim(t);
  if (t.empty()) return State::unknown;
  for (std::size_t i = 0; i < kStateNames.size(); ++i)
    if (text::iequals(t, kStateNames[i])) return static_cast<State::Code>(i);
  if (text::iequals(t, "CANCELLED")) return State::canceled;  // British spelling seen in the wild
  return State::named(t);
}

bool is_terminal(const State& s) noexcept {
  switch (s.code()) {
    case State::complete:
    case State::executor_error:
    case State::system_error:
    case State::canceled:
    case State::preempted:
    case State::other_error: return true;
    default: return false;
  }
}

bool stops_wait(const State& s) noexcept { return is_terminal(s) || s.code() == State::other; }

int exit_code_for(const State& s) noexcept {
  switch (s.code()) {
    case State::executor_error: return exit_code::run_executor_error;
    case State::system_error: return exit_code::run_system_error;
    case State::canceled: return exit_code::run_canceled;
    case State::preempted: return exit_code::run_preempted;
    case State::other_error: return exit_code::run_other_error;
    case State::other: return exit_code::run_other_state;
    default: return exit_code::ok;
  }
}

std::string normalize_time(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.frac][Z|+hh:mm|-hh:mm] (a space for the T is tolerated); anything else as it came.
  const std::string s(text::trim(t));
  auto digits = [&](std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) return -1;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':')
    return s;
  std::tm tm{};
  tm.tm_year = digits(0, 4) - 1900;
  tm.tm_mon = digits(5, 2) - 1;
  tm.tm_mday = digits(8, 2);
  tm.tm_hour = digits(11, 2);
  tm.tm_min = digits(14, 2);
  tm.tm_sec = digits(17, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
    return s;
  std::size_t i = 19;
  std::string frac;
  if (i < s.size() && s[i] == '.') {
    std::size_t j = i + 1;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + 1) return s;
    frac = s.substr(i, j - i);
    i = j;
  }
  long offset = 0;  // seconds east of UTC
  if (i == s.size()) {
    // No zone: taken as UTC (see impact-json(7)).
  } else if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
  } else if ((s[i] == '+' || s[i] == '-') && i + 6 == s.size() && s[i + 3] == ':') {
    const int h = digits(i + 1, 2), m = digits(i + 4, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59) return s;
    offset = (s[i] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
  } else {
    return s;
  }
  const std::time_t utc = timegm(&tm) - offset;
  std::tm out{};
  gmtime_r(&utc, &out);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &out);
  return std::string(buf) + frac + "Z";
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
  r.start_time = normalize_time(str(j, "start_time"));
  r.end_time = normalize_time(str(j, "end_time"));
  if (j.is_object() && j.contains("tags") && !j["tags"].is_null()) {
    r.tags = parse_tags(j["tags"]);
    r.tags_known = true;
  }
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
  l.start_time = normalize_time(str(j, "start_time"));
  l.end_time = normalize_time(str(j, "end_time"));
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
  j = {{"run_id", r.run_id}, {"state", to_string(r.state)}};
  if (!r.start_time.empty()) j["start_time"] = r.start_time;  // optional keys are left out (impact-json(7))
  if (!r.end_time.empty()) j["end_time"] = r.end_time;
  j["tags"] = r.tags;
}

void to_json(nlohmann::json& j, const Log& l) {
  j = {{"name", l.name}, {"cmd", l.cmd}, {"stdout", l.stdout_log}, {"stderr", l.stderr_log},
       {"system_logs", l.system_logs}};
  if (!l.start_time.empty()) j["start_time"] = l.start_time;
  if (!l.end_time.empty()) j["end_time"] = l.end_time;
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

// type (from the file name) and type_version (the CWL file's cwlVersion, else the newest the server lists).
static void complete_type(RunRequest& r, const ServiceInfo& info, const std::filesystem::path& local) {
  if (r.type.empty()) {
    const auto ext = lower_ext(r.workflow_url.substr(0, r.workflow_url.find('#')));
    const std::string file = std::filesystem::path(r.workflow_url).filename().string();
    if (ext == ".cwl") r.type = "CWL";
    else if (ext == ".wdl") r.type = "WDL";
    else if (ext == ".nf") r.type = "NFL";
    else if (ext == ".smk" || file == "Snakefile") r.type = "SMK";
    else
      throw Error(ErrorKind::usage, "cannot tell the workflow language of '" + r.workflow_url + "'")
          .with_remedy(Remedy::workflow_type);
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
      r.type_version = *std::max_element(versions.begin(), versions.end(), version_less);
      return;
    }
  }
  throw Error(ErrorKind::usage, "no workflow type version for " + r.type).with_remedy(Remedy::type_version);
}

void complete_request(RunRequest& r, const ServiceInfo& info, const std::filesystem::path& local) {
  complete_type(r, info, local);
  // WES 1.1 has workflow_engine: a server that claims 1.1 and lists engines gets the one that runs the
  // language up front (sapporo requires it); when none fits, its refusal (if any) says so later.
  if (r.engine.empty() && wes_version(info) == WesVersion::v1_1 &&
      !info.extra.value("workflow_engine_versions", nlohmann::json::object()).empty()) {
    try {
      r.engine = choose_engine(r, &info);
    } catch (const Error&) {
    }
  }
  // A local workflow goes as an attachment; a server that reads only file: URLs gets "file:NAME".
  if (!local.empty() && attached(r, r.workflow_url) && wants_file_urls(info)) r.workflow_url = "file:" + r.workflow_url;
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
  if (!r.engine.empty() && wes_version(info) == WesVersion::v1_0)
    problems.push_back(fmt::format("choosing the workflow engine {} (it speaks WES 1.0, whose requests have no engine field)", r.engine));
  else if (!r.engine.empty() && engines.is_object() && !engines.empty()) {
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
    // trs:// names a registered workflow, not a file system: WESkit takes it without listing it.
    if (!contains(protocols, scheme) && scheme != "trs")
      problems.push_back(fmt::format("workflow URLs of scheme {} (it reads: {})", scheme, joined(protocols)));
  }
  for (const auto& a : r.attachments)
    if (!valid_attachment_name(a.name))
      throw Error(ErrorKind::usage, "attachment name '" + a.name + "' is not a plain relative path",
                  "attach files from the workflow's directory or below it; '..' is refused");
  if (problems.empty()) return;
  std::string msg = "the WES service does not support ";
  for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; nor " : "") + problems[i];
  throw Error(ErrorKind::usage, msg).with_remedy(Remedy::service_info).with_fact("service", "wes");
}

// ---- dialects

WesVersion wes_version(const ServiceInfo& info) {
  const auto versions = strings_of(info.extra.value("supported_wes_versions", nlohmann::json::array()));
  WesVersion out = WesVersion::unknown;
  for (const auto& v : versions) {
    // The first "major.minor" in the text: "1.0.0", "v1.1", "sapporo-wes-1.1.0".
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(v[i])) || (i > 0 && std::isdigit(static_cast<unsigned char>(v[i - 1]))))
        continue;
      char* end = nullptr;
      const long major = std::strtol(v.c_str() + i, &end, 10);
      if (*end != '.' || !std::isdigit(static_cast<unsigned char>(end[1]))) continue;
      const long minor = std::strtol(end + 1, nullptr, 10);
      if (major > 1 || (major == 1 && minor >= 1)) return WesVersion::v1_1;
      out = WesVersion::v1_0;
      break;
    }
  }
  return out;
}

std::string choose_engine(const RunRequest& r, const ServiceInfo* info) {
  if (!r.engine_if_required.empty()) return r.engine_if_required;
  const auto keys = info ? keys_of(info->extra.value("workflow_engine_versions", nlohmann::json::object()))
                         : std::vector<std::string>{};
  for (auto want : engines_for(r.type))
    for (const auto& k : keys)
      if (names_engine(k, want)) return k;
  if (keys.size() == 1) return keys.front();
  throw Error(ErrorKind::usage,
              fmt::format("the WES service requires a workflow engine, and none of its engines is known to run {} "
                          "(it has: {})",
                          r.type.empty() ? std::string("this workflow") : r.type, joined(keys)),
              "name the one to use in the profile's wes_engine setting");
}

namespace {

// Whether the reason says `field` was refused as a field the server does not know.
bool refused_as_unknown(std::string_view reason, std::string_view field) {
  if (!text::icontains(reason, field)) return false;
  for (std::string_view why : {"unknown field", "not allowed", "unexpected", "additional propert", "unknown key", "extra field"})
    if (text::icontains(reason, why)) return true;
  return false;
}

}  // namespace

std::optional<Adjustment> adjust_after_refusal(const RunRequest& sent, long status, std::string_view reason,
                                               const ServiceInfo* info, const std::vector<Adjustment::Kind>& done) {
  if (status != 400) return std::nullopt;
  auto fresh = [&](Adjustment::Kind k) { return std::find(done.begin(), done.end(), k) == done.end(); };
  using K = Adjustment::Kind;
  // Fields of WES 1.1 that a WES 1.0 server refuses ("Malformed request: [{'workflow_engine': ['unknown field']}]").
  const bool engine_unknown = !sent.engine.empty() && refused_as_unknown(reason, "workflow_engine");
  const bool version_unknown = !sent.engine_version.empty() && refused_as_unknown(reason, "workflow_engine_version");
  if ((engine_unknown || version_unknown) && fresh(K::drop_unknown_fields)) {
    Adjustment a{K::drop_unknown_fields, sent, {}};
    std::string dropped = version_unknown && !engine_unknown ? "workflow_engine_version" : "workflow_engine";
    if (engine_unknown) a.request.engine.clear();
    a.request.engine_version.clear();
    a.note = fmt::format("the WES service does not know the field {}: sent again without it", dropped);
    return a;
  }
  // An engine the server requires ("Workflow engine is required.").
  if (sent.engine.empty() && text::icontains(reason, "engine") &&
      (text::icontains(reason, "required") || text::icontains(reason, "missing")) && fresh(K::add_engine)) {
    Adjustment a{K::add_engine, sent, {}};
    a.request.engine = choose_engine(sent, info);  // throws, naming the engines, when none fits
    a.note = fmt::format("the WES service requires a workflow engine: sent again with {}", a.request.engine);
    return a;
  }
  // A run_dir tag the server requires ("'run_dir' tag is required and missing").
  if (sent.tags.count("run_dir") == 0 && text::icontains(reason, "run_dir") &&
      (text::icontains(reason, "required") || text::icontains(reason, "missing")) && fresh(K::add_run_dir)) {
    Adjustment a{K::add_run_dir, sent, {}};
    auto id = sent.tags.count(std::string(kRequestIdTag)) ? sent.tags.at(std::string(kRequestIdTag)) : new_request_id();
    a.request.tags["run_dir"] = "impact-" + id;
    a.note = fmt::format("the WES service requires a run_dir tag: sent again with run_dir={}", a.request.tags["run_dir"]);
    return a;
  }
  // A bare attachment name refused where the server wants a relative file: URL.
  if (attached(sent, sent.workflow_url) && !has_scheme(sent.workflow_url) && sent.workflow_url.rfind("file:", 0) != 0 &&
      text::icontains(reason, "file:") && fresh(K::file_url)) {
    Adjustment a{K::file_url, sent, {}};
    a.request.workflow_url = "file:" + sent.workflow_url;
    a.note = fmt::format("the WES service wants a file: URL for the attached workflow: sent again as {}", a.request.workflow_url);
    return a;
  }
  return std::nullopt;
}

namespace {

// The text of an HTML page: tags dropped, entities for <, >, & and quotes decoded, the <title> left out.
std::string html_text(std::string_view html) {
  std::string out;
  for (std::size_t i = 0; i < html.size();) {
    if (html[i] == '<') {
      if (text::icontains(html.substr(i, 7), "<title")) {
        const auto close = html.find("</", i + 1);
        i = close == std::string_view::npos ? html.size() : close;
        continue;
      }
      const auto close = html.find('>', i);
      i = close == std::string_view::npos ? html.size() : close + 1;
      out += ' ';
      continue;
    }
    if (html[i] == '&') {
      bool decoded = false;
      for (auto [ent, ch] : {std::pair<std::string_view, char>{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'},
                             {"&quot;", '"'}, {"&#39;", '\''}, {"&#x27;", '\''}}) {
        if (html.substr(i, ent.size()) == ent) {
          out += ch;
          i += ent.size();
          decoded = true;
          break;
        }
      }
      if (decoded) continue;
    }
    out += html[i++];
  }
  return out;
}

}  // namespace

std::string server_reason(const http::Response& r) {
  std::string raw;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    for (const char* k : {"msg", "message", "detail", "error_description", "title", "error"}) {
      const auto* v = detail::member(j, k);
      if (v == nullptr || v->is_null()) continue;
      if (v->is_object() && v->contains("message")) v = &(*v)["message"];  // {"error": {"message": ...}}
      else if (v->is_object() && v->contains("errorMessage")) v = &(*v)["errorMessage"];
      raw = detail::as_text(*v);
      break;
    }
  } else if (j.is_string()) {
    raw = j.get<std::string>();
  } else if (!j.is_discarded()) {
    raw = {};
  } else {
    const auto ct = r.header("Content-Type");
    raw = ct && text::icontains(*ct, "html") ? html_text(r.body) : r.body;
  }
  // One line: runs of white space become one space; other control characters are shown, not sent to the terminal.
  std::string out;
  bool space = false;
  for (unsigned char c : raw) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  // A generic page ("500 Internal Server Error", Werkzeug's and sapporo's stock sentence) is no reason:
  // what is left without the stock phrases must say something.
  std::string rest = out;
  for (std::string_view stock :
       {"the server encountered an internal error and was unable to complete your request",
        "either the server is overloaded or there is an error in the application", "internal server error",
        "bad gateway", "service unavailable", "gateway timeout", "gateway time-out", "error"}) {
    while (true) {
      auto it = std::search(rest.begin(), rest.end(), stock.begin(), stock.end(),
                            [](char x, char y) { return text::lower(x) == text::lower(y); });
      if (it == rest.end()) break;
      rest.erase(it, it + static_cast<std::ptrdiff_t>(stock.size()));
    }
  }
  if (std::count_if(rest.begin(), rest.end(), [](unsigned char c) { return std::isalpha(c); }) < 4) return {};
  constexpr std::size_t kMax = 300;
  if (out.size() > kMax) {
    std::size_t cut = kMax - 3;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    out = out.substr(0, cut) + "...";
  }
  return out;
}

std::string flattened_name(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

bool is_server_path(std::string_view field) {
  if (field.rfind("file://", 0) == 0) return true;
  if (field.empty() || field.size() > 4096 || has_scheme(field)) return false;
  if (std::any_of(field.begin(), field.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }))
    return false;
  // "/data/runs/…/stdout", or relative to the run's folder (WESkit: ".weskit/2026-12-04T16:07:47.123456/stdout").
  return field.front() == '/' || (field.find('/') != std::string_view::npos && field.back() != '/');
}

}  // namespace impact::wes
