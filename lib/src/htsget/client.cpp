// htsget: service-info and ticket requests (GET per region, or one POST with regions).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::htsget {
using nlohmann::json;

namespace {

constexpr std::size_t kMaxTicketBytes = 64u << 20;

// An htsget error answer ({"htsget": {"error": "NotFound", "message": "..."}}) as an Error; other non-2xx
// answers as the HTTP layer words them.
[[noreturn]] void throw_ticket_error(const http::Response& r, std::string_view what) {
  const json doc = detail::parse_json(r.body);
  const json* h = doc.is_object() ? detail::member(doc, "htsget", json::value_t::object) : nullptr;
  if (!h) http::throw_for_status(r, what);
  std::string type = detail::string_member(*h, "error").substr(0, 64);
  std::string message = detail::string_member(*h, "message").substr(0, 300);
  for (auto& c : message)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  ErrorKind kind = kind_for_status(r.status);
  std::string hint;
  if (type == "InvalidRange") hint = "check the region's start and end";
  else if (type == "UnsupportedFormat") hint = "the server's service-info lists the formats it offers";
  std::string text = fmt::format("{} failed: HTTP {}", what, r.status);
  if (!type.empty()) text += " " + type;
  if (!message.empty()) text += ": " + message;
  Error e(kind, text, hint);
  e.with_status(r.status).with_url(r.url);
  if (kind == ErrorKind::auth_required) e.with_remedy(Remedy::login);
  if (kind == ErrorKind::forbidden) e.with_remedy(Remedy::passport);
  throw e;
}

}  // namespace

std::string base_url_of(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  for (std::string_view end : {"/reads", "/variants"})
    if (url.size() > end.size() && url.compare(url.size() - end.size(), end.size(), end) == 0) {
      url.resize(url.size() - end.size());
      break;
    }
  return url;
}

namespace {

}  // namespace

Client::Client(http::Client& http, std::string base_url, TokenFn token)
    : http_(http), base_(base_url_of(std::move(base_url))), token_(std::move(token)) {}

EndpointInfo Client::info(Endpoint e) {
  http::Request rq;
  rq.url = base_ + "/" + std::string(to_string(e)) + "/service-info";
  rq.headers.push_back({"Accept", "application/json"});
  if (token_) rq.headers.push_back({"Authorization", "Bearer " + token_()});
  http::Response r = http_.send(std::move(rq));
  const std::string what = fmt::format("htsget {} service-info", to_string(e));
  if (!r.ok()) http::throw_for_status(r, "reading " + what);
  return parse_endpoint_info(parse_json_body(r, what), what);
}

http::Request Client::request(http::Method m, std::string url, const Query& q) {
  http::Request rq;
  rq.method = m;
  rq.url = std::move(url);
  rq.max_body = kMaxTicketBytes;
  rq.headers.push_back({"Accept", "application/vnd.ga4gh.htsget.v1.3.0+json, application/json"});
  if (token_) rq.headers.push_back({"Authorization", "Bearer " + token_()});
  if (q.public_key) rq.headers.push_back({"Htsget-Context-Public-Key", crypt4gh::detail::base64_encode(*q.public_key)});
  return rq;
}

Ticket Client::get(const Query& q, const Region* region) {
  http::Response r = http_.send(request(http::Method::get, ticket_url(base_, q, region), q));
  const std::string what = region ? fmt::format("the htsget ticket for {} {}", q.id, to_string(*region))
                                  : fmt::format("the htsget ticket for {}", q.id);
  if (!r.ok()) throw_ticket_error(r, "asking for " + what);
  return parse_ticket(parse_json_body(r, what), what);
}

std::optional<Ticket> Client::post(const Query& q) {
  // Everything goes in the body: a POST with query parameters is InvalidInput.
  http::Request rq = request(http::Method::post, base_ + "/" + std::string(to_string(q.endpoint)) + "/" + percent_encode(q.id, true), q);
  rq.headers.push_back({"Content-Type", "application/json"});
  rq.body = post_body(q).dump();
  rq.retry_safe = true;  // asking for a ticket changes nothing on the server
  http::Response r = http_.send(std::move(rq));
  if (r.status == 404 || r.status == 405 || r.status == 501) return std::nullopt;
  const std::string what = fmt::format("the htsget ticket for {} ({} regions)", q.id, q.regions.size());
  if (!r.ok()) throw_ticket_error(r, "asking for " + what);
  return parse_ticket(parse_json_body(r, what), what);
}

std::vector<Ticket> Client::tickets(const Query& q) {
  if (q.id.empty()) throw Error(ErrorKind::usage, "an htsget id is empty");
  std::vector<Ticket> out;
  if (q.regions.size() > 1)
    if (auto t = post(q)) {
      out.push_back(std::move(*t));
      return out;
    }
  if (q.regions.empty()) {
    out.push_back(get(q, nullptr));
    return out;
  }
  for (const auto& r : q.regions) out.push_back(get(q, &r));
  return out;
}

}  // namespace impact::htsget
