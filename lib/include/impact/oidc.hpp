// The OAuth 2.0 / OpenID Connect protocol steps impact uses, one function each, over http::Client:
// discovery, the device authorization grant (RFC 8628, with PKCE), refresh, client credentials, token
// exchange for a GA4GH passport (RFC 8693), revocation (RFC 7009), introspection and userinfo. No state
// is kept here; Session (session.hpp) decides when to call what and stores the result.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"

namespace impact::oidc {

struct Discovery {
  std::string issuer;
  std::string device_authorization_endpoint;
  std::string token_endpoint;
  std::string userinfo_endpoint;
  std::string revocation_endpoint;
  std::string introspection_endpoint;
  std::string jwks_uri;
  std::vector<std::string> code_challenge_methods;
  std::vector<std::string> grant_types;
  std::vector<std::string> token_auth_methods;
  bool supports_s256() const;
};

// GET <issuer>/.well-known/openid-configuration. The document's `issuer` must equal the configured one
// (OpenID Connect Discovery 4.3) and every endpoint must be an allowed URL. Throws Error.
Discovery discover(http::Client& client, const std::string& issuer);
Discovery parse_discovery(const nlohmann::json& doc, const std::string& issuer);

struct ClientAuth {
  std::string client_id;
  std::string client_secret;  // empty for a public client
};

struct DeviceCode {
  std::string device_code;
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // may be empty
  std::chrono::seconds expires_in{600};
  std::chrono::seconds interval{5};       // 5 s when the server does not say (RFC 8628 3.2)
  std::string code_verifier;              // PKCE, when used
  ~DeviceCode();
};

// RFC 8628 3.1: asks for a device code. Uses PKCE S256 when `pkce` is set.
DeviceCode request_device_code(http::Client& client, const Discovery& d, const ClientAuth& c,
                               const std::vector<std::string>& scopes, bool pkce);

struct Tokens {
  std::string access_token;
  std::string refresh_token;
  std::string id_token;
  std::string token_type;
  std::string scope;
  std::string issued_token_type;
  std::optional<std::chrono::seconds> expires_in;
  std::optional<std::chrono::seconds> refresh_expires_in;  // Keycloak's extension
  ~Tokens();
};

// Parses a token endpoint answer: 200 with JSON, or an OAuth error ({"error": ...}) that becomes an
// Error with a message and a hint fit for a user. `what` names the operation.
Tokens parse_token_response(const http::Response& r, std::string_view what);

// What the user sees while the device flow waits.
class DeviceObserver {
 public:
  virtual ~DeviceObserver() = default;
  virtual void on_code(const DeviceCode&) {}
  virtual void on_slow_down(std::chrono::seconds /*new_interval*/) {}
};

// RFC 8628 3.4/3.5: polls the token endpoint until the user approves, denies, or the code expires.
// Waits `interval` between polls (+5 s on each slow_down), stops at `expires_in`, and on Ctrl-C throws
// Error(cancelled). access_denied and expired_token become clear errors (exit 4).
Tokens poll_device_code(http::Client& client, const Discovery& d, const ClientAuth& c, const DeviceCode& code,
                        DeviceObserver* observer = nullptr);

Tokens refresh(http::Client& client, const Discovery& d, const ClientAuth& c, const std::string& refresh_token);
Tokens client_credentials(http::Client& client, const Discovery& d, const ClientAuth& c,
                          const std::vector<std::string>& scopes);

inline constexpr const char* kPassportTokenType = "urn:ga4gh:params:oauth:token-type:passport";
// RFC 8693 with requested_token_type = GA4GH passport (GA4GH AAI 1.2). Needs a confidential client.
Tokens exchange_for_passport(http::Client& client, const Discovery& d, const ClientAuth& c,
                             const std::string& access_token);

// RFC 7009. `hint` is "refresh_token" or "access_token". A server without the endpoint is not an error.
void revoke(http::Client& client, const Discovery& d, const ClientAuth& c, const std::string& token,
            std::string_view hint);

// RFC 7662: the `exp` of a token the client holds, when the server tells (nullopt otherwise).
std::optional<std::int64_t> introspect_expiry(http::Client& client, const Discovery& d, const ClientAuth& c,
                                              const std::string& token, std::string_view hint);

nlohmann::json userinfo(http::Client& client, const Discovery& d, const std::string& access_token);

// Wipes a string's bytes before it is released (best effort: the allocator may have copied it before).
void wipe(std::string& secret) noexcept;

}  // namespace impact::oidc
