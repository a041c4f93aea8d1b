// A TRS 2.x client for one registry: listings that follow the registry's own `next_page` links (bounded in
// pages, tools and time), tools, versions, file lists and descriptors.
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/service_info.hpp"
#include "impact/trs.hpp"
#include "impact/url.hpp"

namespace impact::trs {
namespace {

constexpr std::size_t kMaxListing = 16u << 20;   // one page of tools
constexpr std::size_t kMaxDocument = 8u << 20;   // a tool, a version, a file list, one file

void add_param(std::string& query, std::string_view key, const std::string& value) {
  if (value.empty()) return;
  query += query.empty() ? "?" : "&";
  query.append(key).append("=").append(percent_encode(value));
}

// The next page's URL on the registry's origin, or "" when `link` points elsewhere or cannot be read.
// Registries behind a proxy may write their own scheme or port into the link (Dockstore builds it from
// its configuration), so only the host must match; the request goes to the registry's origin.
std::string next_url(const Url& base, std::string_view link) {
  if (link.empty()) return {};
  if (link.front() == '/') return base.origin() + std::string(link);
  auto u = Url::parse(link);
  if (!u || u->host != base.host) return {};
  return base.origin() + u->path + (u->query.empty() ? "" : "?" + u->query);
}

}  // namespace

Client::Client(http::Client& http, Registry registry) : http_(http), registry_(std::move(registry)) {
  require_allowed_url(registry_.url, "the TRS registry '" + registry_.name + "'", ErrorKind::config);
}

nlohmann::json Client::get_json(const std::string& url, std::string_view what, bool server_url) {
  http::Request req;
  req.url = url;
  req.server_url = server_url;
  req.max_body = kMaxDocument;
  req.headers.push_back({"Accept", "application/json"});
  auto r = http_.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, what);
  return parse_json_body(r, what);
}

SearchResult Client::search(const Query& q) {
  const auto base = Url::parse(registry_.url);
  if (!base) throw Error(ErrorKind::config, "the TRS registry's URL cannot be parsed");
  const auto started = std::chrono::steady_clock::now();
  std::string query;
  add_param(query, "name", q.name);
  add_param(query, "description", q.description);
  add_param(query, "toolClass", q.tool_class);
  add_param(query, "descriptorType", q.descriptor_type);
  add_param(query, "limit", std::to_string(std::max<std::size_t>(1, q.page_size)));
  std::string url = join_url(registry_.url, "tools") + query;

  SearchResult out;
  std::set<std::string> seen_ids, seen_urls;
  const std::string what = fmt::format("listing the tools of TRS registry '{}'", registry_.name);
  while (!url.empty()) {
    if (out.pages >= q.max_pages) {
      out.truncated = true;
      out.stopped_by = "pages";
      break;
    }
    if (std::chrono::steady_clock::now() - started > q.deadline) {
      out.truncated = true;
      out.stopped_by = "time";
      break;
    }
    if (!seen_urls.insert(url).second) break;  // a next_page pointing back: the registry's loop, not more tools
    http::Request req;
    req.url = url;
    req.server_url = out.pages > 0;
    req.max_body = kMaxListing;
    req.headers.push_back({"Accept", "application/json"});
    auto r = http_.send(std::move(req));
    if (!r.ok()) http::throw_for_status(r, what);
    auto tools = parse_tools(parse_json_body(r, what), "TRS registry '" + registry_.name + "'");
    ++out.pages;
    std::size_t fresh = 0;
    for (auto& t : tools) {
      if (!seen_ids.insert(t.id).second) continue;
      if (out.tools.size() >= q.max_items) {
        out.truncated = true;
        out.stopped_by = "items";
        return out;
      }
      out.tools.push_back(std::move(t));
      ++fresh;
    }
    if (fresh == 0) break;  // an empty page (or only repeats) ends the listing
    const auto link = r.header("next_page");
    url = link ? next_url(*base, *link) : std::string();
    if (out.tools.size() >= q.max_items && !url.empty()) {
      out.truncated = true;
      out.stopped_by = "items";
      break;
    }
  }
  return out;
}

Tool Client::tool(const std::string& id) {
  auto doc = get_json(join_url(registry_.url, tool_path(id)),
                      fmt::format("reading tool '{}' from TRS registry '{}'", id, registry_.name));
  auto t = parse_tool(doc, "TRS registry '" + registry_.name + "'");
  return t;
}

ToolVersion Client::version(const std::string& id, const std::string& version) {
  auto doc = get_json(join_url(registry_.url, version_path(id, version)),
                      fmt::format("reading version '{}' of '{}' from TRS registry '{}'", version, id, registry_.name));
  return parse_version(doc, "TRS registry '" + registry_.name + "'");
}

std::optional<std::vector<ToolFile>> Client::files(const std::string& id, const std::string& version,
                                                   const std::string& type) {
  http::Request req;
  req.url = join_url(registry_.url, version_path(id, version) + "/" + type + "/files");
  req.max_body = kMaxDocument;
  req.headers.push_back({"Accept", "application/json"});
  auto r = http_.send(std::move(req));
  if (r.status == 404 || r.status == 405 || r.status == 501) {
    // 404 is also "no such version or type": the caller's descriptor request tells those apart.
    return std::nullopt;
  }
  const std::string what = fmt::format("listing the files of '{}:{}' ({}) in TRS registry '{}'", id, version, type,
                                       registry_.name);
  if (!r.ok()) http::throw_for_status(r, what);
  return parse_files(parse_json_body(r, what), "TRS registry '" + registry_.name + "'");
}

FileWrapper Client::descriptor(const std::string& id, const std::string& version, const std::string& type,
                               const std::string& relative_path) {
  std::string path = version_path(id, version) + "/" + type + "/descriptor";
  if (!relative_path.empty()) path += "/" + percent_encode(relative_path);  // one segment, as the spec's template has it
  const std::string what =
      relative_path.empty()
          ? fmt::format("reading the {} descriptor of '{}:{}' from TRS registry '{}'", type, id, version, registry_.name)
          : fmt::format("reading '{}' of '{}:{}' from TRS registry '{}'", relative_path, id, version, registry_.name);
  return parse_file_wrapper(get_json(join_url(registry_.url, path), what), "TRS registry '" + registry_.name + "'");
}

}  // namespace impact::trs
