// Temporary S3 keys from STS AssumeRoleWithWebIdentity, exchanged for the user's OIDC token and cached
// (0600, under the XDG cache folder) until shortly before they expire.
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/storage.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::storage {
namespace {

std::chrono::system_clock::time_point parse_iso8601(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    throw Error(ErrorKind::protocol, "the STS sent an Expiration that is not a date: " + s.substr(0, 40));
  // The clock's range ends in 2262; keys claiming to outlive 2200 (or predate 1970) are not believed.
  if (tm.tm_year < 70 || tm.tm_year > 300)
    throw Error(ErrorKind::protocol, "the STS sent an impossible Expiration: " + s.substr(0, 40));
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += percent_encode(k) + "=" + percent_encode(v);
  }
  return out;
}

class StsKeys final : public CredentialSource {
 public:
  StsKeys(http::Options http, StsOptions o) : http_(std::move(http)), o_(std::move(o)) {}

  sigv4::Credentials get() override {
    const auto now = std::chrono::system_clock::now();
    if (current_ && current_->expires - now > o_.min_valid) return current_->keys;
    const std::string token = o_.web_identity_token();
    const std::string token_id = sigv4::sha256_hex(o_.sts_url + "\n" + token).substr(0, 32);
    if (auto cached = load(token_id); cached && cached->expires - now > o_.min_valid) {
      current_ = cached;
      return current_->keys;
    }
    current_ = fetch(token);
    save(token_id);
    return current_->keys;
  }

  void invalidate() override {
    current_.reset();
    std::error_code ec;
    if (!o_.cache_file.empty()) std::filesystem::remove(o_.cache_file, ec);
  }

 private:
  TemporaryKeys fetch(const std::string& token) {
    require_allowed_url(o_.sts_url, "the storage STS endpoint");
    http::Client client(http_);
    http::Request req;
    req.method = http::Method::post;
    req.url = o_.sts_url;
    req.retry_safe = true;  // asking twice only issues a second key pair
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.body = form_encode({{"Action", "AssumeRoleWithWebIdentity"},
                            {"Version", "2011-06-15"},
                            {"WebIdentityToken", token},
                            {"RoleArn", o_.role_arn},
                            {"RoleSessionName", "impact"},
                            {"DurationSeconds", std::to_string(o_.duration.count())}});
    auto r = client.send(std::move(req));
    if (!r.ok()) {
      pugi::xml_document doc;
      std::string code, message;
      if (doc.load_buffer(r.body.data(), r.body.size())) {
        code = doc.child("ErrorResponse").child("Error").child_value("Code");
        message = doc.child("ErrorResponse").child("Error").child_value("Message");
      }
      if (code == "InvalidIdentityToken" || code == "ExpiredTokenException")
        throw Error(ErrorKind::auth_required, "the storage's STS did not accept your login: " + message)
            .with_status(r.status).with_url(r.url).with_remedy(Remedy::login);
      if (!code.empty())
        throw Error(r.status >= 500 ? ErrorKind::server : ErrorKind::generic,
                    fmt::format("getting storage credentials from the STS failed: {}: {}", code, message),
                    "check storage.sts in the profile")
            .with_status(r.status).with_url(r.url);
      http::throw_for_status(r, "getting storage credentials from the STS");
    }
    return parse_sts_response(r);
  }

  std::optional<TemporaryKeys> load(const std::string& token_id) {
    if (o_.cache_file.empty()) return std::nullopt;
    try {
      auto j = impact::detail::parse_json(read_private_file(o_.cache_file, 64 << 10));
      if (j.value("token_id", "") != token_id || j.value("sts", "") != o_.sts_url) return std::nullopt;
      TemporaryKeys k{{j.at("access_key"), j.at("secret_key"), j.value("session_token", "")},
                      std::chrono::system_clock::from_time_t(j.at("expires").get<std::time_t>())};
      remember_secret(k.keys.secret_key);
      if (!k.keys.session_token.empty()) remember_secret(k.keys.session_token);
      return k;
    } catch (...) {
      return std::nullopt;  // missing or damaged: fetch new keys and overwrite it
    }
  }

  void save(const std::string& token_id) {
    if (o_.cache_file.empty()) return;
    nlohmann::json j = {{"sts", o_.sts_url},
                        {"token_id", token_id},
                        {"access_key", current_->keys.access_key},
                        {"secret_key", current_->keys.secret_key},
                        {"session_token", current_->keys.session_token},
                        {"expires", std::chrono::system_clock::to_time_t(current_->expires)}};
    ensure_private_dir(o_.cache_file.parent_path());
    write_file_atomic(o_.cache_file, j.dump(), 0600);
  }

  http::Options http_;
  StsOptions o_;
  std::optional<TemporaryKeys> current_;
};

}  // namespace

TemporaryKeys parse_sts_response(const http::Response& r) {
  pugi::xml_document doc;
  auto c = doc.load_buffer(r.body.data(), r.body.size())
               ? doc.child("AssumeRoleWithWebIdentityResponse").child("AssumeRoleWithWebIdentityResult").child("Credentials")
               : pugi::xml_node();
  TemporaryKeys k;
  k.keys = {c.child_value("AccessKeyId"), c.child_value("SecretAccessKey"), c.child_value("SessionToken")};
  if (!c || k.keys.access_key.empty() || k.keys.secret_key.empty())
    throw Error(ErrorKind::protocol, "the STS answer holds no credentials (AccessKeyId, SecretAccessKey)").with_url(r.url);
  remember_secret(k.keys.secret_key);
  if (!k.keys.session_token.empty()) remember_secret(k.keys.session_token);
  k.expires = parse_iso8601(c.child_value("Expiration"));
  return k;
}

std::unique_ptr<CredentialSource> sts_keys(http::Options http, StsOptions options) {
  return std::make_unique<StsKeys>(std::move(http), std::move(options));
}

}  // namespace impact::storage
