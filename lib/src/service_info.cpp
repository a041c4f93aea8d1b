#include "impact/service_info.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact {

std::string_view to_string(ServiceKind kind) noexcept {
  switch (kind) {
    case ServiceKind::wes: return "wes";
    case ServiceKind::tes: return "tes";
    case ServiceKind::drs: return "drs";
    case ServiceKind::beacon: return "beacon";
    case ServiceKind::registry: return "registry";
    case ServiceKind::storage: return "storage";
    case ServiceKind::identity: return "identity";
    case ServiceKind::visa_issuer: return "visa-issuer";
    case ServiceKind::trs: return "trs";
    case ServiceKind::archive: return "archive";
    case ServiceKind::htsget: return "htsget";
    case ServiceKind::other: return "other";
  }
  return "other";
}

ServiceKind kind_of(const ServiceType& type) {
  std::string a = type.artifact;
  std::transform(a.begin(), a.end(), a.begin(), [](unsigned char c) { return std::tolower(c); });
  if (a == "wes") return ServiceKind::wes;
  if (a == "tes") return ServiceKind::tes;
  if (a == "drs") return ServiceKind::drs;
  if (a == "beacon" || a == "beacon-aggregator") return ServiceKind::beacon;
  if (a == "service-registry") return ServiceKind::registry;
  if (a == "s3" || a == "object-storage" || a == "objectstorage") return ServiceKind::storage;
  if (a == "oidc" || a == "openid-connect" || a == "oidc-provider" || a == "aai" || a == "passport-broker")
    return ServiceKind::identity;
  if (a == "visa-issuer" || a == "passport-visa-issuer") return ServiceKind::visa_issuer;
  if (a == "trs" || a == "tool-registry") return ServiceKind::trs;
  if (a == "sda-download" || a == "archive") return ServiceKind::archive;
  if (a == "htsget") return ServiceKind::htsget;
  return ServiceKind::other;
}

ServiceKind ServiceInfo::kind() const {
  // The SDA download service calls itself a DRS (org.ga4gh:drs:1.0.0) in its service-info; its id tells it
  // apart (se.nbis.sda.download; docs/servers.md).
  const std::string_view suffix = "sda.download";
  if (id.size() >= suffix.size() && id.compare(id.size() - suffix.size(), suffix.size(), suffix) == 0) return ServiceKind::archive;
  return kind_of(type);
}

namespace {
constexpr std::array<std::string_view, 12> kStandard = {"id",          "name",      "type",      "description",
                                                        "organization", "contactUrl", "documentationUrl",
                                                        "createdAt",   "updatedAt", "environment", "version", "url"};
}

bool looks_like_wes_service_info(const nlohmann::json& doc) {
  if (!doc.is_object()) return false;
  for (const char* k : {"workflow_type_versions", "supported_wes_versions", "workflow_engine_versions"})
    if (doc.contains(k)) return true;
  const auto t = doc.find("type");
  if (t == doc.end() || !t->is_object()) return false;
  return kind_of({"", detail::string_member(*t, "artifact"), ""}) == ServiceKind::wes;
}

namespace {

// The version of the WES specification a WES 1.0 document claims: the trailing x.y.z of its first
// supported_wes_versions entry ("1.0.0", or sapporo's "sapporo-wes-1.1.0"), else 1.0.0.
std::string wes_spec_version(const nlohmann::json& doc) {
  const auto versions = detail::strings_member(doc, "supported_wes_versions");
  if (versions.empty()) return "1.0.0";
  const std::string& v = versions.front();
  auto start = v.find_last_not_of("0123456789.");
  std::string tail = start == std::string::npos ? v : v.substr(start + 1);
  if (tail.empty() || tail.front() == '.' || tail.find('.') == std::string::npos) return "1.0.0";
  return tail;
}

// A WES's service-info without (some of) the GA4GH fields: what there is, and a note.
ServiceInfo wes_without_ga4gh_fields(const nlohmann::json& doc) {
  using detail::string_member;
  ServiceInfo s;
  s.id = string_member(doc, "id");
  s.name = string_member(doc, "name");
  s.version = string_member(doc, "version");
  s.type = {"org.ga4gh", "wes", wes_spec_version(doc)};
  if (const auto org = doc.find("organization"); org != doc.end() && org->is_object()) {
    s.organization_name = string_member(*org, "name");
    s.organization_url = string_member(*org, "url");
  }
  s.description = string_member(doc, "description");
  s.contact_url = string_member(doc, "contact_info_url");
  s.note = "WES service-info without the GA4GH service-info fields (id, name, type, organization, version)";
  return s;
}

}  // namespace

ServiceInfo parse_service_info(const nlohmann::json& doc, std::string_view origin, ServiceKind expect) {
  if (expect == ServiceKind::wes && looks_like_wes_service_info(doc)) {
    try {
      auto s = parse_service_info(doc, origin);
      if (s.kind() == ServiceKind::wes) return s;
    } catch (const Error&) {
    }
    ServiceInfo s = wes_without_ga4gh_fields(doc);
    s.extra = nlohmann::json::object();
    for (const auto& [k, v] : doc.items())
      if (std::find(kStandard.begin(), kStandard.end(), k) == kStandard.end()) s.extra[k] = v;
    return s;
  }
  auto bad = [&](const std::string& what) {
    return Error(ErrorKind::protocol, "invalid service-info from " + std::string(origin) + ": " + what,
                 "the service does not follow GA4GH service-info 1.0; tell its operators");
  };
  if (!doc.is_object()) throw bad("not a JSON object");
  auto req = [&](const nlohmann::json& o, const char* key) -> std::string {
    const auto* v = detail::member(o, key, nlohmann::json::value_t::string);
    if (v == nullptr) throw bad(std::string("'") + key + "' is missing or not a string");
    return v->get<std::string>();
  };
  using detail::string_member;
  ServiceInfo s;
  s.id = req(doc, "id");
  s.name = req(doc, "name");
  s.version = req(doc, "version");
  auto t = doc.find("type");
  if (t == doc.end() || !t->is_object()) throw bad("'type' is missing");
  s.type = {req(*t, "group"), req(*t, "artifact"), req(*t, "version")};
  auto org = doc.find("organization");
  if (org == doc.end() || !org->is_object()) throw bad("'organization' is missing");
  s.organization_name = req(*org, "name");
  s.organization_url = string_member(*org, "url");
  s.description = string_member(doc, "description");
  s.environment = string_member(doc, "environment");
  s.contact_url = string_member(doc, "contactUrl");
  s.documentation_url = string_member(doc, "documentationUrl");
  s.created_at = string_member(doc, "createdAt");
  s.updated_at = string_member(doc, "updatedAt");
  s.url = string_member(doc, "url");
  s.extra = nlohmann::json::object();
  for (const auto& [k, v] : doc.items())
    if (std::find(kStandard.begin(), kStandard.end(), k) == kStandard.end()) s.extra[k] = v;
  return s;
}

void to_json(nlohmann::json& j, const ServiceInfo& s) {
  j = nlohmann::json{{"id", s.id},
                     {"name", s.name},
                     {"kind", to_string(s.kind())},
                     {"type", {{"group", s.type.group}, {"artifact", s.type.artifact}, {"version", s.type.version}}},
                     {"version", s.version},
                     {"url", s.url},
                     {"organization", {{"name", s.organization_name}, {"url", s.organization_url}}}};
  auto opt = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  opt("description", s.description);
  opt("environment", s.environment);
  opt("contactUrl", s.contact_url);
  opt("documentationUrl", s.documentation_url);
  opt("createdAt", s.created_at);
  opt("updatedAt", s.updated_at);
  opt("note", s.note);
  if (!s.extra.empty()) j["details"] = s.extra;
}

nlohmann::json parse_json_body(const http::Response& r, std::string_view what) {
  if (detail::json_depth(r.body) > detail::kMaxJsonDepth)
    throw Error(ErrorKind::protocol,
                fmt::format("{}: the answer nests JSON deeper than {} levels", what, detail::kMaxJsonDepth),
                "impact refuses such answers; ask the service's operators")
        .with_url(r.url);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    throw Error(ErrorKind::protocol, std::string(what) + ": the server did not answer with JSON",
                "check that the URL points at the API itself")
        .with_url(r.url);
  return j;
}

ServiceInfo fetch_service_info(http::Client& client, const std::string& base_url, std::string_view what,
                               ServiceKind expect) {
  http::Request req;
  req.url = join_url(base_url, "service-info");
  req.headers.push_back({"Accept", "application/json"});
  auto r = client.send(std::move(req));
  if (expect == ServiceKind::wes && r.status == 404) {
    ServiceInfo s;
    s.type = {"org.ga4gh", "wes", ""};
    s.url = base_url;
    s.note = "the WES has no service-info (HTTP 404)";
    s.extra = nlohmann::json::object();
    return s;
  }
  if (!r.ok()) http::throw_for_status(r, "fetching service-info of " + std::string(what));
  auto s = parse_service_info(parse_json_body(r, "service-info of " + std::string(what)), what, expect);
  if (s.url.empty()) s.url = base_url;
  return s;
}

}  // namespace impact
