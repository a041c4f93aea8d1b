#include "impact/jwt.hpp"

#include <array>
#include <cstdint>
#include <memory>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "impact/error.hpp"
#include "json_fields.hpp"

namespace impact::jwt {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

[[noreturn]] void fail(std::string message) {
  throw Error(ErrorKind::protocol, std::move(message));
}

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using EcSig = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

struct Algorithm {
  std::string_view name;
  std::string_view kty;        // "EC" or "RSA"
  std::string_view curve;      // JWK crv for EC
  std::string_view ossl_group; // OpenSSL group name for EC
  std::size_t coordinate = 0;  // bytes per EC coordinate (and half the raw signature)
  const EVP_MD* (*digest)();
};

constexpr std::array<Algorithm, 5> kAlgorithms{{
    {"ES256", "EC", "P-256", "prime256v1", 32, EVP_sha256},
    {"ES384", "EC", "P-384", "secp384r1", 48, EVP_sha384},
    {"RS256", "RSA", "", "", 0, EVP_sha256},
    {"RS384", "RSA", "", "", 0, EVP_sha384},
    {"RS512", "RSA", "", "", 0, EVP_sha512},
}};

const Algorithm* find_algorithm(std::string_view alg) noexcept {
  for (const auto& a : kAlgorithms)
    if (a.name == alg) return &a;
  return nullptr;
}

using detail::string_member;  // "" for a member that is absent or not a string: a JOSE header is untrusted input

std::string member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    fail(fmt::format("the signing key has no '{}'", name));
  return base64url_decode(it->get<std::string>());
}

PKey key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  Params params(OSSL_PARAM_BLD_to_param(bld));
  PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    fail(fmt::format("the {} signing key is malformed", type));
  return PKey(raw);
}

PKey ec_key(const nlohmann::json& jwk, const Algorithm& alg) {
  if (string_member(jwk, "crv") != alg.curve)
    fail(fmt::format("{} needs a key on curve {}, the key is on '{}'", alg.name, alg.curve, string_member(jwk, "crv")));
  std::string x = member(jwk, "x"), y = member(jwk, "y");
  if (x.size() != alg.coordinate || y.size() != alg.coordinate) fail("the EC signing key has coordinates of the wrong size");
  std::string point = "\x04" + x + y;
  ParamBld bld(OSSL_PARAM_BLD_new());
  std::string group(alg.ossl_group);
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    fail("cannot build the EC signing key");
  PKey key = key_from_params("EC", bld.get());
  // fromdata does not check that the point is on the curve; a public-key check does.
  PKeyCtx check(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) fail("the EC signing key is not a point on its curve");
  return key;
}

PKey rsa_key(const nlohmann::json& jwk) {
  std::string n = member(jwk, "n"), e = member(jwk, "e");
  Bn bn_n(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
  Bn bn_e(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    fail("cannot build the RSA signing key");
  PKey key = key_from_params("RSA", bld.get());
  if (EVP_PKEY_get_bits(key.get()) < 2048) fail("the RSA signing key is shorter than 2048 bits");
  return key;
}

// JWS carries ECDSA signatures as the raw r || s; OpenSSL wants DER.
std::string ecdsa_der(std::string_view raw, const Algorithm& alg) {
  if (raw.size() != 2 * alg.coordinate) fail(fmt::format("the {} signature has the wrong length", alg.name));
  EcSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(raw), static_cast<int>(alg.coordinate), nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw.substr(alg.coordinate)), static_cast<int>(alg.coordinate), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    fail("cannot decode the ECDSA signature");
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) fail("cannot encode the ECDSA signature");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

nlohmann::json decode_part(std::string_view part, const char* what) {
  std::string text = base64url_decode(part);
  auto j = impact::detail::parse_json(text);
  if (j.is_discarded() || !j.is_object()) fail(fmt::format("malformed JWT: the {} is not a JSON object", what));
  return j;
}

}  // namespace

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    for (int sh : {18, 12, 6, 0}) out += kAlphabet[(v >> sh) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = at(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    unsigned v = at(i) << 16 | at(i + 1) << 8;
    for (int sh : {18, 12, 6}) out += kAlphabet[(v >> sh) & 63];
  }
  return out;
}

std::string base64url_decode(std::string_view text) {
  if (text.size() % 4 == 0) {  // tolerate correct '=' padding
    while (!text.empty() && text.back() == '=' && text.size() % 4 != 2) text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) fail("malformed base64url: impossible length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) fail("malformed base64url: unexpected character");
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) fail("malformed base64url: non-zero trailing bits");
  return out;
}

bool supported_algorithm(std::string_view alg) noexcept { return find_algorithm(alg) != nullptr; }

Jws decode(std::string_view token) {
  if (token.size() > (1u << 20)) fail("malformed JWT: longer than 1 MiB");
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    fail("malformed JWT: not three dot-separated parts");
  Jws jws;
  jws.header = decode_part(token.substr(0, d1), "header");
  jws.payload = decode_part(token.substr(d1 + 1, d2 - d1 - 1), "payload");
  jws.signing_input = std::string(token.substr(0, d2));
  jws.signature = base64url_decode(token.substr(d2 + 1));
  return jws;
}

std::optional<std::int64_t> unverified_expiry(std::string_view token) {
  try {
    const Jws jws = decode(token);
    const auto exp = jws.payload.find("exp");
    if (exp == jws.payload.end()) return std::nullopt;
    if (exp->is_number_unsigned() && exp->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    if (exp->is_number_integer()) return exp->get<std::int64_t>();
    if (exp->is_number_float()) {
      const double d = exp->get<double>();
      if (d >= 0 && d < 9.0e18) return static_cast<std::int64_t>(d);
    }
  } catch (const Error&) {
  }
  return std::nullopt;
}

const nlohmann::json& select_key(const nlohmann::json& jwks, const Jws& jws) {
  auto keys = jwks.find("keys");
  if (!jwks.is_object() || keys == jwks.end() || !keys->is_array()) fail("the key set is not a JWKS ({\"keys\": [...]})");
  const Algorithm* alg = find_algorithm(string_member(jws.header, "alg"));
  std::string kid = string_member(jws.header, "kid");
  const nlohmann::json* only = nullptr;
  int fitting = 0;
  for (const auto& k : *keys) {
    if (!k.is_object()) continue;
    if (!kid.empty()) {
      if (string_member(k, "kid") == kid) return k;
      continue;
    }
    if (alg != nullptr && string_member(k, "kty") == alg->kty) {
      only = &k;
      ++fitting;
    }
  }
  if (!kid.empty()) fail(fmt::format("the key set has no key with kid '{}'", kid));
  if (fitting != 1) fail("the JWT names no kid and the key set does not have exactly one key that fits");
  return *only;
}

void verify(const Jws& jws, const nlohmann::json& jwk) {
  // RFC 7515 4.1.11: a recipient must reject a JWS whose "crit" lists an extension it does not understand, and
  // impact understands none.
  if (jws.header.contains("crit"))
    fail("the JWT header lists critical extensions (crit) that impact does not understand");
  std::string name = string_member(jws.header, "alg");
  const Algorithm* alg = find_algorithm(name);
  if (alg == nullptr)
    fail(name.empty() ? std::string("the JWT names no algorithm")
                      : fmt::format("the JWT algorithm '{}' is not accepted (only ES256, ES384, RS256, RS384, RS512)", name));
  if (!jwk.is_object() || string_member(jwk, "kty") != alg->kty)
    fail(fmt::format("{} needs an {} key, the key is '{}'", alg->name, alg->kty, string_member(jwk, "kty")));
  if (jwk.contains("alg") && jwk["alg"] != alg->name)
    fail(fmt::format("the key is for {}, the JWT says {}", jwk["alg"].is_string() ? jwk["alg"].get<std::string>() : "?", alg->name));
  if (jwk.contains("use") && jwk["use"] != "sig") fail("the key is not a signing key (use is not 'sig')");

  PKey key = alg->kty == "EC" ? ec_key(jwk, *alg) : rsa_key(jwk);
  std::string sig = alg->kty == "EC" ? ecdsa_der(jws.signature, *alg) : jws.signature;
  MdCtx md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, alg->digest(), nullptr, key.get()) != 1)
    fail("cannot set up signature verification");
  int rc = EVP_DigestVerify(md.get(), bytes(sig), sig.size(), bytes(jws.signing_input), jws.signing_input.size());
  if (rc != 1) fail("the signature does not verify");
}

}  // namespace impact::jwt
