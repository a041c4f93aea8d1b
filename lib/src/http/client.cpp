#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "curl_easy.hpp"
#include "impact/about.hpp"
#include "impact/cancel.hpp"
#include "impact/redact.hpp"
#include "impact/retry.hpp"
#include "impact/url.hpp"
#include "retry_wait.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::http {

using detail::curl_api;

std::string_view to_string(Method m) noexcept {
  switch (m) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::del: return "DELETE";
    case Method::options: return "OPTIONS";
    case Method::patch: return "PATCH";
  }
  return "GET";
}

bool is_idempotent(Method m) noexcept {
  return m == Method::get || m == Method::head || m == Method::put || m == Method::del || m == Method::options;
}

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& h : headers)
    if (text::iequals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

namespace {

// The host part of no_proxy's rules, lower case; true when `host` is covered.
bool no_proxy_covers(std::string_view list, std::string host) {
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::size_t i = 0;
  while (i <= list.size()) {
    auto j = list.find(',', i);
    if (j == std::string_view::npos) j = list.size();
    std::string rule(text::trim(list.substr(i, j - i)));
    for (auto& c : rule) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!rule.empty() && rule.front() == '[' && rule.back() == ']') rule = rule.substr(1, rule.size() - 2);
    if (rule == "*") return true;
    if (!rule.empty() && rule.front() == '.') rule.erase(0, 1);
    if (!rule.empty() && (host == rule || (host.size() > rule.size() && host.compare(host.size() - rule.size(), rule.size(), rule) == 0 &&
                                           host[host.size() - rule.size() - 1] == '.')))
      return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

std::optional<ProxySetting> proxy_for(std::string_view url) {
  const auto u = Url::parse(url);
  if (!u) return std::nullopt;
  auto env = [](const char* name) -> std::optional<ProxySetting> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    std::string variable(name);
    return ProxySetting{v, variable};
  };
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') {
      if (no_proxy_covers(v, u->host)) return std::nullopt;
      break;
    }
  }
  std::optional<ProxySetting> p;
  if (u->scheme == "http") p = env("http_proxy");
  else if (u->scheme == "https") p = env("https_proxy") ? env("https_proxy") : env("HTTPS_PROXY");
  if (!p) p = env("all_proxy") ? env("all_proxy") : env("ALL_PROXY");
  return p;
}

std::string proxy_address(std::string_view proxy) {
  if (auto s = proxy.find("://"); s != std::string_view::npos) proxy.remove_prefix(s + 3);
  if (auto at = proxy.rfind('@', proxy.find('/')); at != std::string_view::npos) proxy.remove_prefix(at + 1);
  if (auto slash = proxy.find('/'); slash != std::string_view::npos) proxy = proxy.substr(0, slash);
  std::string out;
  for (char c : proxy)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_')
      out += c;
  return out.empty() ? "(unnamed)" : out;
}

Options default_options() {
  Options o;
  o.user_agent = user_agent();
  for (const char* var : {"SSL_CERT_FILE", "CURL_CA_BUNDLE"}) {
    if (const char* v = std::getenv(var); v && *v) {
      o.ca_file = v;
      break;
    }
  }
  return o;
}

std::string curl_version() {
  try {
    const curl_version_info_data* info = detail::curl_api().version_info(CURLVERSION_NOW);
    return info && info->version ? info->version : "unknown";
  } catch (const Error&) {
    return "not available";  // the first request will say why
  }
}

std::string curl_build_version() { return LIBCURL_VERSION; }

namespace detail {

std::mt19937_64& retry_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

void wait_interruptibly(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    throw_if_cancelled();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(50)));
  }
  throw_if_cancelled();
}

std::optional<std::chrono::milliseconds> retry_wait(Transfer& t, Transfer::Step step, const RetryPolicy& policy) {
  Attempt a;
  a.number = t.response().attempts;
  a.idempotent = t.idempotent();
  if (step == Transfer::Step::failed) {
    a.failed_in = t.failed_phase();
    if (a.failed_in == NetPhase::none) return std::nullopt;
  } else {
    a.status = t.response().status;
    a.retry_after = t.response().header("Retry-After");
  }
  const auto d = decide_retry(policy, a, std::chrono::system_clock::now(), retry_rng());
  if (!d.retry) return std::nullopt;
  return d.wait;
}

}  // namespace detail

struct Client::Impl {
  Options options;
  std::optional<detail::Easy> easy;  // made by the first request: a client that sends nothing needs no libcurl
};

Client::Client(Options options) : impl_(std::make_unique<Impl>(Impl{std::move(options), std::nullopt})) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
const Options& Client::options() const noexcept { return impl_->options; }

Response Client::send(Request request) {
  if (!impl_->easy) impl_->easy.emplace();
  detail::Transfer t(request, impl_->options, 0);
  CURL* h = impl_->easy->get();
  for (;;) {
    throw_if_cancelled();
    t.setup(h);
    const CURLcode code = curl_api().easy_perform(h);
    const auto step = t.finish(h, code);
    if (step == detail::Transfer::Step::redirect) continue;
    const auto pause = detail::retry_wait(t, step, impl_->options.retry);
    if (!pause) {
      if (step == detail::Transfer::Step::failed) std::rethrow_exception(t.error());
      return std::move(t.response());
    }
    detail::wait_interruptibly(*pause);
    t.restart();
  }
}

namespace {
// The server's own words for an error, from the common JSON shapes (GA4GH {msg}, Beacon
// {error:{errorMessage}}, OAuth {error, error_description}, RFC 9457 {title, detail}), shortened to one line.
std::string server_message(const Response& r) {
  std::string msg;
  auto ct = r.header("Content-Type");
  if (ct && ct->find("json") != std::string_view::npos) {
    auto j = impact::detail::parse_json(r.body);
    if (j.is_object()) {
      auto str = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
      if (j.contains("msg")) msg = str(j["msg"]);
      else if (j.contains("message")) msg = str(j["message"]);
      else if (j.contains("error_description")) msg = str(j["error_description"]);
      else if (j.contains("error") && j["error"].is_object() && j["error"].contains("errorMessage"))
        msg = str(j["error"]["errorMessage"]);
      else if (j.contains("error")) msg = str(j["error"]);
      else if (j.contains("detail") || j.contains("title")) {  // RFC 9457 problem details
        const std::string title = j.contains("title") ? str(j["title"]) : std::string();
        const std::string detail = j.contains("detail") ? str(j["detail"]) : std::string();
        msg = title.empty() || detail.empty() ? title + detail : title + ": " + detail;
      }
    }
  } else if (ct && ct->find("text/plain") != std::string_view::npos) {
    msg = r.body;
  }
  std::replace_if(msg.begin(), msg.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  msg.erase(std::remove_if(msg.begin(), msg.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }), msg.end());
  if (msg.size() > 200) msg = msg.substr(0, 197) + "...";
  return msg;
}
}  // namespace

void throw_for_status(const Response& r, std::string_view what) {
  const ErrorKind kind = kind_for_status(r.status);
  std::string text = fmt::format("{} failed: HTTP {}", what, r.status);
  if (auto m = server_message(r); !m.empty()) text += ": " + m;
  std::string hint;
  Remedy remedy = Remedy::none;
  switch (kind) {
    case ErrorKind::auth_required: remedy = Remedy::login; break;
    case ErrorKind::forbidden:
      hint = "your account or passport does not grant this";
      remedy = Remedy::passport;
      break;
    case ErrorKind::rate_limited: {
      auto ra = r.header("Retry-After");
      hint = ra ? fmt::format("the server asks to wait ({}) before trying again", *ra) : "try again later";
      break;
    }
    case ErrorKind::server: hint = "the service has a problem; try again later or contact its operators"; break;
    default: break;
  }
  throw Error(kind, text, hint).with_status(r.status).with_url(r.url).with_remedy(remedy);
}

}  // namespace impact::http
