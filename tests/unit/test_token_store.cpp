#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <tuple>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/token_store.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::mode_of;

namespace {
auth::TokenState sample() {
  auth::TokenState s;
  s.issuer = "https://login.example.org";
  s.client_id = "impact-cli";
  s.grant = "device_code";
  s.access_token = "access-token-value-1";
  s.access_expires = 1'800'000'000;
  s.refresh_token = "refresh-token-value-1";
  s.scope = "openid offline_access";
  s.visas = {"a.b.c"};
  return s;
}
}  // namespace

TEST_CASE("token store: round trip, 0600 file in a 0700 folder, remove") {
  test::TempDir tmp;
  auth::TokenStore store(tmp.path() / "tokens");
  CHECK_FALSE(store.load("p").has_value());
  store.save("p", sample());
  auto back = store.load("p");
  REQUIRE(back.has_value());
  CHECK(back->access_token == "access-token-value-1");
  CHECK(back->refresh_token == "refresh-token-value-1");
  CHECK(back->access_expires == 1'800'000'000);
  CHECK(back->visas == std::vector<std::string>{"a.b.c"});
  CHECK(mode_of(store.file("p")) == 0600);
  CHECK(mode_of(tmp.path() / "tokens") == 0700);
  CHECK(store.profiles() == std::vector<std::string>{"p"});
  CHECK(store.remove("p"));
  CHECK_FALSE(store.load("p").has_value());
}

TEST_CASE("token store: every member is written and read back") {
  auth::TokenState s = sample();
  s.refresh_expires = 1'800'000'001;
  s.subject = "sub-1";
  s.username = "alice";
  s.name = "Alice A";
  s.email = "alice@example.org";
  s.visas_fetched = 1'700'000'002;
  s.passport = "passport-value-1";
  s.passport_expires = 1'700'000'003;
  s.logged_in = 1'700'000'004;
  s.refreshed = 1'700'000'005;
  const std::string text = auth::serialize(s);
  auto back = auth::parse_token_state(text, "test");
  CHECK(std::tie(back.issuer, back.client_id, back.grant, back.access_token, back.refresh_token, back.scope, back.subject,
                 back.username, back.name, back.email, back.passport, back.visas) ==
        std::tie(s.issuer, s.client_id, s.grant, s.access_token, s.refresh_token, s.scope, s.subject, s.username, s.name,
                 s.email, s.passport, s.visas));
  CHECK(std::tie(back.access_expires, back.refresh_expires, back.visas_fetched, back.passport_expires, back.logged_in,
                 back.refreshed) == std::tie(s.access_expires, s.refresh_expires, s.visas_fetched, s.passport_expires,
                                             s.logged_in, s.refreshed));
  CHECK(auth::serialize(back) == text);
}

TEST_CASE("token store: a member of the wrong type is named; a missing one is empty") {
  CHECK_THROWS_WITH_AS(auth::parse_token_state(R"({"format": 1, "access_token": "at", "scope": 5})", "f"),
                       doctest::Contains("'scope' is not a string"), Error);
  CHECK_THROWS_WITH_AS(auth::parse_token_state(R"({"format": 1, "access_token": "at", "logged_in": "5"})", "f"),
                       doctest::Contains("'logged_in' is not an integer"), Error);
  auto s = auth::parse_token_state(R"({"format": 1, "refresh_token": "rt"})", "f");
  CHECK(s.access_token.empty());
  CHECK(s.access_expires == 0);
}

TEST_CASE("token store: corrupt, truncated or foreign files ask for a new login") {
  test::TempDir tmp;
  auth::TokenStore store(tmp.path());
  std::string good = auth::serialize(sample());
  for (std::string bad : {good.substr(0, good.size() / 2), std::string("[]"), std::string("{\"format\": 9}"),
                          std::string("{\"format\": 1, \"access_token\": 5}"), std::string("{\"format\": 1}"),
                          std::string("\x00\x01garbage", 9)}) {
    CAPTURE(bad);
    { std::ofstream(store.file("p"), std::ios::binary) << bad; }
    std::filesystem::permissions(store.file("p"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    try {
      store.load("p");
      FAIL("loaded");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::auth_required);
      CHECK(e.remedy() == Remedy::login);
      CHECK(e.hint().empty());  // the CLI words the login command
      CHECK(std::string(e.what()).find("refresh-token-value-1") == std::string::npos);
    }
  }
}

TEST_CASE("token store: the lock excludes other holders and times out") {
  test::TempDir tmp;
  auth::TokenStore store(tmp.path());
  std::atomic<int> inside{0}, most{0};
  {
    auto held = store.lock("p");
    CHECK_THROWS_AS(store.lock("p", std::chrono::milliseconds(50)), Error);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      auto l = store.lock("p");
      int now = ++inside;
      int prev = most.load();
      while (now > prev && !most.compare_exchange_weak(prev, now)) {}
      for (int k = 0; k < 1000; ++k) std::this_thread::yield();
      --inside;
    });
  for (auto& t : threads) t.join();
  CHECK(most.load() == 1);
}

#include "impact/config.hpp"
#include "impact/session.hpp"

TEST_CASE("tokens go only to the profile's services (same origin as a configured URL)") {
  Profile p;
  p.name = "p";
  p.issuer = "https://login.example.org/realms/x";
  p.wes = "https://wes.example.org/ga4gh/wes/v1";
  p.beacons["b"] = "https://beacon.example.org:8443/api";
  p.storage = StorageConfig{"https://s3.example.org", "results", "us-east-1", "https://sts.example.org", "runs/{run_id}/"};
  CHECK(auth::is_profile_service(p, "https://wes.example.org/ga4gh/wes/v1/runs"));
  CHECK(auth::is_profile_service(p, "https://beacon.example.org:8443/api/individuals"));
  CHECK(auth::is_profile_service(p, "https://sts.example.org/"));
  CHECK_FALSE(auth::is_profile_service(p, "https://beacon.example.org/api"));        // other port
  CHECK_FALSE(auth::is_profile_service(p, "http://wes.example.org/ga4gh/wes/v1"));    // other scheme
  CHECK_FALSE(auth::is_profile_service(p, "https://wes.example.org.evil.test/"));
  CHECK_FALSE(auth::is_profile_service(p, "https://evil.test/?u=https://wes.example.org"));
  CHECK_FALSE(auth::is_profile_service(p, "not a url"));
}

TEST_CASE("token store: a symbolic link in place of the token file or the lock is refused, never followed") {
  test::TempDir tmp;
  auth::TokenStore store(tmp.path() / "tokens");
  store.save("p", sample());
  // another file (say, planted by someone else) linked in place of the token state
  const auto elsewhere = tmp.path() / "elsewhere.json";
  { std::ofstream(elsewhere) << auth::serialize(sample()); }
  std::filesystem::remove(store.file("p"));
  std::filesystem::create_symlink(elsewhere, store.file("p"));
  try {
    store.load("p");
    FAIL("a linked token file was read");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK(std::string(e.what()).find("symbolic link") != std::string::npos);
  }
  // saving replaces the link itself; the file it pointed to is untouched
  const std::string before = read_file(elsewhere);
  auto s = sample();
  s.access_token = "access-token-value-2";
  store.save("p", s);
  CHECK_FALSE(std::filesystem::is_symlink(store.file("p")));
  CHECK(read_file(elsewhere) == before);
  CHECK(store.load("p")->access_token == "access-token-value-2");
  // a linked lock file is not opened (so not created or locked through the link)
  const auto victim = tmp.path() / "victim";
  std::filesystem::create_symlink(victim, tmp.path() / "tokens" / "p.lock");
  CHECK_THROWS_AS(store.lock("p"), Error);
  CHECK_FALSE(std::filesystem::exists(victim));
}
