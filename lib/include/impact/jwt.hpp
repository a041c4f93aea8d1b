// JSON Web Tokens as impact meets them: visas and passports (RFC 7515/7517/7518), verified with OpenSSL.
// Only asymmetric algorithms are accepted: ES256, ES384, RS256, RS384, RS512. `none`, HS* and anything
// unknown are refused before any key is looked at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace impact::jwt {

std::string base64url_encode(std::string_view bytes);
// Strict: only the URL-safe alphabet, no padding required (accepted when correct). Throws Error(protocol).
std::string base64url_decode(std::string_view text);

// A decoded JWS in compact serialization. Nothing in it is trusted until verify() has passed.
struct Jws {
  nlohmann::json header;   // an object
  nlohmann::json payload;  // an object
  std::string signing_input;  // "header.payload" as received
  std::string signature;      // raw bytes
};

// Splits and decodes a compact JWS; header and payload must be JSON objects. Throws Error(protocol) with
// a message naming what is wrong (never the token itself).
Jws decode(std::string_view token);

// The `exp` claim (epoch seconds) of a token that is a JWS, read without verifying anything: for telling the
// user when a token handed over from elsewhere (IMPACT_TOKEN) expires, never for trusting it. nullopt when
// the token is not a JWS or has no numeric exp.
std::optional<std::int64_t> unverified_expiry(std::string_view token);

// True for the algorithms impact verifies.
bool supported_algorithm(std::string_view alg) noexcept;

// Picks the key of a JWKS (`{"keys": [...]}`) for this JWS: the one whose `kid` matches, else, when the
// JWS names no kid, the only key of the right type. Throws Error(protocol) when none fits.
const nlohmann::json& select_key(const nlohmann::json& jwks, const Jws& jws);

// Verifies the signature of `jws` with the public `jwk`. Throws Error(protocol) with the reason: an
// unsupported `alg`, a key whose type or curve does not fit the alg (or whose own `alg` differs), a
// malformed key, or a signature that does not verify.
void verify(const Jws& jws, const nlohmann::json& jwk);

}  // namespace impact::jwt
