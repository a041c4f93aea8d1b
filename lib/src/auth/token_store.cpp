#include "impact/token_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/oidc.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"

namespace impact::auth {
namespace {

using nlohmann::json;
constexpr int kFormat = 1;

Error corrupt(const std::string& origin, std::string_view why) {
  return Error(ErrorKind::auth_required, fmt::format("the login state {} is unreadable ({})", origin, why),
               "run: impact login");
}

}  // namespace

TokenState::~TokenState() {
  for (auto* s : {&access_token, &refresh_token, &passport}) oidc::wipe(*s);
  for (auto& v : visas) oidc::wipe(v);
}

std::string serialize(const TokenState& s) {
  json j = {{"format", kFormat},          {"issuer", s.issuer},
            {"client_id", s.client_id},   {"grant", s.grant},
            {"access_token", s.access_token}, {"access_expires", s.access_expires},
            {"refresh_token", s.refresh_token}, {"refresh_expires", s.refresh_expires},
            {"scope", s.scope},           {"subject", s.subject},
            {"username", s.username},     {"name", s.name},
            {"email", s.email},           {"visas", s.visas},
            {"visas_fetched", s.visas_fetched}, {"passport", s.passport},
            {"passport_expires", s.passport_expires}, {"logged_in", s.logged_in},
            {"refreshed", s.refreshed}};
  std::string out = j.dump(2) + "\n";
  // the json object held copies of the secrets
  for (const char* k : {"access_token", "refresh_token", "passport"}) oidc::wipe(j[k].get_ref<std::string&>());
  for (auto& v : j["visas"]) oidc::wipe(v.get_ref<std::string&>());
  return out;
}

TokenState parse_token_state(std::string_view text, const std::string& origin) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw corrupt(origin, "not valid JSON; the file may be truncated");
  if (!j.is_object()) throw corrupt(origin, "not a JSON object");
  if (auto f = j.find("format"); f == j.end() || *f != kFormat)
    throw corrupt(origin, "written by another version of impact");
  TokenState s;
  try {
    auto text_of = [&](const char* k) { return j.contains(k) ? j.at(k).get<std::string>() : std::string(); };
    auto int_of = [&](const char* k) {
      if (!j.contains(k)) return std::int64_t{0};
      // get<int64_t> of a float out of range is undefined behaviour: only integers are accepted.
      if (!j.at(k).is_number_integer()) throw corrupt(origin, fmt::format("'{}' is not an integer", k));
      return j.at(k).get<std::int64_t>();
    };
    s.issuer = text_of("issuer");
    s.client_id = text_of("client_id");
    s.grant = text_of("grant");
    s.access_token = text_of("access_token");
    s.access_expires = int_of("access_expires");
    s.refresh_token = text_of("refresh_token");
    s.refresh_expires = int_of("refresh_expires");
    s.scope = text_of("scope");
    s.subject = text_of("subject");
    s.username = text_of("username");
    s.name = text_of("name");
    s.email = text_of("email");
    if (j.contains("visas")) s.visas = j.at("visas").get<std::vector<std::string>>();
    s.visas_fetched = int_of("visas_fetched");
    s.passport = text_of("passport");
    s.passport_expires = int_of("passport_expires");
    s.logged_in = int_of("logged_in");
    s.refreshed = int_of("refreshed");
  } catch (const json::exception&) {
    throw corrupt(origin, "a field has the wrong type");
  }
  for (const char* k : {"access_token", "refresh_token", "passport"})
    if (j.contains(k) && j[k].is_string()) oidc::wipe(j[k].get_ref<std::string&>());
  if (s.access_token.empty() && s.refresh_token.empty()) throw corrupt(origin, "it holds no token");
  for (const auto* t : {&s.access_token, &s.refresh_token, &s.passport}) remember_secret(*t);
  return s;
}

TokenStore::TokenStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
TokenStore TokenStore::standard() { return TokenStore(state_home() / "tokens"); }

std::filesystem::path TokenStore::file(const std::string& profile) const { return dir_ / (profile + ".json"); }

std::optional<TokenState> TokenStore::load(const std::string& profile) const {
  auto path = file(profile);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::string text = read_file(path, 4u << 20);
  TokenState s = parse_token_state(text, path.string());
  oidc::wipe(text);
  return s;
}

void TokenStore::save(const std::string& profile, const TokenState& state) const {
  ensure_private_dir(dir_);
  std::string text = serialize(state);
  write_file_atomic(file(profile), text, 0600);
  oidc::wipe(text);
}

bool TokenStore::remove(const std::string& profile) const {
  std::error_code ec;
  bool removed = std::filesystem::remove(file(profile), ec);
  std::filesystem::remove(dir_ / (profile + ".lock"), ec);
  return removed;
}

std::vector<std::string> TokenStore::profiles() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec))
    if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

TokenStore::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

TokenStore::Lock TokenStore::lock(const std::string& profile, std::chrono::milliseconds timeout) const {
  ensure_private_dir(dir_);
  auto path = dir_ / (profile + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    throw Error(ErrorKind::io, fmt::format("cannot open the lock file {}: {}", path.string(), std::strerror(errno)));
  Lock held(fd);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(2);
  // flock has no timeout; poll without blocking, backing off to 50 ms, so Ctrl-C and the deadline work.
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      throw Error(ErrorKind::io, fmt::format("cannot lock {}: {}", path.string(), std::strerror(errno)));
    throw_if_cancelled();
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error(ErrorKind::timeout, fmt::format("another impact process has held the login state of '{}' for too long", profile),
                  "wait for it to finish, or look for a stuck impact process");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return held;
}

}  // namespace impact::auth
