#include "impact/url.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>

#include "impact/error.hpp"
#include "impact/redact.hpp"

namespace impact {
namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}
int default_port(std::string_view scheme) {
  if (scheme == "https") return 443;
  if (scheme == "http") return 80;
  return 0;
}
}  // namespace

std::optional<Url> Url::parse(std::string_view text) {
  Url u;
  auto se = text.find("://");
  if (se == std::string_view::npos || se == 0) return std::nullopt;
  u.scheme = lower(text.substr(0, se));
  if (!std::all_of(u.scheme.begin(), u.scheme.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'; }))
    return std::nullopt;
  text.remove_prefix(se + 3);
  auto ae = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, ae);
  std::string_view rest = ae == std::string_view::npos ? std::string_view{} : text.substr(ae);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    u.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = lower(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    u.host = lower(authority);
    if (u.host.find(':') != std::string::npos) return std::nullopt;  // an IPv6 address needs brackets
  }
  if (u.host.empty()) return std::nullopt;
  if (u.host.find_first_of(" \t\r\n/\\[]") != std::string::npos) return std::nullopt;
  u.port = default_port(u.scheme);
  if (!port_text.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p <= 0 || p > 65535) return std::nullopt;
    u.port = p;
  }
  if (auto h = rest.find('#'); h != std::string_view::npos) rest = rest.substr(0, h);
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    u.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  u.path = rest.empty() ? "/" : std::string(rest);
  return u;
}

std::string Url::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port);
}

std::string Url::str() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string out = scheme + "://" + h;
  if (port != default_port(scheme)) {
    out += ':';
    out += std::to_string(port);
  }
  out += path;
  if (!query.empty()) out += "?" + query;
  return out;
}

bool Url::is_loopback() const {
  if (host == "localhost" || host == "localhost.") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool is_allowed_url(std::string_view url) {
  auto u = Url::parse(url);
  return u && (u->scheme == "https" || (u->scheme == "http" && u->is_loopback()));
}

void require_allowed_url(std::string_view url, std::string_view what, ErrorKind kind) {
  const bool users = kind == ErrorKind::usage;
  auto u = Url::parse(url);
  if (!u)
    throw Error(kind, std::string(what) + " is not a valid URL: " + redact_url(url),
                users ? "give a full URL such as https://host/path" : "the server sent it; ask the service's operators");
  if (u->scheme == "https") return;
  if (u->scheme == "http") {
    if (u->is_loopback()) return;
    throw Error(kind,
                "refusing plain http to " + u->host + " (" + std::string(what) + "): tokens would travel unencrypted",
                users ? "use an https:// URL; plain http is allowed only to 127.0.0.1, ::1 and localhost"
                      : "the server sent it; plain http is allowed only to 127.0.0.1, ::1 and localhost");
  }
  throw Error(kind, std::string(what) + " has unsupported scheme '" + u->scheme + "'",
              users ? "use an https:// URL" : "the server sent it; ask the service's operators");
}

bool same_origin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

std::string join_url(std::string_view base, std::string_view path) {
  std::string out(base);
  while (!out.empty() && out.back() == '/') out.pop_back();
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  out += '/';
  out += path;
  return out;
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace impact
