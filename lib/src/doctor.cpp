#include "impact/doctor.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/retry.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact {

std::string_view to_string(CheckStatus s) noexcept {
  switch (s) {
    case CheckStatus::ok: return "ok";
    case CheckStatus::warn: return "warn";
    case CheckStatus::fail: return "fail";
  }
  return "fail";
}

bool DoctorReport::ok() const {
  for (const auto& c : checks)
    if (c.status == CheckStatus::fail) return false;
  return true;
}

void to_json(nlohmann::json& j, const Check& c) {
  j = {{"service", c.service}, {"url", c.url}, {"check", c.name}, {"status", to_string(c.status)}, {"detail", c.detail}};
  if (!c.hint.empty()) j["hint"] = c.hint;
}

void to_json(nlohmann::json& j, const DoctorReport& r) { j = {{"ok", r.ok()}, {"checks", r.checks}}; }

namespace {

enum class Probe { service_info, discovery, storage };

struct Target {
  std::string service;
  std::string base;
  Probe probe;
  ServiceKind expect = ServiceKind::other;
};

std::string ms(double seconds) { return fmt::format("{:.0f} ms", seconds * 1000); }

void check_reach(DoctorReport& rep, const Target& t, const http::Outcome& o) {
  Check c{t.service, redact_url(t.base), "reach", CheckStatus::ok, {}, {}, Remedy::none};
  if (o.error) {
    try {
      std::rethrow_exception(o.error);
    } catch (const Error& e) {
      c.status = CheckStatus::fail;
      static constexpr const char* phase_names[] = {"", "DNS: ", "TCP: ", "TLS: ", ""};
      c.detail = phase_names[static_cast<int>(e.phase())] + std::string(e.what());
      c.hint = e.hint();
      c.remedy = e.remedy();
    } catch (const std::exception& e) {
      c.status = CheckStatus::fail;
      c.detail = redact(e.what());
    }
    rep.checks.push_back(std::move(c));
    return;
  }
  const auto& tm = o.response->timings;
  c.detail = fmt::format("DNS {}, TCP {}", ms(tm.dns), ms(tm.connect));
  if (tm.tls > 0) c.detail += ", TLS " + ms(tm.tls);
  c.detail += fmt::format(", first byte {}", ms(tm.first_byte));
  rep.checks.push_back(std::move(c));
}

void check_api(DoctorReport& rep, const Target& t, const http::Response& r) {
  Check c{t.service, redact_url(t.base), "api", CheckStatus::ok, {}, {}, Remedy::none};
  try {
    switch (t.probe) {
      case Probe::service_info: {
        if (t.expect == ServiceKind::wes && r.status == 404) {
          c.detail = "no service-info here (HTTP 404); a WES need not have one: its runs are reached all the same";
          break;
        }
        if (!r.ok()) http::throw_for_status(r, "service-info");
        auto s = parse_service_info(parse_json_body(r, "service-info"), t.service, t.expect);
        if (t.expect != ServiceKind::other && s.kind() != t.expect) {
          c.status = CheckStatus::fail;
          c.detail = fmt::format("service-info says this is a {} ({}:{}), not a {}", to_string(s.kind()),
                                 s.type.group, s.type.artifact, to_string(t.expect));
          c.hint = "check the URL in the profile";
          c.remedy = Remedy::profile_show;
        } else {
          c.detail = fmt::format("{} {} ({}:{}:{})", s.name, s.version, s.type.group, s.type.artifact, s.type.version);
          if (!s.note.empty()) c.detail = fmt::format("WES {}: {}", s.type.version, s.note);
        }
        break;
      }
      case Probe::discovery: {
        if (!r.ok()) http::throw_for_status(r, "OpenID discovery");
        auto j = parse_json_body(r, "OpenID discovery");
        std::string iss = detail::string_member(j, "issuer");
        auto trim = [](std::string s) { while (!s.empty() && s.back() == '/') s.pop_back(); return s; };
        if (trim(iss) != trim(t.base)) {
          c.status = CheckStatus::fail;
          c.detail = "discovery names issuer '" + iss + "', not the configured one";
          c.hint = "set the issuer exactly as the provider names itself";
        } else if (!j.contains("device_authorization_endpoint")) {
          c.status = CheckStatus::warn;
          c.detail = "the provider offers no device authorization endpoint (RFC 8628), which the device login needs";
        } else {
          c.detail = "OpenID provider with device flow";
        }
        break;
      }
      case Probe::storage: {
        // Without credentials an S3 server answers 403 AccessDenied (or lists public buckets): either
        // shows that an S3 API is there.
        auto server = r.header("Server");
        if (r.status >= 500) {
          c.status = CheckStatus::fail;
          c.detail = fmt::format("HTTP {}", r.status);
        } else {
          c.detail = fmt::format("S3 endpoint answers (HTTP {}{})", r.status,
                                 server ? ", server " + std::string(*server) : std::string());
        }
        break;
      }
    }
  } catch (const Error& e) {
    c.status = CheckStatus::fail;
    c.detail = e.what();
    c.hint = e.hint();
    c.remedy = e.remedy();
  }
  rep.checks.push_back(std::move(c));
}

void check_clock(DoctorReport& rep, const Target& t, const http::Response& r) {
  auto date = r.header("Date");
  if (!date) return;  // nothing to compare with
  auto server_time = http::parse_http_date(*date);
  Check c{t.service, redact_url(t.base), "clock", CheckStatus::ok, {}, {}, Remedy::none};
  if (!server_time) {
    c.status = CheckStatus::warn;
    c.detail = "the server's Date header is malformed";
    rep.checks.push_back(std::move(c));
    return;
  }
  // The Date header has one-second resolution; compare with the middle of the exchange.
  const auto local = r.received - std::chrono::milliseconds(static_cast<long long>(r.timings.total * 500));
  const double skew = std::chrono::duration<double>(*server_time - local).count();
  const double abs = std::fabs(skew);
  c.detail = fmt::format("this machine's clock is {:.0f} s {} the server's", abs, skew > 0 ? "behind" : "ahead of");
  if (abs <= 1.5) c.detail = "in step with the server (within 1 s)";
  if (abs > kSkewFailSeconds) {
    c.status = CheckStatus::fail;
    c.hint = "fix this machine's clock (e.g. enable NTP: timedatectl set-ntp true); tokens and S3 signatures "
             "fail with a skewed clock";
  } else if (abs > kSkewWarnSeconds) {
    c.status = CheckStatus::warn;
    c.hint = "consider enabling NTP on this machine";
  }
  rep.checks.push_back(std::move(c));
}

}  // namespace

DoctorReport run_doctor(const Profile& profile, http::Options options) {
  std::vector<Target> targets;
  if (!profile.registry.empty()) targets.push_back({"registry", profile.registry, Probe::service_info, ServiceKind::registry});
  if (!profile.issuer.empty()) targets.push_back({"issuer", profile.issuer, Probe::discovery});
  for (const auto& [name, url] : profile.beacons)
    targets.push_back({"beacon " + name, url, Probe::service_info, ServiceKind::beacon});
  for (const auto& [name, url] : profile.drs) targets.push_back({"drs " + name, url, Probe::service_info, ServiceKind::drs});
  if (!profile.wes.empty()) targets.push_back({"wes", profile.wes, Probe::service_info, ServiceKind::wes});
  for (const auto& [name, url] : profile.trs) targets.push_back({"trs " + name, url, Probe::service_info, ServiceKind::trs});
  if (!profile.tes.empty()) targets.push_back({"tes", profile.tes, Probe::service_info, ServiceKind::tes});
  if (!profile.archive.empty()) targets.push_back({"archive", profile.archive, Probe::service_info, ServiceKind::archive});
  if (profile.storage) targets.push_back({"storage", profile.storage->url, Probe::storage});

  DoctorReport rep;
  if (targets.empty()) {
    rep.checks.push_back({"profile", "", "services", CheckStatus::fail, "the profile '" + profile.name + "' lists no services",
                          "", Remedy::profile_add});
    return rep;
  }
  std::vector<http::Request> requests;
  for (const auto& t : targets) {
    http::Request rq;
    switch (t.probe) {
      case Probe::service_info: rq.url = join_url(t.base, "service-info"); break;
      case Probe::discovery: rq.url = join_url(t.base, ".well-known/openid-configuration"); break;
      case Probe::storage: rq.url = join_url(t.base, ""); break;
    }
    rq.headers.push_back({"Accept", "application/json"});
    requests.push_back(std::move(rq));
  }
  // The profile's own CA bundle: a file that cannot be used fails every request, so say which.
  if (!profile.cacert.empty()) {
    Check c{"profile", "", "cacert", CheckStatus::ok, "", "", Remedy::none};
    std::string text;
    try {
      text = read_file(profile.cacert, 16 << 20);
    } catch (const Error& e) {
      c.status = CheckStatus::fail;
      c.detail = fmt::format("the profile's CA bundle cannot be read: {}", e.what());
    }
    if (c.status == CheckStatus::ok) {
      std::size_t certs = 0;
      for (auto at = text.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
           at = text.find("-----BEGIN CERTIFICATE-----", at + 1))
        ++certs;
      if (certs == 0) {
        c.status = CheckStatus::fail;
        c.detail = fmt::format("the profile's CA bundle {} holds no PEM certificate", profile.cacert);
      } else {
        c.detail = fmt::format("{} ({} certificate{})", profile.cacert, certs, certs == 1 ? "" : "s");
      }
    }
    if (c.status != CheckStatus::ok) {
      c.hint = "the profile's cacert must be a PEM file of the CAs its services use";
      c.remedy = Remedy::profile_show;
    }
    rep.checks.push_back(std::move(c));
  }
  options.retry.max_attempts = 1;  // a verdict, not a recovery
  options.connect_timeout_ms = std::min(options.connect_timeout_ms, 5000L);
  options.stall_seconds = std::min(options.stall_seconds, 10L);
  http::Batch batch(options, 8);
  auto outcomes = batch.run(std::move(requests));
  for (std::size_t i = 0; i < targets.size(); ++i) {
    check_reach(rep, targets[i], outcomes[i]);
    if (!outcomes[i].response) continue;
    check_api(rep, targets[i], *outcomes[i].response);
    check_clock(rep, targets[i], *outcomes[i].response);
  }
  return rep;
}

}  // namespace impact
