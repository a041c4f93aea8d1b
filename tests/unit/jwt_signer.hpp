// Test-only: an ES256 key pair that signs JWTs, so tests can build visas (good and bad) of their own.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "impact/jwt.hpp"

namespace impact::test {

class Signer {
 public:
  explicit Signer(std::string kid) : kid_(std::move(kid)), key_(EVP_EC_gen("P-256")) {
    if (key_ == nullptr) throw std::runtime_error("EVP_EC_gen failed");
  }
  ~Signer() { EVP_PKEY_free(key_); }
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  nlohmann::json public_jwk() const {
    unsigned char point[65];
    std::size_t len = 0;
    EVP_PKEY_get_octet_string_param(key_, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
    std::string p(reinterpret_cast<const char*>(point), len);
    return {{"kty", "EC"}, {"crv", "P-256"}, {"kid", kid_}, {"use", "sig"}, {"alg", "ES256"},
            {"x", jwt::base64url_encode(p.substr(1, 32))}, {"y", jwt::base64url_encode(p.substr(33, 32))}};
  }

  std::string sign(const nlohmann::json& header, const nlohmann::json& payload) const {
    std::string input = jwt::base64url_encode(header.dump()) + "." + jwt::base64url_encode(payload.dump());
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    std::size_t len = 0;
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string der(len, '\0');
    EVP_DigestSign(md, reinterpret_cast<unsigned char*>(der.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(md);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    return input + "." + jwt::base64url_encode(std::string(reinterpret_cast<const char*>(raw), 64));
  }

 private:
  std::string kid_;
  EVP_PKEY* key_;
};

}  // namespace impact::test
