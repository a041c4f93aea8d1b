// storage::resolve and storage::credential_chain: what a `results` target names, and the keys that sign
// its requests (environment, keys file, STS with the user's token), against a loopback storage.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>

#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/storage.hpp"
#include "mini_server.hpp"
#include "temp_dir.hpp"

using namespace impact;
using test::MiniServer;
using test::reply;

namespace {

// The user's login: records which services asked for the token.
struct Login : auth::Credentials {
  std::vector<std::string> asked;
  std::string bearer_token(std::string_view url, std::chrono::seconds) override {
    asked.emplace_back(url);
    return "oidc-token-7f3a";
  }
  bool has_token() override { return true; }
  std::vector<std::string> passports_for(const std::vector<std::string>&) override { return {}; }
};

// Unsets the AWS_* variables for one test (and restores nothing: no test sets them for others).
struct NoEnvKeys {
  NoEnvKeys() {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::unsetenv("AWS_SESSION_TOKEN");
  }
  ~NoEnvKeys() {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
  }
};

std::string sts_answer(const std::string& key, const std::string& expires) {
  return "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>" + key +
         "</AccessKeyId><SecretAccessKey>sts-secret-91</SecretAccessKey><SessionToken>sess-tok-55</SessionToken>"
         "<Expiration>" + expires + "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
         "</AssumeRoleWithWebIdentityResponse>";
}

std::string iso_in(std::chrono::seconds from_now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + from_now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A storage with an STS at /sts whose keys expire after `lifetime`, and one bucket "results" holding
// runs/r1/a.txt and runs/r1/b.txt. Counts the STS requests.
struct Storage {
  std::mutex mu;
  std::atomic<int> sts_calls{0};
  std::vector<test::SeenRequest> seen;
  std::chrono::seconds lifetime{3600};
  MiniServer server{[this](const test::SeenRequest& q) {
    std::lock_guard l(mu);
    seen.push_back(q);
    if (q.target == "/sts") return reply(200, sts_answer("STSKEY" + std::to_string(++sts_calls), iso_in(lifetime)));
    if (q.method == "HEAD") return reply(404);
    if (q.target.find("prefix=runs%2Fr1%2F") != std::string::npos)
      return reply(200,
                   "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>runs/r1/a.txt</Key><Size>2</Size>"
                   "</Contents><Contents><Key>runs/r1/b.txt</Key><Size>3</Size></Contents></ListBucketResult>");
    return reply(200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  }};

  std::vector<test::SeenRequest> requests() {
    std::lock_guard l(mu);
    return seen;
  }

  Profile profile(bool sts) {
    Profile p;
    p.name = "node";
    p.issuer = "https://login.example.org/";
    StorageConfig st;
    st.url = server.url("");
    st.bucket = "results";
    if (sts) st.sts = server.url("/sts");
    p.storage = st;
    return p;
  }
};

http::Options quick() {
  http::Options h = http::default_options();
  h.retry.max_attempts = 1;
  return h;
}

std::string authorization(const http::Request& r) {
  for (const auto& h : r.headers)
    if (h.name == "Authorization") return h.value;
  return {};
}

}  // namespace

TEST_CASE("resolve: a run id is its result_prefix, listed with the environment's keys; the factory signs") {
  NoEnvKeys clean;
  ::setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "env-secret-123", 1);
  Storage st;
  const Profile p = st.profile(false);
  storage::ResolveInput in{"r1", &p, nullptr, quick(), {}};
  const auto r = storage::resolve(in);
  CHECK(r.run_id == "r1");
  CHECK(r.bucket == "results");
  CHECK(r.prefix == "runs/r1/");
  CHECK_FALSE(r.from_outputs);
  REQUIRE(r.objects.size() == 2);
  CHECK(r.objects[1].key == "runs/r1/b.txt");
  REQUIRE(r.make_request);
  CHECK(r.full_checksum);
  const auto req = r.make_request(r.objects[0], std::make_pair(std::uint64_t{0}, std::uint64_t{0}));
  CHECK(req.url == st.server.url("/results/runs/r1/a.txt"));
  CHECK(authorization(req).find("Credential=ENVKEY/") != std::string::npos);
}

TEST_CASE("resolve: STS keys for the user's token sign the requests, and are fetched again as they expire") {
  NoEnvKeys clean;
  test::TempDir tmp;
  Storage st;
  const Profile p = st.profile(true);
  Login login;
  SUBCASE("long-lived keys: one STS exchange for the whole download, cached 0600") {
    storage::ResolveInput in{"s3://results/runs/r1/", &p, &login, quick(), tmp.path() / "s3.json"};
    const auto r = storage::resolve(in);
    REQUIRE(r.objects.size() == 2);
    const auto a = r.make_request(r.objects[0], std::nullopt);
    const auto b = r.make_request(r.objects[1], std::nullopt);
    CHECK(authorization(a).find("Credential=STSKEY1/") != std::string::npos);
    CHECK(authorization(b).find("Credential=STSKEY1/") != std::string::npos);
    CHECK(st.sts_calls == 1);
    CHECK(test::mode_of(tmp.path() / "s3.json") == 0600);
    // The token went to the STS only, asked for by the STS URL; the STS got it in the form body.
    REQUIRE(login.asked.size() == 1);
    CHECK(login.asked[0] == p.storage->sts);
    const auto seen = st.requests();
    REQUIRE(seen.size() >= 2);
    CHECK(seen[0].target == "/sts");
    CHECK(seen[0].body.find("WebIdentityToken=oidc-token-7f3a") != std::string::npos);
    for (std::size_t i = 1; i < seen.size(); ++i) {
      CHECK(seen[i].body.find("oidc-token") == std::string::npos);
      for (const auto& [name, value] : seen[i].headers) CHECK(value.find("oidc-token") == std::string::npos);
    }
  }
  SUBCASE("keys about to expire are renewed before the next request is signed") {
    st.lifetime = std::chrono::seconds(120);  // under the 5 minutes the chain wants left
    storage::ResolveInput in{"s3://results/runs/r1/", &p, &login, quick(), tmp.path() / "s3.json"};
    const auto r = storage::resolve(in);
    const int after_listing = st.sts_calls;
    const auto a = r.make_request(r.objects[0], std::nullopt);
    CHECK(st.sts_calls == after_listing + 1);
    CHECK(authorization(a).find("Credential=STSKEY" + std::to_string(st.sts_calls.load()) + "/") != std::string::npos);
  }
}

TEST_CASE("credential_chain: environment, then keys file, then STS; none is an auth error") {
  NoEnvKeys clean;
  test::TempDir tmp;
  Storage st;
  Profile p = st.profile(false);
  Login login;
  auto kind_of = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::generic;
  };
  CHECK(kind_of([&] { storage::credential_chain(p, &login, quick()); }) == ErrorKind::auth_required);
  Profile none;
  none.name = "bare";
  CHECK(kind_of([&] { storage::credential_chain(none, &login, quick()); }) == ErrorKind::config);
  // A keys file wins over the STS; the environment wins over both.
  const auto file = tmp.path() / "keys";
  std::ofstream(file) << "FILEKEY\nfile-secret-456\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  p.storage->keys_file = file.string();
  p.storage->sts = st.server.url("/sts");
  CHECK(storage::credential_chain(p, &login, quick())->get().access_key == "FILEKEY");
  ::setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "env-secret-123", 1);
  CHECK(storage::credential_chain(p, &login, quick())->get().access_key == "ENVKEY");
  CHECK(st.sts_calls == 0);
  CHECK(login.asked.empty());
}

TEST_CASE("resolve: a presigned URL needs no profile and no keys; its requests carry no Authorization") {
  MiniServer s([](const test::SeenRequest&) {
    return test::Reply{"HTTP/1.1 206 Partial\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/4\r\nETag: \"e\"\r\n\r\na", false, false};
  });
  const std::string url = s.url("/results/runs/r1/out.txt?X-Amz-Signature=abc");
  storage::ResolveInput in{url, nullptr, nullptr, quick(), {}};
  const auto r = storage::resolve(in);
  CHECK(r.bucket.empty());
  REQUIRE(r.objects.size() == 1);
  CHECK(r.objects[0].size == 4);
  CHECK_FALSE(r.full_checksum);
  const auto req = r.make_request(r.objects[0], std::make_pair(std::uint64_t{1}, std::uint64_t{3}));
  CHECK(req.url == url);
  CHECK(authorization(req).empty());
  REQUIRE(req.headers.size() == 1);
  CHECK(req.headers[0].value == "bytes=1-3");
  // Anything else needs a profile.
  storage::ResolveInput bare{"r1", nullptr, nullptr, quick(), {}};
  CHECK_THROWS_AS(storage::resolve(bare), Error);
}
