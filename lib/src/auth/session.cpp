#include "impact/session.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::auth {
namespace {

using std::chrono::seconds;

std::vector<std::string> split_scopes(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    auto j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join_scopes(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

// Unknown lifetime (no expires_in): assume five minutes rather than forever, so a refresh happens in time.
constexpr std::int64_t kAssumedLifetime = 300;

// What a demand of `min_valid` amounts to for this token: the time it must have left, margin included.
seconds needed(const TokenState& s, seconds min_valid, Session::Demand demand) {
  const seconds life = Session::lifetime(s);
  if (demand == Session::Demand::best_effort && life.count() > 0) min_valid = std::min(min_valid, life / 2);
  return min_valid + Session::margin(life);
}

bool valid_for(const TokenState& s, seconds min_valid, Session::Demand demand, std::int64_t now) {
  if (s.access_token.empty()) return false;
  return s.access_expires == 0 || s.access_expires - now >= needed(s, min_valid, demand).count();
}

// Throws LifetimeTooShort when tokens of the provider's lifetime, as `s` records it, cannot meet a required
// `min_valid` even when brand new.
void check_reachable(const TokenState& s, seconds min_valid) {
  const seconds life = Session::lifetime(s);
  if (life.count() <= 0) return;  // unknown: only a refresh can tell
  const seconds most = std::max(seconds(0), life - Session::margin(life));
  if (min_valid > most) throw LifetimeTooShort(life, min_valid, most);
}

Error not_logged_in(const Profile& p) {
  return Error(ErrorKind::auth_required, fmt::format("not logged in to profile '{}'", p.name))
      .with_remedy(Remedy::login);
}

// The passport's embedded visas, when `jwt` is a GA4GH Passport (from token exchange).
std::vector<std::string> passport_visas(const std::string& passport) {
  try {
    return detail::strings_member(jwt::decode(passport).payload, "ga4gh_passport_v1");
  } catch (const Error&) {
    return {};
  }
}

}  // namespace

LifetimeTooShort::LifetimeTooShort(seconds lifetime, seconds asked, seconds most)
    : Error(ErrorKind::auth_required,
            fmt::format("the identity provider issues access tokens valid for {} s; {} s were asked for, and at most {} s "
                        "can be (impact renews a token {} s before it expires)",
                        lifetime.count(), asked.count(), most.count(), (lifetime - most).count())),
      lifetime_(lifetime), asked_(asked), most_(most) {}

seconds Session::margin(seconds lifetime) {
  if (lifetime.count() <= 0) return kMargin;
  return std::min(kMargin, lifetime / 4);
}

seconds Session::lifetime(const TokenState& s) {
  if (s.access_lifetime > 0) return seconds(s.access_lifetime);
  // An older state file: the token was got at the login or at the last refresh.
  const std::int64_t got = std::max(s.logged_in, s.refreshed);
  if (s.access_expires > 0 && got > 0 && s.access_expires > got) return seconds(s.access_expires - got);
  return seconds(0);
}

std::int64_t epoch_now() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> default_scopes() { return {"openid", "offline_access", "ga4gh_passport_v1"}; }

bool is_profile_service(const Profile& p, std::string_view url) {
  auto target = Url::parse(url);
  if (!target) return false;
  std::vector<std::string> bases{p.issuer, p.wes, p.tes, p.archive, p.htsget};
  for (const auto& [name, u] : p.beacons) bases.push_back(u);
  for (const auto& [name, u] : p.drs) bases.push_back(u);
  if (p.storage) {
    bases.push_back(p.storage->url);
    bases.push_back(p.storage->sts);
  }
  for (const auto& b : bases) {
    if (b.empty()) continue;
    if (auto base = Url::parse(b); base && same_origin(*base, *target)) return true;
  }
  return false;
}

Session::Session(Profile profile, http::Options options, TokenStore store)
    : profile_(std::move(profile)), client_(std::move(options)), store_(std::move(store)) {}

Session::~Session() = default;

const oidc::Discovery& Session::discovery() {
  if (!discovery_) {
    if (profile_.issuer.empty())
      throw Error(ErrorKind::config, fmt::format("profile '{}' has no identity provider (issuer)", profile_.name))
          .with_remedy(Remedy::add_issuer);
    discovery_ = oidc::discover(client_, profile_.issuer);
  }
  return *discovery_;
}

oidc::ClientAuth Session::client_auth(bool need_secret) const {
  oidc::ClientAuth c;
  c.client_id = profile_.client_id;
  if (c.client_id.empty())
    throw Error(ErrorKind::config, fmt::format("profile '{}' has no client_id", profile_.name)).with_remedy(Remedy::add_issuer);
  if (const char* env = std::getenv("IMPACT_CLIENT_SECRET"); env != nullptr && *env != '\0') {
    c.client_secret = env;
  } else if (!profile_.client_secret_file.empty()) {
    std::string text = read_file(profile_.client_secret_file, 64 * 1024);
    c.client_secret = std::string(text::trim(text));
    oidc::wipe(text);
  }
  if (need_secret && c.client_secret.empty())
    throw Error(ErrorKind::config, "the client credentials grant needs the client's secret").with_remedy(Remedy::client_secret);
  remember_secret(c.client_secret);
  return c;
}

std::vector<std::string> Session::scopes_or_default(std::vector<std::string> scopes) const {
  if (!scopes.empty()) return scopes;
  return profile_.scopes.empty() ? default_scopes() : profile_.scopes;
}

TokenState Session::from_tokens(const oidc::Tokens& t, const std::string& grant, std::vector<std::string> scopes) {
  TokenState s;
  const auto now = epoch_now();
  s.issuer = profile_.issuer;
  s.client_id = profile_.client_id;
  s.grant = grant;
  s.access_token = t.access_token;
  s.access_lifetime = t.expires_in && t.expires_in->count() > 0 ? t.expires_in->count() : kAssumedLifetime;
  s.access_expires = now + s.access_lifetime;
  s.refresh_token = t.refresh_token;
  if (t.refresh_expires_in && t.refresh_expires_in->count() > 0) {
    s.refresh_lifetime = t.refresh_expires_in->count();
    s.refresh_expires = now + s.refresh_lifetime;
  }
  s.scope = t.scope.empty() ? join_scopes(scopes) : t.scope;
  s.logged_in = now;
  return s;
}

void Session::fetch_passport(TokenState& s) {
  const auto& d = discovery();
  if (!d.userinfo_endpoint.empty() && s.grant != "client_credentials") {
    auto info = oidc::userinfo(client_, d, s.access_token);
    s.subject = detail::string_member(info, "sub");
    s.username = detail::string_member(info, "preferred_username");
    s.name = detail::string_member(info, "name");
    s.email = detail::string_member(info, "email");
    s.visas = detail::strings_member(info, "ga4gh_passport_v1");
    for (auto& v : info["ga4gh_passport_v1"]) if (v.is_string()) oidc::wipe(v.get_ref<std::string&>());
    s.visas_fetched = epoch_now();
  }
  // A confidential client can also have the broker sign a Passport (GA4GH AAI 1.2 token exchange).
  if (std::find(d.grant_types.begin(), d.grant_types.end(), "urn:ietf:params:oauth:grant-type:token-exchange") !=
          d.grant_types.end() &&
      s.grant != "client_credentials") {
    auto c = client_auth(false);
    if (!c.client_secret.empty()) {
      auto t = oidc::exchange_for_passport(client_, d, c, s.access_token);
      s.passport = t.access_token;
      s.passport_expires = epoch_now() + (t.expires_in ? t.expires_in->count() : 300);
    }
  }
}

TokenState Session::login_device(oidc::DeviceObserver& observer, std::vector<std::string> scopes) {
  scopes = scopes_or_default(std::move(scopes));
  const auto& d = discovery();
  auto c = client_auth(false);
  auto code = oidc::request_device_code(client_, d, c, scopes, d.supports_s256());
  auto tokens = oidc::poll_device_code(client_, d, c, code, &observer);
  TokenState s = from_tokens(tokens, "device_code", scopes);
  if (!s.refresh_token.empty() && s.refresh_expires == 0)
    if (auto e = oidc::introspect_expiry(client_, d, c, s.refresh_token, "refresh_token")) {
      s.refresh_expires = *e;
      if (*e > s.logged_in) s.refresh_lifetime = *e - s.logged_in;
    }
  if (std::find(scopes.begin(), scopes.end(), "openid") != scopes.end()) fetch_passport(s);
  auto lock = store_.lock(profile_.name);
  store_.save(profile_.name, s);
  return s;
}

TokenState Session::login_client_credentials(std::vector<std::string> scopes) {
  // openid and offline_access mean nothing without a user; keep what the profile asked for otherwise.
  if (scopes.empty() && !profile_.scopes.empty()) scopes = profile_.scopes;
  const auto& d = discovery();
  auto tokens = oidc::client_credentials(client_, d, client_auth(true), scopes);
  TokenState s = from_tokens(tokens, "client_credentials", scopes);
  auto lock = store_.lock(profile_.name);
  store_.save(profile_.name, s);
  return s;
}

bool Session::logout(std::string& warning) {
  auto lock = store_.lock(profile_.name);
  std::optional<TokenState> s;
  try {
    s = store_.load(profile_.name);
  } catch (const Error&) {
    store_.remove(profile_.name);  // unreadable: nothing to revoke, forget it
    return true;
  }
  if (!s) return false;
  try {
    const auto& d = discovery();
    auto c = client_auth(false);
    // Revoking the refresh token ends the grant (and with it the access tokens) at most providers.
    if (!s->refresh_token.empty()) oidc::revoke(client_, d, c, s->refresh_token, "refresh_token");
    oidc::revoke(client_, d, c, s->access_token, "access_token");
    if (d.revocation_endpoint.empty()) warning = "the identity provider offers no revocation endpoint; the tokens stay valid until they expire";
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    warning = fmt::format("could not revoke the tokens at the identity provider ({}); they stay valid until they expire", e.what());
  }
  store_.remove(profile_.name);
  return true;
}

std::optional<TokenState> Session::stored() const { return store_.load(profile_.name); }

TokenState Session::fresh(seconds min_valid, Demand demand) {
  // Fast path: no lock, no network.
  auto s = store_.load(profile_.name);
  if (!s) throw not_logged_in(profile_);
  if (valid_for(*s, min_valid, demand, epoch_now())) return *s;
  // A demand the provider's tokens cannot meet: say so now rather than refresh for nothing.
  if (demand == Demand::required) check_reachable(*s, min_valid);

  auto lock = store_.lock(profile_.name);
  s = store_.load(profile_.name);  // another process may have refreshed while we waited: take its token
  if (!s) throw not_logged_in(profile_);
  const auto now = epoch_now();
  if (valid_for(*s, min_valid, demand, now)) return *s;
  if (demand == Demand::required) check_reachable(*s, min_valid);  // its refresh may have taught the lifetime

  const auto& d = discovery();
  TokenState next;
  if (!s->refresh_token.empty()) {
    if (s->refresh_expires != 0 && s->refresh_expires <= now)
      throw Error(ErrorKind::auth_required, fmt::format("the session of profile '{}' has expired", profile_.name))
          .with_remedy(Remedy::login);
    auto t = oidc::refresh(client_, d, client_auth(false), s->refresh_token);
    next = *s;
    next.access_token = t.access_token;
    next.access_lifetime = t.expires_in && t.expires_in->count() > 0 ? t.expires_in->count() : kAssumedLifetime;
    next.access_expires = now + next.access_lifetime;
    if (!t.refresh_token.empty()) next.refresh_token = t.refresh_token;  // rotation
    if (t.refresh_expires_in && t.refresh_expires_in->count() > 0) {
      next.refresh_lifetime = t.refresh_expires_in->count();
      next.refresh_expires = now + next.refresh_lifetime;
    }
    if (!t.scope.empty()) next.scope = t.scope;
    next.refreshed = now;
  } else if (s->grant == "client_credentials") {
    auto t = oidc::client_credentials(client_, d, client_auth(true), split_scopes(s->scope));
    next = from_tokens(t, "client_credentials", split_scopes(s->scope));
  } else {
    throw Error(ErrorKind::auth_required,
                fmt::format("the access token of profile '{}' has expired and there is no refresh token", profile_.name),
                "the offline_access scope gives a refresh token")
        .with_remedy(Remedy::login);
  }
  // Saved before any complaint: the new token is good, and its lifetime is now known, so a demand it cannot
  // meet fails at once next time instead of refreshing again.
  store_.save(profile_.name, next);
  // A best-effort demand takes the freshest token there is; a required one only a token that can meet it.
  if (demand == Demand::required) check_reachable(next, min_valid);
  return next;
}

std::vector<Visa> Session::verify(const std::vector<std::string>& jwts) {
  if (!keys_) keys_ = std::make_unique<HttpKeySets>(client_, cache_home() / "jwks");
  return verify_visas(jwts, profile_.trusted_visa_issuers, *keys_, epoch_now());
}

std::vector<Visa> Session::passport(bool refresh) {
  auto s = fresh(seconds(0));
  auto visas = verify(s.visas);
  const auto soon = epoch_now() + kMargin.count();
  bool stale = s.visas_fetched == 0 || refresh ||
               // a visa at or past its expiry that we have not asked for again since it expired
               std::any_of(visas.begin(), visas.end(),
                           [&](const Visa& v) { return v.exp != 0 && v.exp <= soon && s.visas_fetched < v.exp; }) ||
               (!s.passport.empty() && s.passport_expires <= soon);
  if (!stale || s.grant == "client_credentials") return visas;
  auto lock = store_.lock(profile_.name);
  auto current = store_.load(profile_.name);
  if (!current) throw not_logged_in(profile_);
  if (current->visas_fetched == s.visas_fetched || refresh) {  // nobody refreshed it meanwhile
    fetch_passport(*current);
    store_.save(profile_.name, *current);
  }
  return verify(current->visas);
}

std::string Session::bearer_token(std::string_view service_url, seconds min_valid) {
  if (!is_profile_service(profile_, service_url))
    throw Error(ErrorKind::usage,
                fmt::format("refusing to send the token of profile '{}' to {}: not one of its services", profile_.name,
                            redact_url(service_url)),
                "")
        .with_remedy(Remedy::add_service);
  return fresh(min_valid).access_token;
}

bool Session::has_token() {
  try {
    return store_.load(profile_.name).has_value();
  } catch (const Error&) {
    return false;
  }
}

std::vector<std::string> Session::passports_for(const std::vector<std::string>& issuers) {
  if (!has_token()) return {};
  auto visas = passport(false);
  auto s = stored();
  auto accepts = [&](const std::string& iss) {
    if (issuers.empty()) return true;
    auto strip = [](std::string v) { while (!v.empty() && v.back() == '/') v.pop_back(); return v; };
    return std::any_of(issuers.begin(), issuers.end(), [&](const std::string& i) { return strip(i) == strip(iss); });
  };
  // A broker-signed Passport, when the server takes the broker's word and every visa in it verifies.
  if (s && !s->passport.empty() && s->passport_expires > epoch_now() + kMargin.count() && accepts(profile_.issuer)) {
    auto inner = verify(passport_visas(s->passport));
    if (!inner.empty() && std::all_of(inner.begin(), inner.end(), [](const Visa& v) { return v.verified; }))
      return {s->passport};
  }
  std::vector<std::string> out;
  for (const auto& v : visas)
    if (v.verified && accepts(v.iss)) out.push_back(v.jwt);
  return out;
}

std::vector<Check> login_checks(Session& session) {
  const Profile& p = session.profile();
  std::vector<Check> out;
  Check login{"identity", redact_url(p.issuer), "login", CheckStatus::ok, "", "", Remedy::none};
  if (auto env = environment_token()) {
    login.detail = "using the bearer token in IMPACT_TOKEN";
    out.push_back(login);
    return out;
  }
  std::optional<TokenState> s;
  try {
    s = session.stored();
  } catch (const Error& e) {
    login.status = CheckStatus::fail;
    login.detail = e.what();
    login.hint = e.hint();
    login.remedy = e.remedy();
    out.push_back(login);
    return out;
  }
  const auto now = epoch_now();
  if (!s) {
    login.status = CheckStatus::warn;
    login.detail = "not logged in";
    login.remedy = Remedy::login;
    out.push_back(login);
    return out;
  }
  const bool refreshable = !s->refresh_token.empty() || s->grant == "client_credentials";
  const std::int64_t ends = s->refresh_token.empty() ? s->access_expires : s->refresh_expires;
  std::string who = s->username.empty() ? (s->subject.empty() ? "client " + s->client_id : s->subject) : s->username;
  if ((!refreshable && s->access_expires <= now) || (ends != 0 && ends <= now && s->grant != "client_credentials")) {
    login.status = CheckStatus::fail;
    login.detail = fmt::format("the session of {} has expired", who);
    login.remedy = Remedy::login;
  } else {
    login.detail = fmt::format("logged in as {}{}", who,
                               ends == 0 || s->grant == "client_credentials" ? std::string()
                                                                            : ", session ends in " + format_duration(seconds(ends - now)));
  }
  out.push_back(login);
  if (login.status == CheckStatus::ok && !s->visas.empty()) {
    Check pc{"identity", redact_url(p.issuer), "passport", CheckStatus::ok, "", "", Remedy::none};
    try {
      auto visas = session.passport(false);
      std::size_t ok = 0;
      std::string bad;
      for (const auto& v : visas) {
        if (v.verified) ++ok;
        else bad += (bad.empty() ? "" : "; ") + (v.type.empty() ? std::string("?") : v.type) + ": " + v.problem;
      }
      pc.detail = fmt::format("{} of {} visas verified{}", ok, visas.size(), bad.empty() ? "" : " (" + bad + ")");
      if (!bad.empty()) {
        pc.status = CheckStatus::warn;
        pc.hint = "unverified visas are never sent; check the profile's trusted visa issuers";
        pc.remedy = Remedy::profile_show;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      pc.status = CheckStatus::fail;
      pc.detail = e.what();
      pc.hint = e.hint();
      pc.remedy = e.remedy();
    }
    out.push_back(pc);
  }
  return out;
}

}  // namespace impact::auth
