// What the clients of GA4GH APIs (WES, TES) share when they build requests (internal).
#pragma once
#include <functional>
#include <string>

#include "impact/http.hpp"
#include "impact/url.hpp"

namespace impact::detail {

// A base URL without its trailing slashes ("…/v1/" and "…/v1" are one API root).
inline std::string api_base(std::string base) {
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base;
}

// A request for `path` below the API root `base` that accepts JSON and carries the bearer token when there is
// a token function (an anonymous profile has none). The token is asked for on each request, so a long wait
// uses a refreshed one.
inline http::Request api_request(http::Method m, const std::string& base, const std::string& path,
                                 const std::function<std::string()>& token) {
  http::Request r;
  r.method = m;
  r.url = join_url(base, path);
  r.headers.push_back({"Accept", "application/json"});
  if (token) r.headers.push_back({"Authorization", "Bearer " + token()});
  return r;
}

}  // namespace impact::detail
