// IMPACT_TOKEN: a bearer token handed over by the environment (CI, a wrapper script). Never refreshed.
#include <cstdlib>

#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/redact.hpp"
#include "impact/session.hpp"

#include <fmt/format.h>

namespace impact::auth {
namespace {

class EnvToken final : public Credentials {
 public:
  EnvToken(std::string token, const Profile& profile) : token_(std::move(token)), profile_(profile) {
    remember_secret(token_);
  }
  ~EnvToken() override { oidc::wipe(token_); }
  std::string bearer_token(std::string_view url, std::chrono::seconds) override {
    if (!is_profile_service(profile_, url))
      throw Error(ErrorKind::usage,
                  fmt::format("refusing to send IMPACT_TOKEN to {}: not a service of profile '{}'", redact_url(url), profile_.name),
                  "")
          .with_remedy(Remedy::add_service);
    return token_;
  }
  bool has_token() override { return true; }
  std::vector<std::string> passports_for(const std::vector<std::string>&) override { return {}; }

 private:
  std::string token_;
  Profile profile_;
};

}  // namespace

std::optional<std::string> environment_token() {
  const char* v = std::getenv("IMPACT_TOKEN");
  if (v == nullptr || *v == '\0') return std::nullopt;
  std::string token(v);
  for (char c : token)
    if (c <= ' ' || c == 0x7f)
      throw Error(ErrorKind::usage, "IMPACT_TOKEN contains whitespace or control characters",
                  "set it to the bare access token, without 'Bearer ' or a newline");
  remember_secret(token);
  return token;
}

std::unique_ptr<Credentials> from_environment(const Profile& profile) {
  auto token = environment_token();
  if (!token) return nullptr;
  return std::make_unique<EnvToken>(std::move(*token), profile);
}

}  // namespace impact::auth
