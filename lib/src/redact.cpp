#include "impact/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <set>

#include "impact/url.hpp"
#include "text.hpp"

namespace impact {
namespace {

constexpr std::string_view kMask = "REDACTED";

std::mutex& secrets_mutex() {
  static std::mutex m;
  return m;
}
// Longest first, so that a secret containing another is replaced whole.
struct LongerFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::set<std::string, LongerFirst>& secrets() {
  static std::set<std::string, LongerFirst> s;
  return s;
}

using text::icontains;
using text::iequals;
bool is_b64url(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=';
}

// Replaces JWT/JWS-shaped runs (header.payload.signature, the header starting "eyJ").
std::string mask_jwts(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const bool boundary = i == 0 || (!std::isalnum(static_cast<unsigned char>(in[i - 1])) && in[i - 1] != '-' &&
                                     in[i - 1] != '_');
    if (in.compare(i, 3, "eyJ") == 0 && boundary) {
      std::size_t j = i;
      int dots = 0;
      while (j < in.size() && (is_b64url(in[j]) || (in[j] == '.' && dots < 2))) {
        if (in[j] == '.') ++dots;
        ++j;
      }
      if (dots == 2 && j - i >= 16) {
        out += kMask;
        i = j;
        continue;
      }
    }
    out += in[i++];
  }
  return out;
}

// "Bearer <anything>" / "Basic <anything>" up to the next whitespace or quote.
std::string mask_auth_schemes(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    bool masked = false;
    for (std::string_view scheme : {std::string_view("Bearer "), std::string_view("Basic ")}) {
      if (in.size() - i > scheme.size() && iequals(in.substr(i, scheme.size()), scheme)) {
        std::size_t j = i + scheme.size();
        std::size_t k = j;
        while (k < in.size() && !std::isspace(static_cast<unsigned char>(in[k])) && in[k] != '"' && in[k] != '\'')
          ++k;
        if (k - j >= 8) {
          out.append(in.substr(i, scheme.size()));
          out += kMask;
          i = k;
          masked = true;
          break;
        }
      }
    }
    if (!masked) out += in[i++];
  }
  return out;
}

constexpr std::array<std::string_view, 16> kSensitiveQueryKeys = {
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "sig",
    "access_token",    "id_token",         "refresh_token",        "token",     "code",
    "client_secret",   "password",         "secret",               "key",       "awsaccesskeyid",
    "x-goog-signature"};

bool sensitive_query_key(std::string_view key) {
  for (auto k : kSensitiveQueryKeys)
    if (iequals(key, k)) return true;
  return icontains(key, "token") || icontains(key, "secret") || icontains(key, "signature") ||
         icontains(key, "passport");
}

}  // namespace

void remember_secret(std::string_view secret) {
  if (secret.size() < 8) return;
  std::lock_guard lock(secrets_mutex());
  secrets().emplace(secret);
}

void forget_secrets() noexcept {
  std::lock_guard lock(secrets_mutex());
  secrets().clear();
}

std::string redact(std::string_view text) {
  std::string out(text);
  {
    std::lock_guard lock(secrets_mutex());
    for (const auto& s : secrets()) {
      std::size_t pos = 0;
      while ((pos = out.find(s, pos)) != std::string::npos) {
        out.replace(pos, s.size(), kMask);
        pos += kMask.size();
      }
    }
  }
  return mask_auth_schemes(mask_jwts(out));
}

std::string redact_url(std::string_view url) {
  std::string_view rest = url;
  std::string out;
  // Drop user-info ("scheme://user:pass@host").
  if (auto scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    out.append(rest.substr(0, scheme_end + 3));
    rest.remove_prefix(scheme_end + 3);
    auto authority_end = rest.find_first_of("/?#");
    auto authority = rest.substr(0, authority_end);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  }
  auto q = rest.find('?');
  if (q == std::string_view::npos) return redact(out.append(rest));
  out.append(rest.substr(0, q + 1));
  std::string_view query = rest.substr(q + 1);
  std::string_view fragment;
  if (auto h = query.find('#'); h != std::string_view::npos) {
    fragment = query.substr(h);
    query = query.substr(0, h);
  }
  bool first = true;
  while (true) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && sensitive_query_key(pair.substr(0, eq))) {
      out.append(pair.substr(0, eq + 1));
      out += kMask;
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  out.append(fragment);
  return redact(out);
}

bool is_sensitive_header(std::string_view name) {
  static constexpr std::array<std::string_view, 6> exact = {
      "authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-security-token", "x-api-key"};
  for (auto e : exact)
    if (iequals(name, e)) return true;
  return icontains(name, "token") || icontains(name, "secret") || icontains(name, "passport") ||
         icontains(name, "password");
}

std::string redact_header(std::string_view name, std::string_view value) {
  if (is_sensitive_header(name)) {
    // Keep the scheme word so that a debug log still shows which kind of credential was sent.
    auto sp = value.find(' ');
    if (iequals(name, "authorization") && sp != std::string_view::npos && sp < 16)
      return std::string(value.substr(0, sp + 1)).append(kMask);
    return std::string(kMask);
  }
  if (iequals(name, "location") || iequals(name, "content-location")) return redact_url(value);
  return redact(value);
}

}  // namespace impact
