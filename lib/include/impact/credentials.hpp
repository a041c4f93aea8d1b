// What the rest of the library needs of authentication: a bearer token for a service, and the passports to
// present to a DRS server. The login machinery (device flow, token store, refresh, visa verification)
// lives behind this interface; Beacon, DRS, WES and storage code only ever see `Credentials`.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace impact {
struct Profile;
}

namespace impact::auth {

class Credentials {
 public:
  virtual ~Credentials() = default;

  // An access token for a request to `service_url`, valid for at least `min_valid` (a caller's default,
  // not a promise: when the identity provider's tokens live shorter, the freshest token it gives, never an
  // error for that alone). Refreshes when it must. Throws Error(auth_required) with Remedy::login when there is none; throws
  // Error(usage) when `service_url` is not one of the profile's services (tokens go nowhere else).
  virtual std::string bearer_token(std::string_view service_url,
                                   std::chrono::seconds min_valid = std::chrono::seconds(60)) = 0;

  // Whether bearer_token() can succeed without asking the user (logged in, IMPACT_TOKEN, CI client).
  virtual bool has_token() = 0;

  // The GA4GH passport JWTs (or verified visa JWTs) to put in a DRS `{"passports": [...]}` body for a
  // server that accepts these issuers (its OPTIONS `passport_auth_issuers`; empty = it did not say).
  // Only verified visas are ever returned; an empty result means there is nothing to present.
  virtual std::vector<std::string> passports_for(const std::vector<std::string>& issuers) = 0;
};

// The one rule for where the user's token may go: `url` has the same origin (scheme, host, port) as one of
// the profile's configured services (its beacons, DRS servers, WES, storage, STS) or its issuer. Every
// Credentials::bearer_token() checks it; Beacon and DRS code ask it to decide whom to send a token at all.
bool is_profile_service(const Profile& profile, std::string_view url);

// Bearer token from IMPACT_TOKEN (never prompts, never refreshes, has no passport), or nullptr when the
// variable is unset or empty. Like a login, it is sent only to the profile's services. The token is
// registered with the redaction filter.
std::unique_ptr<Credentials> from_environment(const Profile& profile);

// The value of IMPACT_TOKEN when set (checked: no whitespace or control characters, else Error(usage)).
std::optional<std::string> environment_token();

}  // namespace impact::auth
