#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "jws_vectors.hpp"
#include "jwt_signer.hpp"

using namespace impact;
using nlohmann::json;
namespace tv = impact::test_vectors;

namespace {
std::string problem(const std::string& token, const json& jwk) {
  try {
    jwt::verify(jwt::decode(token), jwk);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::protocol);
    return e.what();
  }
  return {};
}
std::string flip_last(std::string s) {
  s.back() = s.back() == 'A' ? 'B' : 'A';
  return s;
}
}  // namespace

TEST_CASE("base64url round trip and strictness") {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)})
    CHECK(jwt::base64url_decode(jwt::base64url_encode(s)) == s);
  CHECK(jwt::base64url_encode("\xfb\xff") == "-_8");
  CHECK(jwt::base64url_decode("Zm9vYg==") == "foob");  // correct padding tolerated
  CHECK_THROWS_AS(jwt::base64url_decode("Zm9v+g"), Error);  // '+' is not base64url
  CHECK_THROWS_AS(jwt::base64url_decode("Z"), Error);       // impossible length
  CHECK_THROWS_AS(jwt::base64url_decode("Zm9=v"), Error);
  CHECK_THROWS_AS(jwt::base64url_decode("Zh"), Error);      // non-zero trailing bits
}

TEST_CASE("RFC 7515 A.2 (RS256) and A.3 (ES256) verify; tampering does not") {
  const json rsa = json::parse(tv::kRs256PublicJwk);
  const json ec = json::parse(tv::kEs256PublicJwk);
  CHECK(problem(tv::kRs256Jws, rsa).empty());
  CHECK(problem(tv::kEs256Jws, ec).empty());
  auto jws = jwt::decode(tv::kEs256Jws);
  CHECK(jws.payload["iss"] == "joe");
  CHECK(jws.header["alg"] == "ES256");

  CHECK(problem(flip_last(tv::kRs256Jws), rsa) == "the signature does not verify");
  CHECK(problem(flip_last(tv::kEs256Jws), ec) == "the signature does not verify");
  // the payload of one example under the signature of the other
  std::string es = tv::kEs256Jws;
  std::string mixed = es.substr(0, es.find('.')) + ".eyJpc3MiOiJtYWxsb3J5In0" + es.substr(es.rfind('.'));
  CHECK(problem(mixed, ec) == "the signature does not verify");
}

TEST_CASE("none, HS256, unknown algorithms and key/alg mismatches are refused") {
  const json rsa = json::parse(tv::kRs256PublicJwk);
  const json ec = json::parse(tv::kEs256PublicJwk);
  CHECK(problem(tv::kUnsecuredJws, ec).find("'none' is not accepted") != std::string::npos);
  CHECK(problem(tv::kHs256Jws, rsa).find("'HS256' is not accepted") != std::string::npos);
  // an RS256 token against an EC key, and an ES256 token against an RSA key
  CHECK(problem(tv::kRs256Jws, ec).find("needs an RSA key") != std::string::npos);
  CHECK(problem(tv::kEs256Jws, rsa).find("needs an EC key") != std::string::npos);
  json ec384 = ec;
  ec384["crv"] = "P-384";
  CHECK(problem(tv::kEs256Jws, ec384).find("curve P-256") != std::string::npos);
  json tagged = ec;
  tagged["alg"] = "ES384";
  CHECK(problem(tv::kEs256Jws, tagged).find("the key is for ES384") != std::string::npos);
  json enc = ec;
  enc["use"] = "enc";
  CHECK(problem(tv::kEs256Jws, enc).find("not a signing key") != std::string::npos);
  json off_curve = ec;
  off_curve["y"] = off_curve["x"];
  CHECK(problem(tv::kEs256Jws, off_curve) == "the EC signing key is malformed");  // OpenSSL checks the point on import
  CHECK_FALSE(jwt::supported_algorithm("none"));
  CHECK_FALSE(jwt::supported_algorithm("HS256"));
  CHECK(jwt::supported_algorithm("RS256"));
}

TEST_CASE("malformed tokens give a message, never the token") {
  for (const char* bad : {"", "abc", "a.b", "a.b.c.d", "eyJhbGciOiJFUzI1NiJ9..", "e30.e30.!!", "W10.e30.", "e30.W10."}) {
    CAPTURE(bad);
    try {
      jwt::decode(bad);
      FAIL("decoded");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::protocol);
      CHECK(std::string(e.what()).find("malformed") != std::string::npos);
    }
  }
}

TEST_CASE("select_key: by kid, else the only key of the right type") {
  test::Signer a("key-a"), b("key-b");
  json jwks = {{"keys", {a.public_jwk(), b.public_jwk()}}};
  auto token = b.sign({{"alg", "ES256"}, {"kid", "key-b"}}, {{"iss", "x"}});
  auto jws = jwt::decode(token);
  CHECK(jwt::select_key(jwks, jws)["kid"] == "key-b");
  jwt::verify(jws, jwt::select_key(jwks, jws));
  CHECK_THROWS_WITH_AS(jwt::verify(jws, a.public_jwk()), "the signature does not verify", Error);

  auto no_kid = jwt::decode(b.sign({{"alg", "ES256"}}, {{"iss", "x"}}));
  CHECK_THROWS_AS(jwt::select_key(jwks, no_kid), Error);  // two candidates: ambiguous
  json one = {{"keys", {b.public_jwk()}}};
  CHECK(jwt::select_key(one, no_kid)["kid"] == "key-b");
  auto unknown = jwt::decode(b.sign({{"alg", "ES256"}, {"kid", "key-c"}}, {{"iss", "x"}}));
  CHECK_THROWS_WITH_AS(jwt::select_key(jwks, unknown), "the key set has no key with kid 'key-c'", Error);
  CHECK_THROWS_AS(jwt::select_key(json::array(), jws), Error);
}

TEST_CASE("unverified_expiry: a JWS's exp, nothing for other tokens") {
  const auto part = [](const json& j) { return jwt::base64url_encode(j.dump()); };
  const std::string head = part({{"alg", "ES256"}});
  CHECK(jwt::unverified_expiry(head + "." + part({{"exp", 1700000000}}) + ".c2ln") == 1700000000);
  CHECK(jwt::unverified_expiry(head + "." + part({{"exp", 1700000000.5}}) + ".c2ln") == 1700000000);
  CHECK_FALSE(jwt::unverified_expiry(head + "." + part({{"sub", "x"}}) + ".c2ln"));
  CHECK_FALSE(jwt::unverified_expiry(head + "." + part({{"exp", "tomorrow"}}) + ".c2ln"));
  CHECK_FALSE(jwt::unverified_expiry(head + "." + part({{"exp", 18446744073709551615ULL}}) + ".c2ln"));
  CHECK_FALSE(jwt::unverified_expiry(head + "." + part({{"exp", -1e300}}) + ".c2ln"));
  CHECK_FALSE(jwt::unverified_expiry("opaque-token-0123456789"));
  CHECK_FALSE(jwt::unverified_expiry("a.b.c"));
}
