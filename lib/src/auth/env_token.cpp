// IMPACT_TOKEN: a bearer token handed over by the environment (CI, a wrapper script). Never refreshed.
#include <cstdlib>

#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/redact.hpp"

namespace impact::auth {
namespace {

class EnvToken final : public Credentials {
 public:
  explicit EnvToken(std::string token) : token_(std::move(token)) { remember_secret(token_); }
  std::string bearer_token(std::string_view, std::chrono::seconds) override { return token_; }
  bool has_token() override { return true; }
  std::vector<std::string> passports_for(const std::vector<std::string>&) override { return {}; }

 private:
  std::string token_;
};

}  // namespace

std::unique_ptr<Credentials> from_environment() {
  const char* v = std::getenv("IMPACT_TOKEN");
  if (v == nullptr || *v == '\0') return nullptr;
  std::string token(v);
  for (char c : token)
    if (c <= ' ' || c == 0x7f)
      throw Error(ErrorKind::usage, "IMPACT_TOKEN contains whitespace or control characters",
                  "set it to the bare access token, without 'Bearer ' or a newline");
  return std::make_unique<EnvToken>(std::move(token));
}

}  // namespace impact::auth
