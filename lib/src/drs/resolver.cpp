// Resolution asks GET <resolver>/<prefix>:<accession>. Two answer styles are understood: a redirect to the
// object's URL (n2t.net), or identifiers.org's JSON (payload.resolvedResources[].compactIdentifierResolvedUrl).
// Either gives https://host/…/ga4gh/drs/v1/objects/<accession>; the part before /objects/ is the base URL,
// which serves every accession of that prefix, so it is what the cache keeps.
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "drs/resolver.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::drs::detail {
namespace {

using nlohmann::json;

long long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::filesystem::path cache_file(const Settings& s) { return s.cache_dir / "drs-resolver.json"; }

json load_cache(const Settings& s) {
  if (s.cache_dir.empty()) return json::object();
  std::error_code ec;
  if (!std::filesystem::exists(cache_file(s), ec)) return json::object();
  try {
    json j = impact::detail::parse_json(read_file(cache_file(s), 1u << 20));
    return j.is_object() ? j : json::object();
  } catch (const Error&) {
    return json::object();  // an unreadable cache is only a cache
  }
}

std::string resolved_url(const http::Response& r, const std::string& asked, std::string_view what) {
  if (r.url != asked && r.ok()) return r.url;  // followed a redirect: where it led is the object's URL
  if (!r.ok()) http::throw_for_status(r, what);
  json j = parse_json_body(r, what);
  const json* list = nullptr;
  if (j.is_object() && j.contains("payload") && j["payload"].is_object() && j["payload"].contains("resolvedResources"))
    list = &j["payload"]["resolvedResources"];
  if (list && list->is_array()) {
    std::string first;
    for (const auto& res : *list) {
      const auto* resolved = impact::detail::member(res, "compactIdentifierResolvedUrl", json::value_t::string);
      if (resolved == nullptr) continue;
      std::string u = resolved->get<std::string>();
      if (u.rfind("https://", 0) == 0) return u;
      if (first.empty()) first = u;
    }
    if (!first.empty()) return first;
  }
  throw Error(ErrorKind::protocol, fmt::format("{}: the resolver named no URL", what));
}

}  // namespace

std::string resolve_compact(http::Client& http, const Settings& s, const Uri& uri) {
  std::string prefix = uri.prefix;
  for (char& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  json cache = load_cache(s);
  if (auto it = cache.find(prefix); it != cache.end() && it->is_object()) {
    const json& e = *it;
    if (e.value("resolver", "") == s.profile.drs_resolver && now_s() - e.value("at", 0LL) < s.resolver_ttl.count() &&
        impact::detail::member(e, "base", json::value_t::string) != nullptr)
      return e["base"].get<std::string>();
  }
  if (s.profile.drs_resolver.empty())
    throw Error(ErrorKind::config,
                fmt::format("{} is a compact identifier, and profile '{}' has no DRS resolver", uri.text, s.profile.name))
        .with_remedy(Remedy::drs_resolver);
  const std::string what = fmt::format("resolving {} with {}", uri.text, redact_url(s.profile.drs_resolver));
  http::Request req;
  req.url = join_url(s.profile.drs_resolver, percent_encode(uri.prefix) + ":" + percent_encode(uri.accession));
  req.headers.push_back({"Accept", "application/json"});
  const std::string asked = req.url;
  const std::string url = resolved_url(http.send(std::move(req)), asked, what);
  const auto pos = url.rfind("/objects/");
  if (pos == std::string::npos || pos == 0)
    throw Error(ErrorKind::protocol, fmt::format("{}: {} is not a DRS object URL", what, redact_url(url)),
                "the prefix may not name a DRS service");
  const std::string base = url.substr(0, pos);
  require_allowed_url(base, "the DRS server of " + uri.text, ErrorKind::protocol);
  if (!s.cache_dir.empty()) {
    cache[prefix] = {{"base", base}, {"resolver", s.profile.drs_resolver}, {"at", now_s()}};
    try {
      ensure_private_dir(s.cache_dir);
      write_file_atomic(cache_file(s), cache.dump(2) + "\n");
    } catch (const Error&) {
      // Not being able to cache is no reason to fail the command.
    }
  }
  return base;
}

}  // namespace impact::drs::detail
