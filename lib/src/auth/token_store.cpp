#include "impact/token_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
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
#include "json_fields.hpp"

namespace impact::auth {
namespace {

using nlohmann::json;
constexpr int kFormat = 1;

// The members of the state file besides "format" and "visas" (an object's members are written sorted by name).
constexpr std::array<std::pair<const char*, std::string TokenState::*>, 11> kTextFields{{
    {"issuer", &TokenState::issuer}, {"client_id", &TokenState::client_id}, {"grant", &TokenState::grant},
    {"access_token", &TokenState::access_token}, {"refresh_token", &TokenState::refresh_token},
    {"scope", &TokenState::scope}, {"subject", &TokenState::subject}, {"username", &TokenState::username},
    {"name", &TokenState::name}, {"email", &TokenState::email}, {"passport", &TokenState::passport}}};
// "access_lifetime" and "refresh_lifetime" came later: a file without them (older versions) reads as 0, unknown.
constexpr std::array<std::pair<const char*, std::int64_t TokenState::*>, 8> kIntegerFields{{
    {"access_expires", &TokenState::access_expires}, {"access_lifetime", &TokenState::access_lifetime},
    {"refresh_expires", &TokenState::refresh_expires}, {"refresh_lifetime", &TokenState::refresh_lifetime},
    {"visas_fetched", &TokenState::visas_fetched}, {"passport_expires", &TokenState::passport_expires},
    {"logged_in", &TokenState::logged_in}, {"refreshed", &TokenState::refreshed}}};

Error corrupt(const std::string& origin, std::string_view why) {
  return Error(ErrorKind::auth_required, fmt::format("the login state {} is unreadable ({})", origin, why))
      .with_remedy(Remedy::login);
}

}  // namespace

TokenState::~TokenState() {
  for (auto* s : {&access_token, &refresh_token, &passport}) oidc::wipe(*s);
  for (auto& v : visas) oidc::wipe(v);
}

std::string serialize(const TokenState& s) {
  json j = {{"format", kFormat}, {"visas", s.visas}};
  for (const auto& [k, field] : kTextFields) j[k] = s.*field;
  for (const auto& [k, field] : kIntegerFields) j[k] = s.*field;
  std::string out = j.dump(2) + "\n";
  // the json object held copies of the secrets
  for (const char* k : {"access_token", "refresh_token", "passport"}) oidc::wipe(j[k].get_ref<std::string&>());
  for (auto& v : j["visas"]) oidc::wipe(v.get_ref<std::string&>());
  return out;
}

TokenState parse_token_state(std::string_view text, const std::string& origin) {
  auto j = impact::detail::parse_json(text);
  if (j.is_discarded()) throw corrupt(origin, "not valid JSON; the file may be truncated");
  if (!j.is_object()) throw corrupt(origin, "not a JSON object");
  if (auto f = j.find("format"); f == j.end() || *f != kFormat)
    throw corrupt(origin, "written by another version of impact");
  TokenState s;
  try {
    for (const auto& [k, field] : kTextFields) s.*field = detail::string_member_strict(j, k);
    for (const auto& [k, field] : kIntegerFields) s.*field = detail::integer_member_strict(j, k);
    if (j.contains("visas")) s.visas = j.at("visas").get<std::vector<std::string>>();
  } catch (const detail::WrongType& e) {
    throw corrupt(origin, e.what());
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
  std::string text;
  try {
    text = read_private_file(path, 4u << 20);  // a symbolic link in its place is refused, never followed
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::not_found) return std::nullopt;
    throw;
  }
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
