#include "impact/registry.hpp"
#include "impact/htsget.hpp"

#include "impact/error.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact {

std::string short_service_name(const std::string& id, const std::map<std::string, std::string>& taken) {
  auto dot = id.rfind('.');
  std::string name = dot == std::string::npos ? id : id.substr(dot + 1);
  if (name.empty() || taken.count(name)) name = id;
  return name;
}

namespace {
std::string field(const nlohmann::json& extra, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (const auto* v = detail::member(extra, k, nlohmann::json::value_t::string)) return v->get<std::string>();
  }
  return {};
}
}  // namespace

Discovery discover(http::Client& client, const std::string& registry_url, const std::string& profile_name) {
  require_allowed_url(registry_url, "the registry URL");
  Discovery d;
  d.profile.name = profile_name;
  d.profile.registry = registry_url;

  http::Request req;
  req.url = join_url(registry_url, "services");
  req.headers.push_back({"Accept", "application/json"});
  auto r = client.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, "listing the services of the registry");
  auto doc = parse_json_body(r, "the service registry");
  if (!doc.is_array())
    throw Error(ErrorKind::protocol, "the service registry did not answer with a list of services",
                "check that the URL is a GA4GH Service Registry (GET /services)")
        .with_url(r.url);

  for (const auto& entry : doc) {
    ServiceInfo s;
    try {
      s = parse_service_info(entry, "the registry");
    } catch (const Error& e) {
      d.notes.push_back(std::string("skipped an entry: ") + e.what());
      continue;
    }
    if (s.url.empty()) {
      d.notes.push_back("skipped " + s.id + ": the registry gives no url for it");
      continue;
    }
    try {
      require_allowed_url(s.url, "service " + s.id, ErrorKind::protocol);
    } catch (const Error& e) {
      d.notes.push_back("skipped " + s.id + ": " + e.what());
      continue;
    }
    Profile& p = d.profile;
    switch (s.kind()) {
      case ServiceKind::wes:
        if (!p.wes.empty()) d.notes.push_back("several WES services listed; using " + p.wes + ", not " + s.url);
        else p.wes = s.url;
        break;
      case ServiceKind::tes:
        if (!p.tes.empty()) d.notes.push_back("several TES services listed; using " + p.tes + ", not " + s.url);
        else p.tes = s.url;
        break;
      case ServiceKind::archive:
        if (!p.archive.empty()) d.notes.push_back("several archives listed; using " + p.archive + ", not " + s.url);
        else p.archive = s.url;
        break;
      case ServiceKind::htsget: {
        // Registries list the reads and the variants endpoint of one server as two services.
        const std::string base = htsget::base_url_of(s.url);
        if (p.htsget.empty()) p.htsget = base;
        else if (p.htsget != base) d.notes.push_back("several htsget services listed; using " + p.htsget + ", not " + base);
        break;
      }
      case ServiceKind::drs: p.drs[short_service_name(s.id, p.drs)] = s.url; break;
      case ServiceKind::beacon: p.beacons[short_service_name(s.id, p.beacons)] = s.url; break;
      case ServiceKind::trs: p.trs[short_service_name(s.id, p.trs)] = s.url; break;
      case ServiceKind::storage: {
        StorageConfig st;
        st.url = s.url;
        st.bucket = field(s.extra, {"results_bucket", "bucket"});
        if (auto region = field(s.extra, {"region"}); !region.empty()) st.region = region;
        st.sts = field(s.extra, {"sts_url", "sts"});
        if (auto prefix = field(s.extra, {"result_prefix"}); !prefix.empty()) st.result_prefix = prefix;
        p.storage = st;
        break;
      }
      case ServiceKind::identity: {
        p.issuer = field(s.extra, {"issuer"});
        if (p.issuer.empty()) p.issuer = s.url;
        p.client_id = field(s.extra, {"client_id", "public_client_id"});
        break;
      }
      case ServiceKind::visa_issuer: {
        std::string iss = field(s.extra, {"issuer", "iss"});
        std::string jku = field(s.extra, {"jku", "jwks_uri"});
        if (iss.empty() || jku.empty()) d.notes.push_back("skipped visa issuer " + s.id + ": no issuer/jku given");
        else p.trusted_visa_issuers[iss] = jku;
        break;
      }
      case ServiceKind::registry: break;
      case ServiceKind::other:
        d.notes.push_back("ignored " + s.id + " (type " + s.type.group + ":" + s.type.artifact + ")");
        break;
    }
    d.services.push_back(std::move(s));
  }
  d.profile.validate();
  return d;
}

}  // namespace impact
