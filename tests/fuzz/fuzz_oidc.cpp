// OIDC discovery documents and token endpoint answers (oidc.hpp parse_discovery, parse_token_response).
// Input: first byte picks the HTTP status of the token answer; the rest is the body, also read as a
// discovery document for the issuer it names (or a fixed one).
#include <array>

#include "fuzz.hpp"
#include "impact/oidc.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::array<long, 8> statuses = {200, 200, 200, 400, 401, 403, 429, 503};
  const auto body = fuzz::text(data + 1, size - 1);
  const auto doc = fuzz::json(body);
  if (!doc.is_discarded()) {
    std::string issuer = "https://login.example/realms/impact";
    if (doc.is_object())
      if (auto i = doc.find("issuer"); i != doc.end() && i->is_string() && (data[0] & 1)) issuer = i->get<std::string>();
    fuzz::expect_error_only([&] {
      const auto d = oidc::parse_discovery(doc, issuer);
      (void)d.supports_s256();
    });
  }
  http::Response r;
  r.status = statuses[data[0] % statuses.size()];
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = std::string(body);
  r.url = "https://login.example/realms/impact/protocol/openid-connect/token";
  fuzz::expect_error_only([&] { (void)oidc::parse_token_response(r, "fuzzing"); });
  return 0;
}
