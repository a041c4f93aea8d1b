// Session::fresh against a scripted provider: the expiry margin that scales with the token's lifetime, a
// caller's default demand that shrinks to what a short-lived provider gives, and a user's demand it cannot
// meet that fails without asking the provider again.
#include <doctest/doctest.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/session.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::MiniServer;
using impact::test::reply;
using nlohmann::json;
using std::chrono::seconds;
using Demand = auth::Session::Demand;

namespace {

// An identity provider whose tokens live `lifetime` seconds; counts the refreshes it answered.
struct Provider {
  explicit Provider(int lifetime)
      : server([this, lifetime](const test::SeenRequest& r) {
          if (r.target == "/.well-known/openid-configuration")
            return reply(200, json{{"issuer", base()}, {"token_endpoint", base() + "/token"}}.dump());
          if (r.target == "/token" && r.body.find("grant_type=refresh_token") != std::string::npos) {
            const int n = ++refreshes;
            return reply(200, json{{"access_token", "access-token-refreshed-" + std::to_string(n)},
                                   {"refresh_token", "refresh-token-rotated-" + std::to_string(n)},
                                   {"token_type", "Bearer"}, {"expires_in", lifetime}}.dump());
          }
          return reply(404);
        }) {}
  std::string base() const { return server.url(""); }
  std::atomic<int> refreshes{0};
  MiniServer server;
};

http::Options quick() {
  auto o = http::default_options();
  o.retry.base = std::chrono::milliseconds(1);
  return o;
}

Profile profile_for(const Provider& p) {
  Profile pr;
  pr.name = "short";
  pr.issuer = p.base();
  pr.client_id = "impact-cli";
  return pr;
}

// A logged-in state whose token the provider issued for `lifetime` seconds and that has `left` seconds left.
auth::TokenState state(std::int64_t lifetime, std::int64_t left) {
  auth::TokenState s;
  s.grant = "device_code";
  s.access_token = "access-token-initial-0";
  s.refresh_token = "refresh-token-initial-0";
  const auto now = auth::epoch_now();
  s.access_lifetime = lifetime;
  s.access_expires = now + left;
  s.logged_in = s.access_expires - lifetime;
  return s;
}

// A provider of `lifetime` s tokens, a store holding `initial`, and a session over both.
struct Fixture {
  Fixture(int lifetime, const auth::TokenState& initial)
      : idp(lifetime), store(tmp.path() / "tokens"), session(profile_for(idp), quick(), store) {
    store.save("short", initial);
  }
  Provider idp;
  test::TempDir tmp;
  auth::TokenStore store;
  auth::Session session;
};

}  // namespace

TEST_CASE("the expiry margin is a quarter of the token's lifetime, at most 30 s; 30 s when unknown") {
  CHECK(auth::Session::margin(seconds(8)) == seconds(2));
  CHECK(auth::Session::margin(seconds(45)) == seconds(11));
  CHECK(auth::Session::margin(seconds(120)) == seconds(30));
  CHECK(auth::Session::margin(seconds(3600)) == seconds(30));
  CHECK(auth::Session::margin(seconds(0)) == seconds(30));
}

TEST_CASE("the token's lifetime: as recorded, else estimated for a state file of an older version") {
  auth::TokenState s;
  s.access_expires = 1'800'000'300;
  CHECK(auth::Session::lifetime(s) == seconds(0));  // nothing to go by
  s.logged_in = 1'800'000'000;
  CHECK(auth::Session::lifetime(s) == seconds(300));
  s.refreshed = 1'800'000'255;
  CHECK(auth::Session::lifetime(s) == seconds(45));
  s.access_lifetime = 8;
  CHECK(auth::Session::lifetime(s) == seconds(8));
  // an older file has no access_lifetime member: it reads as unknown, and round-trips once set
  auto old = auth::parse_token_state(R"({"format":1,"access_token":"access-token-old-1","access_expires":1800000300,"refreshed":1800000255})", "t");
  CHECK(old.access_lifetime == 0);
  CHECK(auth::Session::lifetime(old) == seconds(45));
  old.access_lifetime = 45;
  CHECK(auth::parse_token_state(auth::serialize(old), "t").access_lifetime == 45);
}

TEST_CASE("45 s tokens: no default demand refreshes a token outside its margin, or fails") {
  Fixture f(45, state(45, 40));
  // 40 s left: more than the 11 s margin, and more than half the lifetime (22 s) plus it for a 60 s default
  CHECK(f.session.fresh(seconds(0)).access_token == "access-token-initial-0");
  CHECK(f.session.fresh(seconds(60)).access_token == "access-token-initial-0");
  CHECK(f.idp.refreshes == 0);

  f.store.save("short", state(45, 10));  // inside the margin
  CHECK(f.session.fresh(seconds(0)).access_token == "access-token-refreshed-1");
  CHECK(f.session.fresh(seconds(60)).access_token == "access-token-refreshed-1");  // the refreshed one will do
  CHECK(f.session.fresh(seconds(0)).access_token == "access-token-refreshed-1");
  CHECK(f.idp.refreshes == 1);
  auto now = f.store.load("short");
  REQUIRE(now);
  CHECK(now->access_lifetime == 45);
}

TEST_CASE("8 s tokens: a fresh token is usable at once (the margin is 2 s, not 30)") {
  Fixture f(8, state(8, 8));
  CHECK(f.session.fresh(seconds(0)).access_token == "access-token-initial-0");
  CHECK(f.session.fresh(seconds(0), Demand::required).access_token == "access-token-initial-0");
  CHECK(f.session.fresh(seconds(60)).access_token == "access-token-initial-0");
  CHECK(f.idp.refreshes == 0);
  f.store.save("short", state(8, 1));
  CHECK(f.session.fresh(seconds(60)).access_token == "access-token-refreshed-1");
  CHECK(f.idp.refreshes == 1);
}

TEST_CASE("a required demand above the provider's lifetime fails with the facts, without a request") {
  Fixture f(45, state(45, 40));
  CHECK(f.session.fresh(seconds(29), Demand::required).access_token == "access-token-initial-0");
  for (int i = 0; i < 2; ++i) {
    try {
      f.session.fresh(seconds(60), Demand::required);
      FAIL("a 60 s demand was met by 45 s tokens");
    } catch (const auth::LifetimeTooShort& e) {
      CHECK(e.kind() == ErrorKind::auth_required);
      CHECK(e.lifetime() == seconds(45));
      CHECK(e.asked() == seconds(60));
      CHECK(e.most() == seconds(34));
      CHECK(std::string(e.what()).find("valid for 45 s; 60 s were asked for") != std::string::npos);
      CHECK(std::string(e.what()).find("--") == std::string::npos);  // the CLI names its flags, not the library
    }
  }
  f.store.save("short", state(45, 5));  // expired, too: still no refresh for a demand that cannot be met
  CHECK_THROWS_AS(f.session.fresh(seconds(60), Demand::required), auth::LifetimeTooShort);
  CHECK(f.idp.refreshes == 0);
  CHECK(f.session.fresh(seconds(34), Demand::required).access_token == "access-token-refreshed-1");
  CHECK(f.idp.refreshes == 1);
}

TEST_CASE("an older state file (lifetime unknown): one refresh teaches the lifetime, then no more") {
  auto old = state(0, -10);
  old.logged_in = 0;  // nothing to estimate from
  Fixture f(45, old);
  CHECK_THROWS_WITH_AS(f.session.fresh(seconds(60), Demand::required), doctest::Contains("valid for 45 s"), auth::LifetimeTooShort);
  CHECK(f.idp.refreshes == 1);
  auto learnt = f.store.load("short");
  REQUIRE(learnt);
  CHECK(learnt->access_lifetime == 45);
  CHECK(learnt->access_token == "access-token-refreshed-1");  // kept: a good token for every other use
  CHECK_THROWS_AS(f.session.fresh(seconds(60), Demand::required), auth::LifetimeTooShort);
  CHECK(f.session.fresh(seconds(60)).access_token == "access-token-refreshed-1");
  CHECK(f.idp.refreshes == 1);
}
