// A profile's login session: the Credentials the rest of impact uses, and the operations behind
// `impact login`, `logout`, `token`, `auth status` and `passport`. Token state lives in a TokenStore and
// every refresh happens under its lock (read -> check -> refresh -> write), so concurrent processes
// rotate a refresh token once and all get the new access token.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "impact/config.hpp"
#include "impact/credentials.hpp"
#include "impact/doctor.hpp"
#include "impact/error.hpp"
#include "impact/http.hpp"
#include "impact/oidc.hpp"
#include "impact/passport.hpp"
#include "impact/token_store.hpp"

namespace impact::auth {

// openid offline_access ga4gh_passport_v1: what a profile asks for unless it says otherwise.
std::vector<std::string> default_scopes();

class Session final : public Credentials {
 public:
  Session(Profile profile, http::Options options, TokenStore store = TokenStore::standard());
  ~Session() override;

  const Profile& profile() const noexcept { return profile_; }

  // The device flow, then userinfo (and the passport); stores the result. Empty scopes = the profile's.
  TokenState login_device(oidc::DeviceObserver& observer, std::vector<std::string> scopes = {});
  // The client credentials grant with the profile's confidential client (secret from its
  // client_secret_file or $IMPACT_CLIENT_SECRET).
  TokenState login_client_credentials(std::vector<std::string> scopes = {});
  // Revokes what can be revoked (RFC 7009) and forgets the state. Returns false when there was none.
  // A revocation failure is returned in `warning` (the local state is removed regardless).
  bool logout(std::string& warning);

  // The stored state as it is (possibly expired); nullopt when not logged in.
  std::optional<TokenState> stored() const;
  // How fresh() takes `min_valid`.
  enum class Demand {
    // A caller's own default: when the provider's tokens live too short for it, the demand shrinks to half
    // of their lifetime, so a short-lived provider gets the freshest token it gives instead of an error.
    best_effort,
    // The user's demand: a token that cannot stay valid that long is an error (LifetimeTooShort).
    required,
  };

  // A state whose access token stays valid for `min_valid` plus the margin (see margin()), refreshing under
  // the lock when needed. A required demand above what the provider's tokens can give fails once its
  // lifetime is known (stored since the last login or refresh), without asking the provider again.
  TokenState fresh(std::chrono::seconds min_valid, Demand demand = Demand::best_effort);

  // The visas of the passport, verified. Fetches it again when `refresh`, when it was never fetched, or
  // when a verified visa is about to expire.
  std::vector<Visa> passport(bool refresh);
  // Verifies visa JWTs (the stored ones, say, when the session has ended and cannot fetch new ones).
  std::vector<Visa> verify(const std::vector<std::string>& jwts);

  // Credentials
  std::string bearer_token(std::string_view service_url, std::chrono::seconds min_valid) override;
  bool has_token() override;
  std::vector<std::string> passports_for(const std::vector<std::string>& issuers) override;

  // A token this close to its expiry counts as expired: a quarter of its lifetime, at most kMargin (so 2 s
  // for an 8 s token, 11 s for 45 s, 30 s from 2 minutes on); kMargin when the lifetime is unknown.
  static constexpr std::chrono::seconds kMargin{30};
  static std::chrono::seconds margin(std::chrono::seconds lifetime);
  // The lifetime the provider gave the stored access token. State files of older versions do not record
  // it; it is then the time between getting the token and its expiry, or 0 (unknown).
  static std::chrono::seconds lifetime(const TokenState& s);

 private:
  const oidc::Discovery& discovery();
  oidc::ClientAuth client_auth(bool need_secret) const;
  TokenState from_tokens(const oidc::Tokens& t, const std::string& grant, std::vector<std::string> scopes);
  void fetch_passport(TokenState& s);
  std::vector<std::string> scopes_or_default(std::vector<std::string> scopes) const;

  Profile profile_;
  http::Client client_;
  TokenStore store_;
  std::optional<oidc::Discovery> discovery_;
  std::unique_ptr<HttpKeySets> keys_;
};

// fresh() with a required demand the identity provider's tokens cannot meet (exit 4, like any token that
// cannot be had). The facts are kept for the caller's hint.
class LifetimeTooShort : public Error {
 public:
  LifetimeTooShort(std::chrono::seconds lifetime, std::chrono::seconds asked, std::chrono::seconds most);
  std::chrono::seconds lifetime() const noexcept { return lifetime_; }  // what the provider issues
  std::chrono::seconds asked() const noexcept { return asked_; }
  std::chrono::seconds most() const noexcept { return most_; }  // the longest demand it can meet

 private:
  std::chrono::seconds lifetime_, asked_, most_;
};

std::int64_t epoch_now();

// Doctor's view of the login: is there a usable session, and does the passport verify? No refresh is
// forced; key sets may be fetched.
std::vector<Check> login_checks(Session& session);

}  // namespace impact::auth
