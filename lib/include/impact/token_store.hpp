// Login state per profile under $XDG_STATE_HOME/impact/tokens/: `<profile>.json` (0600, replaced
// atomically) and `<profile>.lock`, an flock(2) held across read -> check -> refresh -> write so that
// hundreds of concurrent processes rotate a refresh token exactly once.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace impact::auth {

struct TokenState {
  std::string issuer;
  std::string client_id;
  std::string grant;                  // "device_code" or "client_credentials"
  std::string access_token;
  std::int64_t access_expires = 0;    // epoch seconds; 0 = unknown
  std::int64_t access_lifetime = 0;   // seconds the provider gave the access token (expires_in); 0 = unknown
  std::string refresh_token;
  std::int64_t refresh_expires = 0;   // epoch seconds; 0 = unknown
  std::int64_t refresh_lifetime = 0;  // seconds the provider gave the refresh token when it was issued; 0 = unknown
  std::string scope;
  std::string subject;                // from userinfo
  std::string username;
  std::string name;
  std::string email;
  std::vector<std::string> visas;     // ga4gh_passport_v1 of userinfo, as received (JWTs)
  std::int64_t visas_fetched = 0;
  std::string passport;               // a Passport JWT from token exchange, if any
  std::int64_t passport_expires = 0;
  std::int64_t logged_in = 0;
  std::int64_t refreshed = 0;

  TokenState() = default;
  TokenState(const TokenState&) = default;
  TokenState& operator=(const TokenState&) = default;
  ~TokenState();  // wipes the secrets
};

class TokenStore {
 public:
  explicit TokenStore(std::filesystem::path dir);
  static TokenStore standard();  // state_home()/tokens

  // nullopt when the profile has no state. A corrupt, truncated or foreign file throws
  // Error(auth_required) with Remedy::login.
  std::optional<TokenState> load(const std::string& profile) const;
  void save(const std::string& profile, const TokenState& state) const;  // 0600, atomic
  bool remove(const std::string& profile) const;
  std::vector<std::string> profiles() const;  // profiles with state
  std::filesystem::path file(const std::string& profile) const;

  // An exclusive lock on the profile's state; waits at most `timeout` (Error(timeout) after that).
  class Lock {
   public:
    Lock(Lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Lock& operator=(Lock&&) = delete;
    ~Lock();

   private:
    friend class TokenStore;
    explicit Lock(int fd) : fd_(fd) {}
    int fd_;
  };
  Lock lock(const std::string& profile, std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

 private:
  std::filesystem::path dir_;
};

std::string serialize(const TokenState& s);
TokenState parse_token_state(std::string_view text, const std::string& origin);

}  // namespace impact::auth
