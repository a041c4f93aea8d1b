// GA4GH Passport visas: decoded, and verified locally before anything uses them. A visa counts only when
// its `iss` is one of the profile's trusted visa issuers, its header `jku` is exactly the key-set URL
// trusted for that issuer (checked before any key is fetched), its signature verifies with a key from
// that set (ES256/RS256 family, never none/HS*), and exp/iat/nbf hold with a small leeway.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"

namespace impact::auth {

struct Visa {
  std::string jwt;  // as received; a credential: never print it
  std::string iss, sub, jku, kid, alg;
  std::string type, value, source, by, conditions;
  std::int64_t asserted = 0, iat = 0, exp = 0;
  bool verified = false;
  std::string problem;  // why it is not verified (empty when it is)
  ~Visa();
  Visa() = default;
  Visa(const Visa&) = default;
  Visa& operator=(const Visa&) = default;
};

// Where key sets come from. `refresh` asks for a fresh copy (the cached one lacked the kid).
class KeySets {
 public:
  virtual ~KeySets() = default;
  virtual nlohmann::json get(const std::string& jku, bool refresh) = 0;
};

// Key sets over HTTP, cached on disk for `ttl` (0600 files under `dir`).
class HttpKeySets final : public KeySets {
 public:
  HttpKeySets(http::Client& client, std::filesystem::path dir, std::chrono::seconds ttl = std::chrono::hours(1));
  nlohmann::json get(const std::string& jku, bool refresh) override;

 private:
  http::Client& client_;
  std::filesystem::path dir_;
  std::chrono::seconds ttl_;
  std::map<std::string, nlohmann::json> memory_;
};

using TrustedIssuers = std::map<std::string, std::string>;  // visa iss -> jku

// Decodes one visa without verifying it (fields for display; `problem` set when it cannot be decoded).
Visa decode_visa(const std::string& jwt);

// Decodes and verifies each visa. Never throws for a bad visa: it comes back with verified = false and
// the reason. Network failures fetching a trusted key set are reported the same way.
std::vector<Visa> verify_visas(const std::vector<std::string>& jwts, const TrustedIssuers& trusted, KeySets& keys,
                               std::int64_t now, std::chrono::seconds leeway = std::chrono::seconds(60));

// The earliest expiry among verified visas (0 when there are none).
std::int64_t earliest_expiry(const std::vector<Visa>& visas);

}  // namespace impact::auth
