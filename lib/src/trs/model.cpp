// The TRS 2.x model: tools, versions, files and file wrappers read leniently and with bounds, ids and
// relative paths checked before they become URLs or file names.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/trs.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::trs {
namespace {

using nlohmann::json;
using detail::member;

constexpr std::size_t kMaxShort = 4096;       // ids, names, types, paths
constexpr std::size_t kMaxLong = 64 * 1024;   // descriptions
constexpr std::size_t kMaxList = 10000;       // entries of any list

std::string bounded(std::string s, std::size_t limit) {
  if (s.size() > limit) s.resize(limit);
  return s;
}

std::string text_of(const json& j, std::string_view key, std::size_t limit = kMaxShort) {
  return bounded(detail::string_member(j, key), limit);
}

// A string member, or a number written as text (WorkflowHub's ids and versions may come as numbers).
std::string id_of(const json& j, std::string_view key) {
  const auto* v = member(j, key);
  if (v == nullptr) return {};
  if (v->is_string()) return bounded(v->get<std::string>(), kMaxShort);
  if (v->is_number_integer()) return v->dump();
  return {};
}

std::vector<std::string> strings_of(const json& j, std::string_view key) {
  std::vector<std::string> out;
  const auto* v = member(j, key);
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.push_back(bounded(v->get<std::string>(), kMaxShort));
    return out;
  }
  if (!v->is_array()) return out;
  for (const auto& e : *v) {
    if (out.size() >= kMaxList) break;
    if (e.is_string()) out.push_back(bounded(e.get<std::string>(), kMaxShort));
  }
  return out;
}

std::vector<Checksum> checksums_of(const json& j) {
  std::vector<Checksum> out;
  const auto* v = member(j, "checksum");
  if (v == nullptr) return out;
  auto one = [&](const json& c) {
    Checksum s{text_of(c, "type"), text_of(c, "checksum")};
    if (!s.checksum.empty()) out.push_back(std::move(s));
  };
  if (v->is_object()) one(*v);
  else if (v->is_array())
    for (const auto& c : *v) {
      if (out.size() >= 64) break;
      one(c);
    }
  return out;
}

void add_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
  for (const auto& s : from)
    if (std::find(to.begin(), to.end(), s) == to.end()) to.push_back(s);
}

}  // namespace

std::vector<std::string> Tool::authors() const {
  std::vector<std::string> out;
  for (const auto& v : versions) add_unique(out, v.authors);
  return out;
}

std::vector<std::string> Tool::descriptor_types() const {
  std::vector<std::string> out;
  for (const auto& v : versions) add_unique(out, v.descriptor_types);
  return out;
}

ToolVersion parse_version(const json& doc, std::string_view origin) {
  if (!doc.is_object()) throw Error(ErrorKind::protocol, fmt::format("{}: a tool version is not a JSON object", origin));
  ToolVersion v;
  v.id = id_of(doc, "id");
  v.name = id_of(doc, "name");
  v.url = text_of(doc, "url");
  v.meta_version = text_of(doc, "meta_version");
  v.descriptor_types = strings_of(doc, "descriptor_type");
  for (auto& t : v.descriptor_types) t = bounded(t, 64);
  v.authors = strings_of(doc, "author");
  v.is_production = detail::bool_member(doc, "is_production");
  v.verified = detail::bool_member(doc, "verified");
  if (const auto* images = member(doc, "images"); images && images->is_array())
    for (const auto& i : *images) {
      if (v.images.size() >= 100) break;
      if (auto n = text_of(i, "image_name"); !n.empty()) v.images.push_back(std::move(n));
    }
  if (v.name.empty() && v.id.empty())
    throw Error(ErrorKind::protocol, fmt::format("{}: a tool version has neither id nor name", origin));
  return v;
}

Tool parse_tool(const json& doc, std::string_view origin) {
  if (!doc.is_object()) throw Error(ErrorKind::protocol, fmt::format("{}: a tool is not a JSON object", origin));
  Tool t;
  t.id = id_of(doc, "id");
  if (t.id.empty()) throw Error(ErrorKind::protocol, fmt::format("{}: a tool has no id", origin));
  t.url = text_of(doc, "url");
  t.name = text_of(doc, "name");
  t.description = text_of(doc, "description", kMaxLong);
  t.organization = text_of(doc, "organization");
  t.meta_version = text_of(doc, "meta_version");
  t.aliases = strings_of(doc, "aliases");
  if (const auto* c = member(doc, "toolclass")) t.tool_class = text_of(*c, "name");
  if (const auto* versions = member(doc, "versions"); versions && versions->is_array())
    for (const auto& v : *versions) {
      if (t.versions.size() >= kMaxList) break;
      try {
        t.versions.push_back(parse_version(v, origin));
      } catch (const Error&) {
        // one odd version does not hide the tool
      }
    }
  return t;
}

std::vector<Tool> parse_tools(const json& doc, std::string_view origin) {
  if (!doc.is_array()) throw Error(ErrorKind::protocol, fmt::format("{}: the tool list is not a JSON array", origin));
  std::vector<Tool> out;
  for (const auto& t : doc) {
    if (out.size() >= kMaxList) break;
    try {
      out.push_back(parse_tool(t, origin));
    } catch (const Error&) {
      // a tool without an id cannot be shown or fetched: skipped
    }
  }
  return out;
}

std::vector<ToolFile> parse_files(const json& doc, std::string_view origin) {
  if (!doc.is_array()) throw Error(ErrorKind::protocol, fmt::format("{}: the file list is not a JSON array", origin));
  std::vector<ToolFile> out;
  for (const auto& f : doc) {
    if (out.size() >= kMaxList) break;
    ToolFile tf{text_of(f, "path"), text_of(f, "file_type", 64), checksums_of(f)};
    if (!tf.path.empty()) out.push_back(std::move(tf));
  }
  return out;
}

FileWrapper parse_file_wrapper(const json& doc, std::string_view origin) {
  if (!doc.is_object()) throw Error(ErrorKind::protocol, fmt::format("{}: the file is not a JSON object", origin));
  FileWrapper w;
  if (const auto* c = member(doc, "content", json::value_t::string)) w.content = c->get<std::string>();
  w.url = text_of(doc, "url");
  w.checksums = checksums_of(doc);
  return w;
}

void to_json(json& j, const Checksum& c) { j = json{{"type", c.type}, {"checksum", c.checksum}}; }

void to_json(json& j, const ToolVersion& v) {
  j = json{{"id", v.id}, {"name", v.name}, {"url", v.url}, {"descriptor_type", v.descriptor_types},
           {"author", v.authors}, {"images", v.images}};
  if (v.is_production) j["is_production"] = *v.is_production;
  if (v.verified) j["verified"] = *v.verified;
  if (!v.meta_version.empty()) j["meta_version"] = v.meta_version;
}

void to_json(json& j, const Tool& t) {
  j = json{{"id", t.id}, {"url", t.url}, {"name", t.name}, {"description", t.description},
           {"organization", t.organization}, {"toolclass", t.tool_class}, {"aliases", t.aliases},
           {"versions", t.versions}};
  if (!t.meta_version.empty()) j["meta_version"] = t.meta_version;
}

void to_json(json& j, const ToolFile& f) {
  j = json{{"path", f.path}, {"file_type", f.file_type}, {"checksum", f.checksums}};
}

Ref parse_ref(std::string_view text) {
  Ref r;
  const auto colon = text.rfind(':');
  // "trs://..." or "https://..." are not ids with a version
  if (colon != std::string_view::npos && text.substr(colon).rfind("://", 0) != 0) {
    r.id = std::string(text.substr(0, colon));
    r.version = std::string(text.substr(colon + 1));
    if (r.version.empty()) throw Error(ErrorKind::usage, fmt::format("'{}': no version after ':'", text), "give ID:VERSION");
  } else {
    r.id = std::string(text);
  }
  if (r.id.empty()) throw Error(ErrorKind::usage, fmt::format("'{}': no workflow id", text), "give ID or ID:VERSION");
  for (unsigned char c : text)
    if (c < 0x20 || c == 0x7f)
      throw Error(ErrorKind::usage, "a workflow id or version holds a control character");
  return r;
}

std::string normalize_type(std::string_view type) {
  std::string t;
  for (char c : type) t += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (t.rfind("PLAIN_", 0) == 0) t = t.substr(6);
  static const std::set<std::string, std::less<>> known{"CWL", "WDL", "NFL", "SMK", "GALAXY"};
  if (!known.count(t))
    throw Error(ErrorKind::usage, fmt::format("unknown descriptor type '{}'", type), "use CWL, WDL, NFL, SMK or GALAXY");
  return t;
}

std::string tool_path(std::string_view id) { return "tools/" + percent_encode(id); }

std::string version_path(std::string_view id, std::string_view version) {
  return tool_path(id) + "/versions/" + percent_encode(version);
}

std::optional<std::string> safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > kMaxShort) return std::nullopt;
  std::string p(path);
  while (p.rfind("./", 0) == 0) p.erase(0, 2);
  if (p.empty() || p.front() == '/') return std::nullopt;
  std::string out;
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view part(p.data() + start, end - start);
    if (part == ".") {
      start = end + 1;
      continue;
    }
    if (part.empty() || part == ".." || part.size() > 255) return std::nullopt;
    for (unsigned char c : part)
      if (c < 0x20 || c == 0x7f || c == '\\') return std::nullopt;
    if (part.find(".impact-part") != std::string_view::npos || part.find(".impact-state") != std::string_view::npos)
      return std::nullopt;
    if (!out.empty()) out += '/';
    out += part;
    start = end + 1;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string trs_uri(const std::string& base_url, const std::string& id, const std::string& version,
                    const std::string& type) {
  auto u = Url::parse(base_url);
  if (!u) throw Error(ErrorKind::config, "the TRS registry's URL cannot be parsed");
  const bool default_port = (u->scheme == "https" && u->port == 443) || (u->scheme == "http" && u->port == 80);
  std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  std::string out = "trs://" + host + (default_port ? "" : ":" + std::to_string(u->port));
  std::string path = u->path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  return out + path + "/" + percent_encode(id) + "/" + percent_encode(version) + "/" + type;
}

std::optional<std::string> digest(std::string_view data, std::string_view type) {
  if (!drs::verifiable_checksum({{std::string(type), "x"}})) return std::nullopt;
  return drs::bytes_digest(data, type);
}

std::string verify(std::string_view data, const std::vector<Checksum>& sums, std::string_view what) {
  std::vector<drs::Checksum> ds;
  for (const auto& s : sums) ds.push_back({s.type, s.checksum});
  const auto best = drs::verifiable_checksum(ds);
  if (!best) return {};
  for (const auto& s : sums) {
    auto got = digest(data, s.type);
    if (!got) continue;
    std::string want;
    for (char c : s.checksum) want += text::lower(c);
    if (*got != want)
      throw Error(ErrorKind::protocol,
                  fmt::format("{}: {} checksum does not match (registry {}, computed {})", what, s.type,
                              bounded(s.checksum, 128), *got),
                  "the registry's file and its checksum disagree; try again later or tell its operators");
  }
  return best->type;
}

}  // namespace impact::trs
