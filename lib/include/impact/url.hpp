// URL parsing and the rules impact applies before it sends anything.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "impact/error.hpp"

namespace impact {

struct Url {
  std::string scheme;   // lower case
  std::string host;     // lower case, without brackets for IPv6
  int port = 0;         // explicit or the scheme's default
  std::string path;     // starts with '/', never empty
  std::string query;    // without '?'
  std::string userinfo; // never printed

  static std::optional<Url> parse(std::string_view text);
  std::string origin() const;  // scheme://host:port
  std::string str() const;     // without userinfo
  bool is_loopback() const;
};

// True when `url` is https, or http to a loopback host (127.0.0.0/8, ::1, localhost): the URLs impact sends
// requests to, and the only ones it hands to a browser (RFC 8628 section 5.4).
bool is_allowed_url(std::string_view url);

// Throws Error(kind) unless is_allowed_url(url). `what` names the setting for the message ("the WES endpoint").
// `kind` is usage for a URL the user gave, protocol for one a server sent (exit 1: the server's bad answer).
void require_allowed_url(std::string_view url, std::string_view what = "URL", ErrorKind kind = ErrorKind::usage);

bool same_origin(const Url& a, const Url& b);

// Joins a base URL and a path with exactly one slash between them.
std::string join_url(std::string_view base, std::string_view path);

// RFC 3986 percent-encoding of a path segment or query component.
std::string percent_encode(std::string_view text, bool keep_slash = false);

}  // namespace impact
