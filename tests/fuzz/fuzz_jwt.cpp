// JWS compact serialization, JWKS key selection and signature verification (jwt.hpp).
// Input: "<token>" or "<token>\n<JWKS JSON>"; without a usable JWKS the RFC 7515 test keys are used.
// An input starting with '{' is "HEADER JSON\nPAYLOAD JSON\nSIGNATURE\nJWKS JSON" instead: the target
// base64url-encodes the first three into the token, so that mutations reach the JSON inside it.
#include "fuzz.hpp"
#include "impact/jwt.hpp"
#include "jws_vectors.hpp"

using namespace impact;

namespace {
const nlohmann::json& rfc_keys() {
  static const nlohmann::json keys = {
      {"keys", {nlohmann::json::parse(test_vectors::kRs256PublicJwk), nlohmann::json::parse(test_vectors::kEs256PublicJwk)}}};
  return keys;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  std::string token;
  if (!input.empty() && input.front() == '{') {
    const auto header = fuzz::next_line(input), payload = fuzz::next_line(input), signature = fuzz::next_line(input);
    token = jwt::base64url_encode(header) + "." + jwt::base64url_encode(payload) + "." + jwt::base64url_encode(signature);
  } else {
    token = fuzz::next_line(input);
  }
  auto jwks = fuzz::json(input);
  if (jwks.is_discarded() || jwks.is_null()) jwks = rfc_keys();
  fuzz::expect_error_only([&] {
    const jwt::Jws jws = jwt::decode(token);
    if (auto alg = jws.header.find("alg"); alg != jws.header.end() && alg->is_string())
      (void)jwt::supported_algorithm(alg->get<std::string>());
    const auto& key = jwt::select_key(jwks, jws);
    jwt::verify(jws, key);
  });
  fuzz::expect_error_only([&] {
    const auto raw = jwt::base64url_decode(token);  // what decodes must survive a round trip
    if (jwt::base64url_decode(jwt::base64url_encode(raw)) != raw) __builtin_trap();
  });
  return 0;
}
