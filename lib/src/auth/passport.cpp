#include "impact/passport.hpp"

#include <algorithm>

#include <openssl/sha.h>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "impact/oidc.hpp"
#include "impact/paths.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::auth {
namespace {

using nlohmann::json;

using detail::string_member;

// A NumericDate (RFC 7519 2: an integer or a float), clamped to +-1e15 s (30 million years) so that converting
// a huge float is not undefined behaviour and adding a leeway to it cannot overflow; 0 when missing.
// A visa whose exp lies further away than this is not believed: no issuer means it, and its date cannot be shown.
constexpr std::int64_t kMaxVisaLifetime = 100LL * 366 * 24 * 3600;

std::int64_t integer(const json& j, const char* key) {
  return detail::clamped_number_member(j, key, 1'000'000'000'000'000).value_or(0);
}

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string out;
  for (unsigned char c : d) out += fmt::format("{:02x}", c);
  return out;
}

std::int64_t now_epoch() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Visa::~Visa() { oidc::wipe(jwt); }

HttpKeySets::HttpKeySets(http::Client& client, std::filesystem::path dir, std::chrono::seconds ttl)
    : client_(client), dir_(std::move(dir)), ttl_(ttl) {}

json HttpKeySets::get(const std::string& jku, bool refresh) {
  if (!refresh)
    if (auto it = memory_.find(jku); it != memory_.end()) return it->second;
  auto path = dir_ / (sha256_hex(jku) + ".json");
  if (!refresh) {
    json cached;
    try {
      // the keys decide which visas are trusted: a link or another user's file in the cache is not read
      cached = impact::detail::parse_json(read_private_file(path, 1u << 20));
    } catch (const Error&) {
      cached = nullptr;  // missing, or not ours: fetched again, and the write replaces it
    }
    if (cached.is_object() && cached.value("jku", json()) == jku && now_epoch() - integer(cached, "fetched") < ttl_.count() &&
        cached.contains("jwks"))
      return memory_[jku] = cached["jwks"];
  }
  require_allowed_url(jku, "visa key set (jku)");
  http::Request req;
  req.url = jku;
  req.headers.push_back({"Accept", "application/json"});
  req.max_body = 1u << 20;
  auto r = client_.send(std::move(req));
  if (!r.ok()) http::throw_for_status(r, "fetching the visa issuer's keys");
  json jwks = parse_json_body(r, "the visa issuer's key set");
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array())
    throw Error(ErrorKind::protocol, "the visa issuer's key set is not a JWKS");
  ensure_private_dir(dir_);
  write_file_atomic(path, json{{"jku", jku}, {"fetched", now_epoch()}, {"jwks", jwks}}.dump(), 0600);
  return memory_[jku] = jwks;
}

Visa decode_visa(const std::string& token) {
  Visa v;
  v.jwt = token;
  try {
    jwt::Jws jws = jwt::decode(token);
    v.alg = string_member(jws.header, "alg");
    v.jku = string_member(jws.header, "jku");
    v.kid = string_member(jws.header, "kid");
    v.iss = string_member(jws.payload, "iss");
    v.sub = string_member(jws.payload, "sub");
    v.iat = integer(jws.payload, "iat");
    v.exp = integer(jws.payload, "exp");
    auto claim = jws.payload.find("ga4gh_visa_v1");
    if (claim == jws.payload.end() || !claim->is_object()) {
      v.problem = "not a visa (no ga4gh_visa_v1 claim)";
      return v;
    }
    v.type = string_member(*claim, "type");
    v.value = string_member(*claim, "value");
    v.source = string_member(*claim, "source");
    v.by = string_member(*claim, "by");
    v.asserted = integer(*claim, "asserted");
    if (claim->contains("conditions")) v.conditions = (*claim)["conditions"].dump();
  } catch (const Error& e) {
    v.problem = e.what();
  }
  return v;
}

std::vector<Visa> verify_visas(const std::vector<std::string>& jwts, const TrustedIssuers& trusted, KeySets& keys,
                               std::int64_t now, std::chrono::seconds leeway) {
  std::vector<Visa> out;
  out.reserve(jwts.size());
  for (const auto& token : jwts) {
    Visa v = decode_visa(token);
    auto check = [&]() -> std::string {
      if (!v.problem.empty()) return v.problem;
      if (!jwt::supported_algorithm(v.alg))
        return v.alg.empty() ? "no algorithm" : fmt::format("algorithm '{}' is not accepted", v.alg);
      auto t = trusted.find(v.iss);
      if (t == trusted.end()) return fmt::format("issuer '{}' is not trusted by this profile", v.iss);
      if (v.jku.empty()) return "no jku in the header (impact only follows the trusted key-set URL)";
      if (v.jku != t->second) return fmt::format("jku '{}' is not the key set trusted for this issuer", v.jku);
      if (v.type.empty() || v.value.empty() || v.source.empty() || v.asserted == 0)
        return "the ga4gh_visa_v1 claim lacks type, value, source or asserted";
      if (v.exp == 0) return "no expiry (exp)";
      if (v.exp + leeway.count() <= now) return "expired";
      if (v.exp - now > kMaxVisaLifetime) return "expires more than 100 years from now (exp)";
      if (v.iat > now + leeway.count()) return "issued in the future (iat)";
      jwt::Jws jws = jwt::decode(token);
      if (auto nbf = integer(jws.payload, "nbf"); nbf > now + leeway.count()) return "not valid yet (nbf)";
      try {
        json set = keys.get(v.jku, false);
        const json* key = nullptr;
        try {
          key = &jwt::select_key(set, jws);
        } catch (const Error&) {
          set = keys.get(v.jku, true);  // a rotated key: one fresh fetch
          key = &jwt::select_key(set, jws);
        }
        jwt::verify(jws, *key);
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::cancelled) throw;
        return e.what();
      }
      return {};
    };
    v.problem = check();
    v.verified = v.problem.empty();
    out.push_back(std::move(v));
  }
  return out;
}

std::int64_t earliest_expiry(const std::vector<Visa>& visas) {
  std::int64_t e = 0;
  for (const auto& v : visas)
    if (v.verified && (e == 0 || v.exp < e)) e = v.exp;
  return e;
}

}  // namespace impact::auth
