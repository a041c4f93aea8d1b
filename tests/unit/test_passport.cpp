#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "impact/passport.hpp"
#include "jwt_signer.hpp"

using namespace impact;
using nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kIss = "https://visas.example.org/";
const std::string kJku = "https://visas.example.org/jwks";

// Key sets served from memory; counts fetches so tests can see that nothing untrusted is fetched.
class FakeKeys final : public auth::KeySets {
 public:
  std::map<std::string, json> sets;
  std::vector<std::string> fetched;
  json get(const std::string& jku, bool) override {
    fetched.push_back(jku);
    auto it = sets.find(jku);
    if (it == sets.end()) throw Error(ErrorKind::not_found, "no such key set");
    return it->second;
  }
};

json visa_claims(std::int64_t exp = kNow + 3600) {
  return {{"iss", kIss}, {"sub", "alice"}, {"iat", kNow - 60}, {"exp", exp}, {"jti", "1"},
          {"ga4gh_visa_v1", {{"type", "ControlledAccessGrants"}, {"asserted", kNow - 86400},
                             {"value", "https://ega-archive.org/datasets/EGAD-1"}, {"source", "https://dac.example.org"},
                             {"by", "dac"}}}};
}

json header(const std::string& jku = kJku, const std::string& kid = "k1", const std::string& alg = "ES256") {
  return {{"typ", "JWT"}, {"alg", alg}, {"jku", jku}, {"kid", kid}};
}

}  // namespace

TEST_CASE("visas: only trusted issuer + jku + signature + times make a verified visa") {
  test::Signer good("k1"), rogue("k1");
  FakeKeys keys;
  keys.sets[kJku] = {{"keys", {good.public_jwk()}}};
  keys.sets["https://rogue.example.org/jwks"] = {{"keys", {rogue.public_jwk()}}};
  const auth::TrustedIssuers trusted{{kIss, kJku}};

  json untrusted_iss = visa_claims();
  untrusted_iss["iss"] = "https://rogue.example.org/";
  json no_claim = visa_claims();
  no_claim.erase("ga4gh_visa_v1");
  json future = visa_claims();
  future["iat"] = kNow + 3600;
  json nbf = visa_claims();
  nbf["nbf"] = kNow + 3600;

  std::vector<std::string> jwts{
      good.sign(header(), visa_claims()),                                    // 0 good
      good.sign(header(), visa_claims(kNow - 120)),                          // 1 expired
      rogue.sign(header(), visa_claims()),                                   // 2 wrongly signed
      good.sign(header(kJku, "k1", "none"), visa_claims()),                  // 3 alg none
      rogue.sign(header("https://rogue.example.org/jwks"), untrusted_iss),   // 4 untrusted issuer
      rogue.sign(header("https://rogue.example.org/jwks"), visa_claims()),   // 5 trusted iss, rogue jku
      good.sign(header(kJku, "k9"), visa_claims()),                          // 6 unknown kid
      good.sign(header(), no_claim),                                         // 7 not a visa
      good.sign(header(), future),                                           // 8 iat in the future
      good.sign(header(), nbf),                                              // 9 not yet valid
      "not-a-jwt",                                                           // 10
      good.sign(header(kJku, "k1", "HS256"), visa_claims()),                 // 11 HS256
      good.sign(header(), visa_claims(kNow - 30)),                           // 12 within the leeway
  };
  auto visas = auth::verify_visas(jwts, trusted, keys, kNow);
  REQUIRE(visas.size() == jwts.size());
  auto problem = [&](std::size_t i) { CAPTURE(i); CHECK_FALSE(visas[i].verified); return visas[i].problem; };
  CHECK(visas[0].verified);
  CHECK(visas[0].problem.empty());
  CHECK(visas[0].type == "ControlledAccessGrants");
  CHECK(visas[0].value == "https://ega-archive.org/datasets/EGAD-1");
  CHECK(visas[0].by == "dac");
  CHECK(problem(1) == "expired");
  CHECK(problem(2) == "the signature does not verify");
  CHECK(problem(3).find("'none' is not accepted") != std::string::npos);
  CHECK(problem(4).find("is not trusted") != std::string::npos);
  CHECK(problem(5).find("is not the key set trusted") != std::string::npos);
  CHECK(problem(6).find("no key with kid 'k9'") != std::string::npos);
  CHECK(problem(7).find("not a visa") != std::string::npos);
  CHECK(problem(8).find("iat") != std::string::npos);
  CHECK(problem(9).find("nbf") != std::string::npos);
  CHECK(problem(10).find("malformed") != std::string::npos);
  CHECK(problem(11).find("'HS256' is not accepted") != std::string::npos);
  CHECK(visas[12].verified);
  // the rogue key set was never fetched: trust is decided before any key is
  for (const auto& f : keys.fetched) CHECK(f == kJku);
  CHECK(auth::earliest_expiry(visas) == kNow - 30);
}

TEST_CASE("visas: a key set that cannot be fetched leaves the visa unverified, with the reason") {
  test::Signer good("k1");
  FakeKeys keys;  // no key sets at all
  auto visas = auth::verify_visas({good.sign(header(), visa_claims())}, {{kIss, kJku}}, keys, kNow);
  REQUIRE(visas.size() == 1);
  CHECK_FALSE(visas[0].verified);
  CHECK(visas[0].problem == "no such key set");
}

TEST_CASE("visas: a crit header naming an extension, and an exp more than 100 years away, do not verify") {
  test::Signer good("k1");
  FakeKeys keys;
  keys.sets[kJku] = {{"keys", {good.public_jwk()}}};
  const auth::TrustedIssuers trusted{{kIss, kJku}};
  json crit = header();
  crit["crit"] = {"exp-ext"};
  crit["exp-ext"] = true;
  constexpr std::int64_t year = 366LL * 24 * 3600;
  std::vector<std::string> jwts{
      good.sign(crit, visa_claims()),                        // 0 RFC 7515 4.1.11: unknown critical extension
      good.sign(header(), visa_claims(kNow + 101 * year)),   // 1 absurdly far
      good.sign(header(), visa_claims(kNow + 99 * year)),    // 2 far, but believable
  };
  json huge = visa_claims();
  huge["exp"] = 1e20;
  jwts.push_back(good.sign(header(), huge));                 // 3 valid for 10^20 s
  auto visas = auth::verify_visas(jwts, trusted, keys, kNow);
  REQUIRE(visas.size() == 4);
  CHECK_FALSE(visas[0].verified);
  CHECK(visas[0].problem.find("crit") != std::string::npos);
  CHECK_FALSE(visas[1].verified);
  CHECK(visas[1].problem == "expires more than 100 years from now (exp)");
  CHECK(visas[2].verified);
  CHECK_FALSE(visas[3].verified);
  CHECK(visas[3].problem == "expires more than 100 years from now (exp)");
}
