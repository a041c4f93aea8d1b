// The DRS protocol: locating servers (and compact ids), authorizations, objects and access URLs, single
// and bulk. Credentials go only to the profile's DRS servers and only in the forms an object declares.
#include <algorithm>
#include <ctime>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "drs/resolver.hpp"
#include "http/retry_wait.hpp"
#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/retry.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::drs {
namespace {

using nlohmann::json;

struct Creds {
  std::string bearer;
  std::vector<std::string> passports;
  bool empty() const { return bearer.empty() && passports.empty(); }
  std::string key() const {
    std::string k = bearer.empty() ? "-" : "b";
    for (const auto& p : passports) k += "|" + p;
    return k;
  }
};

bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string object_url(const Location& l) { return join_url(l.base_url, "objects/" + percent_encode(l.id)); }

http::Request json_request(http::Method m, std::string url, const Creds& c, const json& body) {
  http::Request r;
  r.method = m;
  r.url = std::move(url);
  r.headers.push_back({"Accept", "application/json"});
  if (!c.bearer.empty()) r.headers.push_back({"Authorization", "Bearer " + c.bearer});
  if (!body.is_null()) {
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = body.dump();
    r.retry_safe = true;  // DRS POSTs only read
  }
  return r;
}

// Calls `send(begin, end)` over [0, count) in chunks of at most `limit`; a chunk refused with 413
// (send returns false) is retried at half the size, down to one id.
void for_chunks(std::size_t count, std::size_t& limit, const std::function<bool(std::size_t, std::size_t)>& send) {
  std::size_t i = 0;
  while (i < count) {
    const std::size_t end = std::min(count, i + limit);
    if (send(i, end)) {
      i = end;
      continue;
    }
    if (limit <= 1)
      throw Error(ErrorKind::protocol, "the DRS server refuses bulk requests even for one id (HTTP 413)");
    limit = std::max<std::size_t>(1, limit / 2);
  }
}

}  // namespace

struct Client::Impl {
  Settings s;
  http::Client http;
  std::map<std::string, std::optional<std::size_t>> bulk_limits;  // base URL -> maxBulkRequestLength
  std::map<std::string, std::string> resolved;                    // compact prefix -> base URL
  std::map<std::string, Authorizations> auths;                    // base \n id -> what it declared
  std::map<std::string, Creds> creds_used;                        // base \n id -> what worked

  explicit Impl(Settings settings) : s(std::move(settings)), http(s.http) {}

  static std::string key(const Location& l) { return l.base_url + "\n" + l.id; }

  // ---------------------------------------------------------------- sending
  // Sends, waiting out 202 Accepted + Retry-After within the settings' bound.
  http::Response send(const http::Request& req, std::string_view what) {
    const auto deadline = std::chrono::steady_clock::now() + s.max_pending_wait;
    for (int attempt = 1;; ++attempt) {
      http::Response r = http.send(req);
      if (r.status != 202) return r;
      std::chrono::milliseconds wait{1000};
      if (auto ra = r.header("Retry-After"))
        if (auto d = http::parse_retry_after(*ra, std::chrono::system_clock::now())) wait = *d;
      wait = std::max(wait, std::chrono::milliseconds(100));
      if (std::chrono::steady_clock::now() + wait > deadline || attempt >= 50)
        throw Error(ErrorKind::pending,
                    fmt::format("{}: the server is still preparing it after {} attempts", what, attempt),
                    "try again later; the DRS server answers 202 (Accepted) until the data is ready")
            .with_url(req.url);
      http::detail::wait_interruptibly(wait);
    }
  }

  [[noreturn]] void fail(const http::Response& r, std::string_view what, const Location& l, const Creds& c) {
    try {
      http::throw_for_status(r, what);
    } catch (Error& e) {
      if (r.status == 401 || r.status == 403) advise(e, r.status, l, c);
      throw;
    }
  }

  // Why a 401 or 403 happened, as far as impact can tell, and the remedy.
  void advise(Error& e, long status, const Location& l, const Creds& c) {
    const Authorizations& a = auths[key(l)];
    if (!l.trusted) {
      e.with_hint(fmt::format("{} is not a DRS server of profile '{}', so impact sends it no token or passport",
                              redact_url(l.base_url), s.profile.name))
          .with_remedy(Remedy::add_service);
      return;
    }
    if (c.empty() && (!s.credentials || !s.credentials->has_token())) {
      e.with_hint("").with_remedy(Remedy::login);
      return;
    }
    if (a.known && has(a.supported_types, "BearerAuth") && !a.bearer_auth_issuers.empty() && c.bearer.empty() &&
        c.passports.empty()) {
      e.with_hint(fmt::format("the server accepts tokens from {} only, not from {}", fmt::join(a.bearer_auth_issuers, ", "),
                              s.profile.issuer))
          .with_remedy(Remedy::none);
      return;
    }
    std::string visas = a.passport_auth_issuers.empty()
                            ? std::string()
                            : fmt::format(" (passports accepted from: {})", fmt::join(a.passport_auth_issuers, ", "));
    if (status == 401) e.with_hint("your token or passport was not accepted" + visas).with_remedy(Remedy::login);
    else e.with_hint("your passport lacks the visa named above" + visas).with_remedy(Remedy::passport);
  }

  // ---------------------------------------------------------------- credentials
  bool issuer_ok(const std::vector<std::string>& issuers) const {
    if (issuers.empty()) return true;
    const std::string mine = strip_slash(s.profile.issuer);
    return std::any_of(issuers.begin(), issuers.end(), [&](const std::string& i) { return strip_slash(i) == mine; });
  }

  // What to present for an object: nothing to a server outside the profile; otherwise what it declares
  // (passports from the issuers it names, a bearer token when it takes ours). `fallback` is for servers
  // that declared nothing and refused an anonymous request.
  Creds creds_for(const Location& l, const Authorizations& a, bool fallback) {
    Creds c;
    if (!l.trusted || !s.credentials) return c;
    if (a.known) {
      if (has(a.supported_types, "PassportAuth")) c.passports = s.credentials->passports_for(a.passport_auth_issuers);
      if (has(a.supported_types, "BearerAuth") && issuer_ok(a.bearer_auth_issuers) && s.credentials->has_token())
        c.bearer = s.credentials->bearer_token(l.base_url);
    } else if (fallback) {
      c.passports = s.credentials->passports_for({});
      if (s.credentials->has_token()) c.bearer = s.credentials->bearer_token(l.base_url);
    }
    return c;
  }

  Authorizations options(const Location& l) {
    auto it = auths.find(key(l));
    if (it != auths.end()) return it->second;
    http::Request req = json_request(http::Method::options, object_url(l), {}, nullptr);
    http::Response r = http.send(req);
    Authorizations a;
    if (r.status == 200) a = parse_authorizations(impact::detail::parse_json(r.body));
    auths[key(l)] = a;
    return a;
  }

  // ---------------------------------------------------------------- bulk
  std::optional<std::size_t> bulk_limit(const std::string& base) {
    auto it = bulk_limits.find(base);
    if (it != bulk_limits.end()) return it->second;
    std::optional<std::size_t> limit;
    try {
      http::Request req;
      req.url = join_url(base, "service-info");
      http::Response r = http.send(req);
      if (r.ok()) {
        json j = impact::detail::parse_json(r.body);
        const json* v = nullptr;
        if (j.is_object() && j.contains("maxBulkRequestLength")) v = &j["maxBulkRequestLength"];
        else if (j.is_object() && j.contains("drs") && j["drs"].is_object() && j["drs"].contains("maxBulkRequestLength"))
          v = &j["drs"]["maxBulkRequestLength"];
        if (v && v->is_number_integer() && v->get<long long>() > 0)
          limit = static_cast<std::size_t>(std::min<long long>(v->get<long long>(), 1000));
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
    }
    bulk_limits[base] = limit;
    return limit;
  }

  // POSTs (or OPTIONS) chunks of a bulk body; `fill(body, begin, end)` builds one, `take(json)` reads one answer.
  void bulk(http::Method m, const std::string& base, const std::string& path, std::size_t count, const Creds& c,
            const std::function<void(json&, std::size_t, std::size_t)>& fill, const std::function<void(const json&)>& take) {
    std::size_t& limit = *bulk_limits[base];
    for_chunks(count, limit, [&](std::size_t b, std::size_t e) {
      json body = json::object();
      if (!c.passports.empty()) body["passports"] = c.passports;
      fill(body, b, e);
      http::Response r = send(json_request(m, join_url(base, path), c, body), "a bulk DRS request");
      if (r.status == 413) return false;
      if (!r.ok()) http::throw_for_status(r, "a bulk DRS request");
      take(parse_json_body(r, "the DRS server"));
      return true;
    });
  }

  // Indices of `locs` grouped by server, for those servers that take bulk requests.
  template <class T, class F>
  std::map<std::string, std::vector<std::size_t>> bulk_groups(const std::vector<T>& items, F loc_of) {
    std::map<std::string, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < items.size(); ++i) groups[loc_of(items[i]).base_url].push_back(i);
    for (auto it = groups.begin(); it != groups.end();) {
      if (it->second.size() < 2 || !bulk_limit(it->first)) it = groups.erase(it);
      else ++it;
    }
    return groups;
  }

  // Authorizations of many objects on one server with OPTIONS /objects; unknown where it does not answer.
  void bulk_options(const std::string& base, const std::vector<Location>& locs) {
    std::vector<std::string> ids;
    for (const auto& l : locs)
      if (!auths.count(key(l))) ids.push_back(l.id);
    if (ids.empty()) return;
    try {
      bulk(http::Method::options, base, "objects", ids.size(), {},
           [&](json& body, std::size_t b, std::size_t e) {
             body["bulk_object_ids"] = std::vector<std::string>(ids.begin() + static_cast<long>(b), ids.begin() + static_cast<long>(e));
           },
           [&](const json& j) {
             if (!j.contains("resolved_drs_object") || !j["resolved_drs_object"].is_array()) return;
             for (const auto& a : j["resolved_drs_object"])
               if (const auto* id = impact::detail::member(a, "drs_object_id", json::value_t::string))
                 auths[base + "\n" + id->get<std::string>()] = parse_authorizations(a);
           });
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
    }
    for (const auto& l : locs) auths.try_emplace(key(l));
  }

  // ---------------------------------------------------------------- objects
  Object fetch_one(const Location& l, bool expand) {
    const Authorizations a = options(l);
    Creds c = creds_for(l, a, false);
    const std::string what = fmt::format("fetching DRS object {}", l.uri);
    auto request = [&](const Creds& cr) {
      if (!cr.passports.empty()) {
        json body = {{"passports", cr.passports}};
        if (expand) body["expand"] = true;
        return json_request(http::Method::post, object_url(l), cr, body);
      }
      return json_request(http::Method::get, object_url(l) + (expand ? "?expand=true" : ""), cr, nullptr);
    };
    http::Response r = send(request(c), what);
    if ((r.status == 401 || r.status == 403) && !a.known && c.empty()) {
      Creds more = creds_for(l, a, true);
      if (!more.empty()) {
        c = more;
        r = send(request(c), what);
      }
    }
    if (!r.ok()) fail(r, what, l, c);
    creds_used[key(l)] = c;
    Object o = parse_object(parse_json_body(r, "the DRS server"), redact_url(l.base_url));
    o.server = l.base_url;
    return o;
  }

  void bulk_objects(const std::string& base, const std::vector<Location>& locs, bool expand,
                    std::map<std::string, Object>& got) {
    bulk_options(base, locs);
    std::map<std::string, std::pair<Creds, std::vector<std::string>>> parts;  // creds key -> ids
    for (const auto& l : locs) {
      if (got.count(l.id)) continue;
      Creds c = creds_for(l, auths[key(l)], false);
      auto& p = parts[c.key()];
      p.first = c;
      if (!has(p.second, l.id)) p.second.push_back(l.id);
    }
    for (const auto& entry : parts) {
      const Creds& c = entry.second.first;
      const std::vector<std::string>& ids = entry.second.second;
      try {
        bulk(http::Method::post, base, "objects", ids.size(), c,
             [&](json& body, std::size_t b, std::size_t e) {
               body["bulk_object_ids"] = std::vector<std::string>(ids.begin() + static_cast<long>(b), ids.begin() + static_cast<long>(e));
               if (expand) body["expand"] = true;
             },
             [&](const json& j) {
               if (!j.contains("resolved_drs_object") || !j["resolved_drs_object"].is_array()) return;
               for (const auto& d : j["resolved_drs_object"]) {
                 Object o = parse_object(d, redact_url(base));
                 if (!has(ids, o.id)) continue;
                 o.server = base;
                 creds_used[base + "\n" + o.id] = c;
                 got.emplace(o.id, std::move(o));
               }
             });
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::cancelled || e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout) throw;
        // Anything else: the ids left over are fetched one by one, which also explains each failure.
      }
    }
  }

  // ---------------------------------------------------------------- access
  AccessUrl parse_access(const json& j, std::string_view origin) {
    const auto* url = impact::detail::member(j, "url", json::value_t::string);
    if (url == nullptr) throw Error(ErrorKind::protocol, fmt::format("{} sent an access URL without a url", origin));
    AccessUrl a{url->get<std::string>(), impact::detail::strings_member(j, "headers")};
    remember(a);
    return a;
  }

  static void remember(const AccessUrl& a) {
    for (const auto& h : a.headers)
      if (auto colon = h.find(':'); colon != std::string::npos) {
        auto v = std::string_view(h).substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        remember_secret(v);
      }
  }

  AccessUrl access_one(const Location& l, const std::string& access_id) {
    Creds c;
    if (auto it = creds_used.find(key(l)); it != creds_used.end()) c = it->second;
    else c = creds_for(l, options(l), false);
    const std::string url = join_url(object_url(l), "access/" + percent_encode(access_id));
    const std::string what = fmt::format("getting an access URL for {}", l.uri);
    http::Request req = c.passports.empty() ? json_request(http::Method::get, url, c, nullptr)
                                            : json_request(http::Method::post, url, c, json{{"passports", c.passports}});
    http::Response r = send(req, what);
    if (!r.ok()) fail(r, what, l, c);
    return parse_access(parse_json_body(r, "the DRS server"), redact_url(l.base_url));
  }
};

Client::Client(Settings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}
Client::~Client() = default;
const Settings& Client::settings() const noexcept { return impl_->s; }

Location Client::locate(const Uri& uri) {
  auto& s = impl_->s;
  Location l;
  l.uri = uri.text;
  std::string base;
  if (uri.compact) {
    l.id = uri.accession;
    std::string prefix = uri.prefix;
    std::transform(prefix.begin(), prefix.end(), prefix.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    auto it = impl_->resolved.find(prefix);
    if (it == impl_->resolved.end()) it = impl_->resolved.emplace(prefix, detail::resolve_compact(impl_->http, s, uri)).first;
    base = it->second;
  } else {
    l.id = uri.id;
    auto probe = Url::parse("https://" + uri.host);
    if (!probe) throw Error(ErrorKind::usage, fmt::format("not a DRS URI: {} (bad host)", uri.text));
    const std::string scheme = probe->is_loopback() ? "http" : "https";
    base = scheme + "://" + uri.host + "/ga4gh/drs/v1";
  }
  const auto want = Url::parse(base);
  for (const auto& [name, url] : s.profile.drs) {  // the profile's own URL for that server (its path, its scheme)
    auto have = Url::parse(url);
    if (want && have && want->host == have->host && want->port == have->port) {
      base = url;
      break;
    }
  }
  l.trusted = auth::is_profile_service(s.profile, base);
  require_allowed_url(base, "the DRS server of " + uri.text);
  l.base_url = strip_slash(base);
  return l;
}

std::vector<Fetched> Client::objects(const std::vector<Location>& where, bool expand) {
  auto& im = *impl_;
  std::vector<Fetched> out(where.size());
  std::map<std::string, std::map<std::string, Object>> got;  // base -> id -> object
  for (const auto& [base, idx] : im.bulk_groups(where, [](const Location& l) -> const Location& { return l; })) {
    std::vector<Location> locs;
    for (auto i : idx) locs.push_back(where[i]);
    im.bulk_objects(base, locs, expand, got[base]);
  }
  for (std::size_t i = 0; i < where.size(); ++i) {
    out[i].where = where[i];
    auto& known = got[where[i].base_url];
    if (auto it = known.find(where[i].id); it != known.end()) {
      out[i].object = it->second;
      continue;
    }
    try {
      out[i].object = im.fetch_one(where[i], expand);
      known.emplace(where[i].id, *out[i].object);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      out[i].error = std::current_exception();
    }
  }
  return out;
}

std::vector<Client::AccessResult> Client::access_urls(const std::vector<AccessRequest>& requests) {
  auto& im = *impl_;
  std::vector<AccessResult> out(requests.size());
  for (const auto& group : im.bulk_groups(requests, [](const AccessRequest& r) -> const Location& { return r.where; })) {
    const std::string& base = group.first;
    const std::vector<std::size_t>& idx = group.second;
    std::map<std::string, std::pair<Creds, std::vector<std::size_t>>> parts;
    for (auto i : idx) {
      const Location& l = requests[i].where;
      auto it = im.creds_used.find(Impl::key(l));
      Creds c = it != im.creds_used.end() ? it->second : im.creds_for(l, im.options(l), false);
      auto& p = parts[c.key()];
      p.first = c;
      p.second.push_back(i);
    }
    for (const auto& entry : parts) {
      const Creds& c = entry.second.first;
      const std::vector<std::size_t>& members = entry.second.second;
      try {
        im.bulk(http::Method::post, base, "objects/access", members.size(), c,
                [&](json& body, std::size_t b, std::size_t e) {
                  json list = json::array();
                  for (std::size_t m = b; m < e; ++m) {
                    const auto& r = requests[members[m]];
                    list.push_back({{"bulk_object_id", r.where.id}, {"bulk_access_ids", {r.access_id}}});
                  }
                  body["bulk_object_access_ids"] = std::move(list);
                },
                [&](const json& j) {
                  if (!j.contains("resolved_drs_object_access_urls") || !j["resolved_drs_object_access_urls"].is_array()) return;
                  for (const auto& a : j["resolved_drs_object_access_urls"]) {
                    const auto* id_member = impact::detail::member(a, "drs_object_id", json::value_t::string);
                    if (id_member == nullptr) continue;
                    const std::string id = id_member->get<std::string>();
                    const std::string aid = impact::detail::string_member(a, "drs_access_id");
                    for (auto m : members)
                      if (requests[m].where.id == id && (aid.empty() || aid == requests[m].access_id) && !out[m].url)
                        out[m].url = im.parse_access(a, redact_url(base));
                  }
                });
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::cancelled || e.kind() == ErrorKind::network || e.kind() == ErrorKind::timeout) throw;
      }
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (out[i].url) continue;
    try {
      out[i].url = im.access_one(requests[i].where, requests[i].access_id);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      out[i].error = std::current_exception();
    }
  }
  return out;
}

}  // namespace impact::drs
