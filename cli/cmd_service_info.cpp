// impact service-info [wes|tes|drs|beacon|storage|trs|archive|htsget]
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "outcome.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/redact.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "impact/wes.hpp"

namespace impact::cli {
namespace {

struct Entry {
  std::string label;
  ServiceKind kind;
  std::string url;
};

// S3 has no service-info of its own: describe it from the profile and what the endpoint answers.
ServiceInfo storage_info(http::Client& client, const StorageConfig& st) {
  http::Request req;
  req.url = join_url(st.url, "");
  auto r = client.send(std::move(req));
  if (r.status >= 500) http::throw_for_status(r, "contacting the object storage");
  ServiceInfo s;
  s.id = "storage";
  s.name = "S3-compatible object storage";
  s.type = {"org.impact", "s3", "1.0.0"};
  s.url = st.url;
  if (auto server = r.header("Server")) s.version = std::string(*server);
  s.extra = {{"bucket", st.bucket}, {"region", st.region}, {"sts", st.sts}, {"http_status", r.status}};
  return s;
}

// htsget answers service-info per endpoint (/reads/service-info, /variants/service-info): the endpoint's
// formats and parameters go into `extra`.
ServiceInfo htsget_info(Context& ctx, http::Client& client, const Profile& p, const Entry& e) {
  const auto endpoint = e.label == "htsget reads" ? htsget::Endpoint::reads : htsget::Endpoint::variants;
  htsget::TokenFn token;
  if (auth::Credentials* creds = ctx.login_if_any(p)) token = [creds, url = e.url] { return creds->bearer_token(url); };
  htsget::EndpointInfo info = htsget::Client(client, e.url, std::move(token)).info(endpoint);
  ServiceInfo s = std::move(info.service);
  s.url = e.url + "/" + std::string(htsget::to_string(endpoint));
  s.extra["formats"] = info.formats;
  if (!info.datatype.empty()) s.extra["datatype"] = info.datatype;
  if (info.fields_effective) s.extra["fieldsParametersEffective"] = *info.fields_effective;
  if (info.tags_effective) s.extra["tagsParametersEffective"] = *info.tags_effective;
  return s;
}

void run(Context& ctx, const std::string& which) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  std::vector<Entry> entries;
  auto want = [&](const char* k) { return which.empty() || which == k; };
  if (want("wes") && !p.wes.empty()) entries.push_back({"wes", ServiceKind::wes, p.wes});
  if (want("tes") && !p.tes.empty()) entries.push_back({"tes", ServiceKind::tes, p.tes});
  if (want("archive") && !p.archive.empty()) entries.push_back({"archive", ServiceKind::archive, p.archive});
  if (want("drs"))
    for (const auto& [n, u] : p.drs) entries.push_back({"drs " + n, ServiceKind::drs, u});
  if (want("beacon"))
    for (const auto& [n, u] : p.beacons) entries.push_back({"beacon " + n, ServiceKind::beacon, u});
  if (want("trs"))
    for (const auto& [n, u] : p.trs) entries.push_back({"trs " + n, ServiceKind::trs, u});
  if (want("htsget") && !p.htsget.empty()) {
    entries.push_back({"htsget reads", ServiceKind::htsget, p.htsget});
    entries.push_back({"htsget variants", ServiceKind::htsget, p.htsget});
  }
  if (want("storage") && p.storage) entries.push_back({"storage", ServiceKind::storage, p.storage->url});
  if (entries.empty())
    throw Error(ErrorKind::config,
                "profile '" + p.name + "' has no " + (which.empty() ? std::string("services") : which + " service"),
                "run: impact profile show");

  auto client = ctx.client();
  std::vector<ServiceInfo> found;
  std::vector<std::string> labels;  // parallel to `found`
  nlohmann::json failures = nlohmann::json::array();
  Outcome outcome(ctx, "services");
  for (const auto& e : entries) {
    try {
      ServiceInfo s = e.kind == ServiceKind::storage ? storage_info(client, *p.storage)
                      : e.kind == ServiceKind::wes   ? wes::Client(client, e.url, {}).service_info()  // finds the API root
                      : e.kind == ServiceKind::htsget ? htsget_info(ctx, client, p, e)
                                                     : fetch_service_info(client, e.url, e.label);
      if (!s.note.empty() && !ctx.json()) ctx.term().note(e.label + ": " + s.note);
      if (s.url.empty()) s.url = e.url;
      found.push_back(std::move(s));
      labels.push_back(e.label);
      outcome.succeeded();
    } catch (const Error& err) {
      if (err.kind() == ErrorKind::cancelled) throw;
      failures.push_back(outcome.failed({{"service", e.label}, {"url", redact_url(e.url)}}, err, e.label));
    }
  }
  if (ctx.json()) {
    ctx.term().print_json({{"services", found}, {"failed", failures}}, false, "services");
  } else if (!found.empty()) {
    Table t{{"SERVICE", "NAME", "TYPE", "VERSION", "ORGANIZATION", "URL"}, {}, {1, 4}};
    for (std::size_t i = 0; i < found.size(); ++i) {
      const auto& s = found[i];
      t.rows.push_back({labels[i], s.name, s.type.group + ":" + s.type.artifact + ":" + s.type.version, s.version,
                        s.organization_name, redact_url(s.url)});
    }
    ctx.term().print_table(t, ctx.format());
  }
  outcome.finish();
}

}  // namespace

void register_service_info(CLI::App& app, Context& ctx) {
  auto which = std::make_shared<std::string>();
  auto* cmd = add_command(app, "service-info");
  cmd->add_option("service", *which, "Only this kind of service")->check(CLI::IsMember({"wes", "tes", "drs", "beacon", "storage", "trs", "archive", "htsget"}));
  cmd->footer("Examples:\n  impact service-info\n  impact service-info wes --json");
  cmd->callback(ctx.action([&ctx, which] { run(ctx, *which); }));
}

}  // namespace impact::cli
