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
    case ServiceKind::drs: return "drs";
    case ServiceKind::beacon: return "beacon";
    case ServiceKind::registry: return "registry";
    case ServiceKind::storage: return "storage";
    case ServiceKind::identity: return "identity";
    case ServiceKind::visa_issuer: return "visa-issuer";
    case ServiceKind::other: return "other";
  }
  return "other";
}

ServiceKind kind_of(const ServiceType& type) {
  std::string a = type.artifact;
  std::transform(a.begin(), a.end(), a.begin(), [](unsigned char c) { return std::tolower(c); });
  if (a == "wes") return ServiceKind::wes;
  if (a == "drs") return ServiceKind::drs;
  if (a == "beacon" || a == "beacon-aggregator") return ServiceKind::beacon;
  if (a == "service-registry") return ServiceKind::registry;
  if (a == "s3" || a == "object-storage" || a == "objectstorage") return ServiceKind::storage;
  if (a == "oidc" || a == "openid-connect" || a == "oidc-provider" || a == "aai" || a == "passport-broker")
    return ServiceKind::identity;
  if (a == "visa-issuer" || a == "passport-visa-issuer") return ServiceKind::visa_issuer;
  return ServiceKind::other;
}

ServiceKind ServiceInfo::kind() const { return kind_of(type); }

namespace {
constexpr std::array<std::string_view, 12> kStandard = {"id",          "name",      "type",      "description",
                                                        "organization", "contactUrl", "documentationUrl",
                                                        "createdAt",   "updatedAt", "environment", "version", "url"};
}

ServiceInfo parse_service_info(const nlohmann::json& doc, std::string_view origin) {
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

ServiceInfo fetch_service_info(http::Client& client, const std::string& base_url, std::string_view what) {
  http::Request req;
  req.url = join_url(base_url, "service-info");
  req.headers.push_back({"Accept", "application/json"});
  auto r = client.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, "fetching service-info of " + std::string(what));
  auto s = parse_service_info(parse_json_body(r, "service-info of " + std::string(what)), what);
  if (s.url.empty()) s.url = base_url;
  return s;
}

}  // namespace impact
