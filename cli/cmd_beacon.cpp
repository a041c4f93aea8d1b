// impact beacon list | info [BEACON] | filters [BEACON]
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "beacon_common.hpp"
#include "flags.hpp"
#include "outcome.hpp"
#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"

namespace impact::cli {

using nlohmann::json;

void add_beacon_options(CLI::App* cmd, BeaconSelection& sel, bool with_beacon) {
  if (with_beacon) cmd->add_option("--beacon", sel.names, "Ask only this beacon of the profile (name or URL); repeatable");
  duration_flag(cmd->add_option("--timeout", sel.timeout, "Give up on a beacon that sends nothing for this long"),
                flag_range::timeout)
      ->capture_default_str();
  cmd->add_flag("--refresh", sel.refresh, "Fetch the beacons' /info, /map, /configuration and /filtering_terms again, not the cached copies");
  cmd->add_flag("--anonymous", sel.anonymous, "Send no token, even when logged in");
}

std::vector<beacon::Target> beacon_targets(Context& ctx, const Profile& p, const BeaconSelection& sel) {
  std::vector<beacon::Target> out;
  std::vector<bool> own;  // parallel to `out`: one of the profile's beacons
  if (sel.names.empty()) {
    for (const auto& [name, url] : p.beacons) {
      out.push_back({name, url, {}});
      own.push_back(true);
    }
  }
  for (const auto& n : sel.names) {
    if (auto it = p.beacons.find(n); it != p.beacons.end()) {
      out.push_back({it->first, it->second, {}});
      own.push_back(true);
      continue;
    }
    if (!Url::parse(n))
      throw Error(ErrorKind::usage, "profile '" + p.name + "' has no beacon named '" + n + "'", "run: impact beacon list");
    require_allowed_url(n, "--beacon");
    std::string name = redact_url(n);
    for (const auto& [pn, pu] : p.beacons)
      if (pu == n) name = pn;
    out.push_back({name, n, {}});
    own.push_back(auth::is_profile_service(p, n));
  }
  if (out.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no beacons",
                "add one: impact profile add NAME --beacon URL (or --registry URL)");
  if (sel.anonymous) return out;
  auth::Credentials* creds = ctx.login_if_any(p);
  if (creds == nullptr) return out;  // not logged in: ask anonymously
  for (std::size_t i = 0; i < out.size(); ++i)
    if (own[i]) out[i].token = creds->bearer_token(out[i].url);
  return out;
}

beacon::Settings beacon_settings(Context& ctx, const BeaconSelection& sel) {
  beacon::Settings s;
  s.http = ctx.http_options();
  const auto t = parse_duration(sel.timeout);
  s.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(t);
  s.cache.emplace(cache_home() / "beacon", sel.refresh ? std::chrono::seconds(0) : std::chrono::seconds(3600));
  return s;
}

namespace {

// Reports beacons that could not give `doc` (into `failures` for --json); the caller finishes the outcome
// (the many-items exit rule, outcome.hpp) once it has printed what the others gave.
Outcome report_failures(Context& ctx, const std::vector<beacon::Target>& targets,
                            const std::vector<beacon::Fetched>& fetched, beacon::Document doc, json& failures) {
  Outcome outcome(ctx, "beacons");
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& f = fetched[i];
    if (f.docs.count(doc)) {
      outcome.succeeded();
      continue;
    }
    Error e = f.error ? *f.error : Error(ErrorKind::protocol, f.missing.count(doc) ? f.missing.at(doc) : "no answer");
    failures.push_back(outcome.failed({{"name", targets[i].name}, {"url", redact_url(targets[i].url)}}, e, targets[i].name));
  }
  return outcome;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

std::string str(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return {};
    cur = &(*cur)[k];
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_array()) {
    std::vector<std::string> parts;
    for (const auto& x : *cur) parts.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    return joined(parts);
  }
  return cur->is_null() ? std::string() : cur->dump();
}

std::vector<std::string> entry_types_of(const beacon::Fetched& f) {
  std::vector<std::string> out;
  for (const auto& et : beacon::entry_types()) {
    bool offered = false;
    if (auto m = f.docs.find(beacon::Document::map); m != f.docs.end()) offered = !beacon::entry_url_from_map(m->second, et).empty();
    if (auto c = f.docs.find(beacon::Document::configuration); !offered && c != f.docs.end())
      offered = c->second.contains("entryTypes") && c->second["entryTypes"].contains(std::string(et.id));
    if (offered) out.emplace_back(et.path);
  }
  return out;
}

struct Selected {
  std::vector<beacon::Target> targets;
  beacon::Settings settings;
};

Selected select(Context& ctx, const std::string& which, BeaconSelection sel) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  if (!which.empty()) sel.names = {which};
  return {beacon_targets(ctx, p, sel), beacon_settings(ctx, sel)};
}

void info(Context& ctx, const std::string& which, const BeaconSelection& sel) {
  auto s = select(ctx, which, sel);
  using D = beacon::Document;
  auto fetched = beacon::fetch_documents(s.targets, {D::info, D::configuration, D::map}, s.settings);
  json failures = json::array();
  Outcome outcome = report_failures(ctx, s.targets, fetched, D::info, failures);
  json list = json::array();
  Table t{{"BEACON", "ID", "NAME", "API", "ORGANIZATION", "SECURITY", "ENTRY TYPES"}, {}, {2, 4}};
  for (std::size_t i = 0; i < s.targets.size(); ++i) {
    const auto& f = fetched[i];
    auto doc = [&](D d) { return f.docs.count(d) ? f.docs.at(d) : json(nullptr); };
    if (!f.docs.count(D::info)) continue;
    const json inf = doc(D::info), conf = doc(D::configuration);
    const auto ets = entry_types_of(f);
    json missing = json::object();
    for (const auto& [d, why] : f.missing) missing[std::string(beacon::to_string(d))] = why;
    list.push_back({{"name", s.targets[i].name}, {"url", redact_url(s.targets[i].url)}, {"info", inf},
                    {"configuration", conf}, {"entry_types", ets}, {"missing", missing}});
    t.rows.push_back({s.targets[i].name, str(inf, {"id"}), str(inf, {"name"}), str(inf, {"apiVersion"}),
                      str(inf, {"organization", "name"}), str(conf, {"securityAttributes", "securityLevels"}), joined(ets)});
  }
  if (ctx.json())
    ctx.term().print_json({{"beacons", list}, {"failed", failures}}, false, "beacons");
  else if (outcome.ok() > 0 || outcome.failures() == 0)
    ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

void filters(Context& ctx, const std::string& which, const BeaconSelection& sel) {
  auto s = select(ctx, which, sel);
  auto fetched = beacon::fetch_documents(s.targets, {beacon::Document::filtering_terms}, s.settings);
  json failures = json::array();
  Outcome outcome = report_failures(ctx, s.targets, fetched, beacon::Document::filtering_terms, failures);
  json list = json::array();
  Table t{{"BEACON", "TYPE", "ID", "LABEL", "SCOPES"}, {}, {3}};
  for (std::size_t i = 0; i < s.targets.size(); ++i) {
    auto it = fetched[i].docs.find(beacon::Document::filtering_terms);
    if (it == fetched[i].docs.end()) continue;
    const json& doc = it->second;
    const json terms = doc.is_object() && doc.contains("filteringTerms") ? doc["filteringTerms"] : doc.is_array() ? doc : json::array();
    list.push_back({{"name", s.targets[i].name}, {"url", redact_url(s.targets[i].url)}, {"filtering_terms", terms}});
    for (const auto& term : terms)
      t.rows.push_back({s.targets[i].name, str(term, {"type"}), str(term, {"id"}), str(term, {"label"}), str(term, {"scopes"})});
  }
  if (ctx.json())
    ctx.term().print_json({{"beacons", list}, {"failed", failures}}, false, "beacons");
  else if (outcome.ok() > 0 || outcome.failures() == 0)
    ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

void list(Context& ctx) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  json j = json::array();
  Table t{{"NAME", "URL"}, {}};
  for (const auto& [name, url] : p.beacons) {
    j.push_back({{"name", name}, {"url", redact_url(url)}});
    t.rows.push_back({name, redact_url(url)});
  }
  if (ctx.json())
    ctx.term().print_json({{"beacons", j}}, false, "beacons");
  else
    ctx.term().print_table(t, ctx.format());
}

}  // namespace

void register_beacon(CLI::App& app, Context& ctx) {
  auto* grp = add_command(app, "beacon");
  grp->require_subcommand(1);
  grp->footer("Examples:\n  impact beacon list\n  impact beacon info public\n  impact beacon filters controlled --json");

  grp->add_subcommand("list", "List the beacons of the profile")
      ->footer("Examples:\n  impact beacon list\n  impact beacon list --json")
      ->callback(ctx.action([&ctx] { list(ctx); }));

  struct Opts {
    std::string which;
    BeaconSelection sel;
  };
  auto add = [&](const char* name, const char* help, void (*fn)(Context&, const std::string&, const BeaconSelection&)) {
    auto o = std::make_shared<Opts>();
    auto* cmd = grp->add_subcommand(name, help);
    cmd->add_option("beacon", o->which, "One beacon of the profile (name or URL); default: all");
    add_beacon_options(cmd, o->sel, false);
    cmd->callback(ctx.action([&ctx, o, fn] { fn(ctx, o->which, o->sel); }));
    return cmd;
  };
  add("info", "Show each beacon's /info, security levels and entry types (from /configuration and /map)", info)
      ->footer("Examples:\n  impact beacon info\n  impact beacon info public --json");
  add("filters", "List the filtering terms each beacon knows (/filtering_terms)", filters)
      ->footer("Examples:\n  impact beacon filters controlled\n  impact beacon filters --json");
}

}  // namespace impact::cli
