// What the clients of GA4GH APIs (WES, TES) share: the HTTP client they send through, the API root (found
// below a server's origin on first use), and the bearer token function.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"

namespace impact::detail {

class ApiClient {
 public:
  const std::string& base_url() const { return base_; }

 protected:
  // `api_root` is the specification's path ("/ga4gh/wes/v1"); `recognise` says whether a service-info
  // document (null when the body is not JSON) is the API's.
  ApiClient(http::Client& http, std::string base_url, std::function<std::string()> token, std::string_view api_root,
            std::function<bool(const nlohmann::json&)> recognise);

  // A request for `path` below the API root (api_request: JSON accepted, the token when there is one).
  http::Request request(http::Method m, const std::string& path);
  // Once: a base URL that does not name the API is the server's origin (or a prefix) when the specification's
  // root below it answers service-info as the API; then the root is appended. Only Ctrl-C is thrown.
  void discover();

  http::Client& http_;
  std::string base_;
  std::function<std::string()> token_;

 private:
  std::string api_root_;
  std::function<bool(const nlohmann::json&)> recognise_;
  bool discovered_ = false;
};

}  // namespace impact::detail
