// GA4GH service-info 1.0.0: the model, and how to fetch it from a service.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"

namespace impact {

enum class ServiceKind { wes, drs, beacon, registry, storage, identity, visa_issuer, other };
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

  ServiceKind kind() const;
};

// Reads a service-info document. Missing required fields throw Error(protocol) naming `origin`.
ServiceInfo parse_service_info(const nlohmann::json& doc, std::string_view origin);
void to_json(nlohmann::json& j, const ServiceInfo& s);

// Which kind a service-info type names ("org.ga4gh:wes:1.1.0" -> wes). Unknown artifacts are `other`.
ServiceKind kind_of(const ServiceType& type);

// GET <base>/service-info and parse it. `what` names the service for messages ("WES", "beacon 'public'").
ServiceInfo fetch_service_info(http::Client& client, const std::string& base_url, std::string_view what);

// Parses a JSON body, throwing Error(protocol) naming `what` when it is not JSON.
nlohmann::json parse_json_body(const http::Response& r, std::string_view what);

}  // namespace impact
