// Filling a profile from a GA4GH Service Registry (GET /services).
#pragma once

#include <string>
#include <vector>

#include "impact/config.hpp"
#include "impact/http.hpp"
#include "impact/service_info.hpp"

namespace impact {

struct Discovery {
  Profile profile;                    // registry, issuer, beacons, drs, wes, storage, visa issuers
  std::vector<ServiceInfo> services;  // everything the registry listed
  std::vector<std::string> notes;     // entries that were skipped, and why
};

// Lists the registry's services and maps each by its service-info type: wes, drs, beacon, s3 storage
// (org.impact:s3), identity (issuer, client_id), visa issuers (issuer, jku) and TRS registries.
Discovery discover(http::Client& client, const std::string& registry_url, const std::string& profile_name);

// Short names for services: the last dot-separated part of the id ("org.x.beacon.public" -> "public"),
// made unique within `taken` by falling back to the whole id.
std::string short_service_name(const std::string& id, const std::map<std::string, std::string>& taken);

}  // namespace impact
