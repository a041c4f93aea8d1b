#include "impact/api_client.hpp"

#include "api_request.hpp"
#include "impact/error.hpp"
#include "json_fields.hpp"

namespace impact::detail {

ApiClient::ApiClient(http::Client& http, std::string base_url, std::function<std::string()> token,
                     std::string_view api_root, std::function<bool(const nlohmann::json&)> recognise)
    : http_(http),
      base_(api_base(std::move(base_url))),
      token_(std::move(token)),
      api_root_(api_root),
      recognise_(std::move(recognise)) {}

http::Request ApiClient::request(http::Method m, const std::string& path) { return api_request(m, base_, path, token_); }

void ApiClient::discover() {
  if (discovered_) return;
  discovered_ = true;
  // "/ga4gh/wes/v1" → "/ga4gh/wes/": a URL that already names the API, whatever its version.
  if (base_.find(api_root_.substr(0, api_root_.rfind('/') + 1)) != std::string::npos) return;
  http::Request r;
  r.url = base_ + api_root_ + "/service-info";
  try {
    auto resp = http_.send(std::move(r));
    auto j = parse_json(resp.body);
    if (j.is_discarded()) j = nlohmann::json();
    if (resp.ok() && recognise_(j)) base_ += api_root_;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
  }
}

}  // namespace impact::detail
