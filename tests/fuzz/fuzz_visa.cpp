// GA4GH visas: decode_visa and verify_visas (passport.hpp) with an in-memory key set.
// Input: "HEADER JSON\nPAYLOAD JSON\nJWKS JSON" (the last two parts optional). The target base64url-encodes
// header and payload into a visa with a fixed 64-byte signature, so that mutations reach the claims
// (exp, iat, nbf, iss, jku, ga4gh_visa_v1) rather than breaking the encoding. The JWKS is what every
// trusted jku serves; the RFC 7515 test keys when it is missing or not JSON.
#include <string>

#include "fuzz.hpp"
#include "impact/jwt.hpp"
#include "impact/passport.hpp"
#include "jws_vectors.hpp"

using namespace impact;

namespace {
class MemoryKeySets final : public auth::KeySets {
 public:
  explicit MemoryKeySets(nlohmann::json jwks) : jwks_(std::move(jwks)) {}
  nlohmann::json get(const std::string& /*jku*/, bool /*refresh*/) override { return jwks_; }

 private:
  nlohmann::json jwks_;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto header = fuzz::next_line(input), payload = fuzz::next_line(input);
  static const std::string signature = jwt::base64url_encode(std::string(64, '\x5a'));
  const std::string token = jwt::base64url_encode(header) + "." + jwt::base64url_encode(payload) + "." + signature;
  auto jwks = fuzz::json(input);
  if (jwks.is_discarded() || jwks.is_null())
    jwks = {{"keys", {nlohmann::json::parse(test_vectors::kRs256PublicJwk), nlohmann::json::parse(test_vectors::kEs256PublicJwk)}}};
  const auth::TrustedIssuers trusted = {{"joe", "https://joe.example/jwks"},
                                        {"https://visas.example/", "https://visas.example/jwks"}};
  MemoryKeySets keys(std::move(jwks));
  fuzz::expect_error_only([&] {
    (void)auth::decode_visa(token);
    const auto verified = auth::verify_visas({token, token}, trusted, keys, 1300819000);
    if (verified.size() != 2) __builtin_trap();
    (void)auth::earliest_expiry(verified);
  });
  return 0;
}
