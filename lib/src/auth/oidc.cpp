#include "impact/oidc.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "http/retry_wait.hpp"
#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "impact/redact.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::oidc {
namespace {

using nlohmann::json;
using std::chrono::seconds;

using detail::string_member;
using detail::strings_member;

std::optional<seconds> number(const json& doc, const char* key) {
  // Clamped to +-1e10 s (300 years): converting a huge float is undefined, and later sums must not overflow.
  static constexpr std::int64_t limit = 10'000'000'000;
  if (auto n = detail::clamped_number_member(doc, key, limit)) return seconds(*n);
  if (const auto* s = detail::member(doc, key, json::value_t::string)) {  // some servers send numbers as strings
    try { return seconds(std::clamp<std::int64_t>(std::stoll(s->get<std::string>()), -limit, limit)); } catch (...) { return std::nullopt; }
  }
  return std::nullopt;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string form(std::initializer_list<std::pair<const char*, std::string_view>> fields) {
  std::string body;
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    if (!body.empty()) body += '&';
    body += k;
    body += '=';
    body += percent_encode(v);
  }
  return body;
}

bool has(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// A POST to an endpoint of the provider with client authentication (RFC 6749 2.3.1): HTTP Basic for a
// confidential client unless the server only lists client_secret_post; client_id in the body otherwise.
http::Response post_form(http::Client& client, const Discovery& d, const std::string& url, const ClientAuth& c,
                         std::string body) {
  http::Request req;
  req.method = http::Method::post;
  req.url = url;
  req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  req.headers.push_back({"Accept", "application/json"});
  if (!c.client_secret.empty() && !(has(d.token_auth_methods, "client_secret_post") &&
                                    !has(d.token_auth_methods, "client_secret_basic"))) {
    std::string cred = base64(percent_encode(c.client_id) + ":" + percent_encode(c.client_secret));
    remember_secret(cred);
    req.headers.push_back({"Authorization", "Basic " + cred});
    wipe(cred);
  } else {
    if (!body.empty()) body += '&';
    body += form({{"client_id", c.client_id}, {"client_secret", c.client_secret}});
  }
  req.body = std::move(body);
  auto r = client.send(std::move(req));
  return r;
}

Error oauth_error(const std::string& code, const std::string& description, std::string_view what, long status) {
  std::string detail = description.empty() ? code : fmt::format("{} ({})", code, description);
  if (code == "access_denied")
    return Error(ErrorKind::auth_required, "the login was denied at the identity provider",
                 "approve the request in the browser")
        .with_remedy(Remedy::login);
  if (code == "expired_token")
    return Error(ErrorKind::auth_required, "the login code expired before it was approved",
                 "approve the next one before it expires")
        .with_remedy(Remedy::login);
  if (code == "invalid_grant")
    return Error(ErrorKind::auth_required, fmt::format("{} failed: the session has expired or was revoked ({})", what, detail))
        .with_remedy(Remedy::login);
  if (code == "invalid_client" || code == "unauthorized_client")
    return Error(ErrorKind::config, fmt::format("{} failed: the identity provider refused the client: {}", what, detail),
                 "check the profile's client_id and client secret")
        .with_remedy(Remedy::profile_show);
  if (code == "invalid_scope")
    return Error(ErrorKind::config, fmt::format("{} failed: the identity provider refused the scopes: {}", what, detail),
                 "check the profile's scopes")
        .with_remedy(Remedy::scope);
  return Error(ErrorKind::protocol, fmt::format("{} failed: HTTP {}: {}", what, status, detail));
}

// The OAuth error of a non-2xx token-endpoint answer, if it has one.
std::optional<std::pair<std::string, std::string>> oauth_error_of(const http::Response& r) {
  auto doc = impact::detail::parse_json(r.body);
  if (doc.is_discarded() || !doc.is_object() || string_member(doc, "error").empty()) return std::nullopt;
  return std::make_pair(string_member(doc, "error"), string_member(doc, "error_description"));
}

std::string pkce_verifier() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw Error(ErrorKind::generic, "cannot get random bytes for PKCE");
  std::string v = jwt::base64url_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  OPENSSL_cleanse(raw, sizeof raw);
  return v;
}

std::string pkce_challenge(const std::string& verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return jwt::base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

void wipe(std::string& secret) noexcept {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

DeviceCode::~DeviceCode() {
  wipe(device_code);
  wipe(code_verifier);
}

Tokens::~Tokens() {
  wipe(access_token);
  wipe(refresh_token);
  wipe(id_token);
}

bool Discovery::supports_s256() const { return has(code_challenge_methods, "S256"); }

Discovery parse_discovery(const json& doc, const std::string& issuer) {
  if (!doc.is_object()) throw Error(ErrorKind::protocol, "the OIDC discovery document is not a JSON object");
  Discovery d;
  d.issuer = string_member(doc, "issuer");
  auto strip = [](std::string s) { while (!s.empty() && s.back() == '/') s.pop_back(); return s; };
  if (strip(d.issuer) != strip(issuer))
    throw Error(ErrorKind::protocol,
                fmt::format("the identity provider calls itself '{}', not '{}' as configured", d.issuer, issuer),
                "fix the profile's issuer")
        .with_remedy(Remedy::profile_show);
  d.device_authorization_endpoint = string_member(doc, "device_authorization_endpoint");
  d.token_endpoint = string_member(doc, "token_endpoint");
  d.userinfo_endpoint = string_member(doc, "userinfo_endpoint");
  d.revocation_endpoint = string_member(doc, "revocation_endpoint");
  d.introspection_endpoint = string_member(doc, "introspection_endpoint");
  d.jwks_uri = string_member(doc, "jwks_uri");
  d.code_challenge_methods = strings_member(doc, "code_challenge_methods_supported");
  d.grant_types = strings_member(doc, "grant_types_supported");
  d.token_auth_methods = strings_member(doc, "token_endpoint_auth_methods_supported");
  if (d.token_endpoint.empty()) throw Error(ErrorKind::protocol, "the OIDC discovery document has no token_endpoint");
  for (const auto* u : {&d.device_authorization_endpoint, &d.token_endpoint, &d.userinfo_endpoint,
                        &d.revocation_endpoint, &d.introspection_endpoint, &d.jwks_uri})
    if (!u->empty()) require_allowed_url(*u, "identity provider endpoint", ErrorKind::protocol);
  return d;
}

Discovery discover(http::Client& client, const std::string& issuer) {
  require_allowed_url(issuer, "issuer");
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::Request req;
  req.url = base + "/.well-known/openid-configuration";
  req.headers.push_back({"Accept", "application/json"});
  auto r = client.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, "OIDC discovery");
  return parse_discovery(parse_json_body(r, "the OIDC discovery document"), issuer);
}

DeviceCode request_device_code(http::Client& client, const Discovery& d, const ClientAuth& c,
                               const std::vector<std::string>& scopes, bool pkce) {
  if (d.device_authorization_endpoint.empty())
    throw Error(ErrorKind::config, "the identity provider does not offer the device flow (no device_authorization_endpoint)",
                "ask the provider's operators to enable RFC 8628 for this client")
        .with_remedy(Remedy::client_credentials);
  DeviceCode code;
  std::string challenge;
  if (pkce) {
    code.code_verifier = pkce_verifier();
    challenge = pkce_challenge(code.code_verifier);
  }
  auto r = post_form(client, d, d.device_authorization_endpoint, c,
                     form({{"scope", join(scopes)}, {"code_challenge", challenge},
                           {"code_challenge_method", pkce ? "S256" : ""}}));
  if (!r.ok()) {
    if (auto e = oauth_error_of(r)) throw oauth_error(e->first, e->second, "the device authorization request", r.status);
    http::throw_for_status(r, "the device authorization request");
  }
  auto doc = parse_json_body(r, "the device authorization response");
  code.device_code = string_member(doc, "device_code");
  code.user_code = string_member(doc, "user_code");
  code.verification_uri = string_member(doc, "verification_uri");
  if (code.verification_uri.empty()) code.verification_uri = string_member(doc, "verification_url");  // Google's spelling
  code.verification_uri_complete = string_member(doc, "verification_uri_complete");
  if (code.device_code.empty() || code.user_code.empty() || code.verification_uri.empty())
    throw Error(ErrorKind::protocol, "the device authorization response lacks device_code, user_code or verification_uri");
  remember_secret(code.device_code);
  // RFC 8628 3.2: expires_in is a positive lifetime. Missing, it is taken as 10 minutes; a zero or negative one
  // (a code that is already dead) is a broken answer, refused rather than guessed.
  if (auto e = number(doc, "expires_in")) {
    if (*e <= seconds(0))
      throw Error(ErrorKind::protocol,
                  fmt::format("the device authorization response says the code expires in {} s", e->count()),
                  "the identity provider sent a broken answer; tell its operators");
    code.expires_in = std::min(*e, seconds(3600));
  }
  if (auto i = number(doc, "interval"); i && *i > seconds(0)) code.interval = std::min(*i, seconds(60));
  return code;
}

Tokens parse_token_response(const http::Response& r, std::string_view what) {
  if (!r.ok()) {
    if (auto e = oauth_error_of(r)) throw oauth_error(e->first, e->second, what, r.status);
    http::throw_for_status(r, what);
  }
  auto doc = impact::detail::parse_json(r.body);
  if (doc.is_discarded() || !doc.is_object())
    throw Error(ErrorKind::protocol, fmt::format("{}: the identity provider answered HTTP {} with something that is not JSON", what, r.status),
                "try again; if it persists, tell the provider's operators");
  Tokens t;
  t.access_token = string_member(doc, "access_token");
  t.refresh_token = string_member(doc, "refresh_token");
  t.id_token = string_member(doc, "id_token");
  t.token_type = string_member(doc, "token_type");
  t.scope = string_member(doc, "scope");
  t.issued_token_type = string_member(doc, "issued_token_type");
  t.expires_in = number(doc, "expires_in");
  t.refresh_expires_in = number(doc, "refresh_expires_in");
  doc.clear();
  if (t.access_token.empty()) throw Error(ErrorKind::protocol, fmt::format("{}: the answer has no access_token", what));
  for (const auto* s : {&t.access_token, &t.refresh_token, &t.id_token}) remember_secret(*s);
  if (!t.token_type.empty() && t.token_type != "Bearer" && t.token_type != "bearer" && t.token_type != "N_A")
    throw Error(ErrorKind::protocol, fmt::format("{}: unsupported token_type '{}' (impact uses Bearer tokens)", what, t.token_type));
  return t;
}

Tokens poll_device_code(http::Client& client, const Discovery& d, const ClientAuth& c, const DeviceCode& code,
                        DeviceObserver* observer) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + code.expires_in;
  seconds interval = code.interval;
  int transient = 0;
  if (observer) observer->on_code(code);
  while (true) {
    http::detail::wait_interruptibly(std::chrono::duration_cast<std::chrono::milliseconds>(interval));
    if (clock::now() >= deadline)
      throw oauth_error("expired_token", "", "login", 400);
    http::Response r;
    try {
      r = post_form(client, d, d.token_endpoint, c,
                    form({{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                          {"device_code", code.device_code}, {"code_verifier", code.code_verifier}}));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled || ++transient > 3) throw;
      continue;  // a network hiccup while the user is approving: poll again at the next interval
    }
    if (auto e = oauth_error_of(r); e && !r.ok()) {
      if (e->first == "authorization_pending") { transient = 0; continue; }
      if (e->first == "slow_down") {
        interval += seconds(5);  // RFC 8628 3.5
        if (observer) observer->on_slow_down(interval);
        continue;
      }
      throw oauth_error(e->first, e->second, "login", r.status);
    }
    if (r.status >= 500 && ++transient <= 3) continue;
    return parse_token_response(r, "login");
  }
}

Tokens refresh(http::Client& client, const Discovery& d, const ClientAuth& c, const std::string& refresh_token) {
  auto r = post_form(client, d, d.token_endpoint, c, form({{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}}));
  return parse_token_response(r, "refreshing the access token");
}

Tokens client_credentials(http::Client& client, const Discovery& d, const ClientAuth& c,
                          const std::vector<std::string>& scopes) {
  if (c.client_secret.empty())
    throw Error(ErrorKind::config, "the client credentials grant needs a client secret",
                "set the profile's client_secret_file, or IMPACT_CLIENT_SECRET");
  auto r = post_form(client, d, d.token_endpoint, c, form({{"grant_type", "client_credentials"}, {"scope", join(scopes)}}));
  return parse_token_response(r, "the client credentials grant");
}

Tokens exchange_for_passport(http::Client& client, const Discovery& d, const ClientAuth& c,
                             const std::string& access_token) {
  auto r = post_form(client, d, d.token_endpoint, c,
                     form({{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                           {"subject_token", access_token},
                           {"subject_token_type", "urn:ietf:params:oauth:token-type:access_token"},
                           {"requested_token_type", kPassportTokenType}}));
  Tokens t = parse_token_response(r, "the passport token exchange");
  if (t.issued_token_type != kPassportTokenType)
    throw Error(ErrorKind::protocol, fmt::format("the token exchange returned '{}', not a GA4GH passport", t.issued_token_type));
  return t;
}

void revoke(http::Client& client, const Discovery& d, const ClientAuth& c, const std::string& token,
            std::string_view hint) {
  if (d.revocation_endpoint.empty() || token.empty()) return;
  auto r = post_form(client, d, d.revocation_endpoint, c, form({{"token", token}, {"token_type_hint", hint}}));
  // RFC 7009 2.2: 200 also for tokens that were already invalid.
  if (!r.ok()) {
    if (auto e = oauth_error_of(r)) throw oauth_error(e->first, e->second, "revoking the token", r.status);
    http::throw_for_status(r, "revoking the token");
  }
}

std::optional<std::int64_t> introspect_expiry(http::Client& client, const Discovery& d, const ClientAuth& c,
                                              const std::string& token, std::string_view hint) {
  if (d.introspection_endpoint.empty() || token.empty()) return std::nullopt;
  try {
    auto r = post_form(client, d, d.introspection_endpoint, c, form({{"token", token}, {"token_type_hint", hint}}));
    if (!r.ok()) return std::nullopt;
    auto doc = impact::detail::parse_json(r.body);
    if (doc.is_discarded() || !doc.is_object() || doc.value("active", json(false)) != true) return std::nullopt;
    if (auto e = number(doc, "exp")) return e->count();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
  }
  return std::nullopt;  // introspection is a nicety: its absence or failure changes nothing
}

json userinfo(http::Client& client, const Discovery& d, const std::string& access_token) {
  if (d.userinfo_endpoint.empty()) throw Error(ErrorKind::protocol, "the identity provider has no userinfo endpoint");
  http::Request req;
  req.url = d.userinfo_endpoint;
  req.headers.push_back({"Authorization", "Bearer " + access_token});
  req.headers.push_back({"Accept", "application/json"});
  auto r = client.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, "fetching userinfo");
  auto ct = r.header("Content-Type");
  if (ct && ct->find("jwt") != std::string_view::npos)
    throw Error(ErrorKind::protocol, "the identity provider sends signed userinfo (application/jwt), which impact does not read yet");
  return parse_json_body(r, "the userinfo response");
}

}  // namespace impact::oidc
