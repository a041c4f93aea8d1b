// GA4GH service-info 1.0.0: the model, and how to fetch it from a service.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"

namespace impact {

enum class ServiceKind { wes, tes, drs, beacon, registry, storage, identity, visa_issuer, trs, archive, htsget, other };
std::string_view to_string(ServiceKind kind) noexcept;

struct ServiceType {
  std::string group, artifact, version;
};

struct ServiceInfo {
  std::string id, name, description, version, environment;
  std::string organization_name, organization_url, contact_url, documentation_url;
  std::string created_at, updated_at;
  ServiceType type;
  std::string url;        // where it lives (from a registry entry, or where we fetched it)
  nlohmann::json extra;   // the service's own fields beyond service-info (WES workflow types, DRS limits…)
  std::string note;       // what was missing, for a WES that speaks WES 1.0 service-info or has none

  ServiceKind kind() const;
};

// Reads a service-info document. Missing required fields throw Error(protocol) naming `origin`, except when
// `expect` is wes: WES 1.0 (and sapporo's, WESkit's) service-info has only the WES fields
// (workflow_type_versions, supported_wes_versions, ...), no GA4GH id/name/type/organization/version; such a
// document is read as a WES with `note` saying so. Other kinds stay strict.
ServiceInfo parse_service_info(const nlohmann::json& doc, std::string_view origin,
                               ServiceKind expect = ServiceKind::other);
// Whether a document is a WES's service-info: type artifact "wes", or one of the WES fields.
bool looks_like_wes_service_info(const nlohmann::json& doc);
void to_json(nlohmann::json& j, const ServiceInfo& s);

// Which kind a service-info type names ("org.ga4gh:wes:1.1.0" -> wes). Unknown artifacts are `other`.
ServiceKind kind_of(const ServiceType& type);

// GET <base>/service-info and parse it. `what` names the service for messages ("WES", "beacon 'public'").
// With `expect` wes, a 404 is no error (service-info is optional for a WES): the result then has only
// the kind, the URL and a note.
ServiceInfo fetch_service_info(http::Client& client, const std::string& base_url, std::string_view what,
                               ServiceKind expect = ServiceKind::other);

// Parses a JSON body, throwing Error(protocol) naming `what` when it is not JSON.
nlohmann::json parse_json_body(const http::Response& r, std::string_view what);

}  // namespace impact
