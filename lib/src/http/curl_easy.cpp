#include "curl_easy.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "impact/cancel.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"
#include "text.hpp"

namespace impact::http::detail {

Easy::Easy() {
  h_ = curl_api().easy_init();
  if (!h_) throw Error(ErrorKind::generic, "libcurl could not create a handle (out of memory?)");
}
Easy::~Easy() {
  if (h_) curl_api().easy_cleanup(h_);
}
Easy& Easy::operator=(Easy&& o) noexcept {
  if (this != &o) {
    if (h_) curl_api().easy_cleanup(h_);
    h_ = o.h_;
    o.h_ = nullptr;
  }
  return *this;
}

Multi::Multi() {
  h_ = curl_api().multi_init();
  if (!h_) throw Error(ErrorKind::generic, "libcurl could not create a multi handle (out of memory?)");
}
Multi::~Multi() {
  if (h_) curl_api().multi_cleanup(h_);
}

void Slist::append(const std::string& line) {
  curl_slist* n = curl_api().slist_append(l_, line.c_str());
  if (!n) throw Error(ErrorKind::generic, "out of memory building request headers");
  l_ = n;
}

void Mime::build(CURL* easy, const std::vector<FormPart>& parts) {
  clear();
  m_ = curl_api().mime_init(easy);
  for (const auto& p : parts) {
    curl_mimepart* part = curl_api().mime_addpart(m_);
    curl_api().mime_name(part, p.name.c_str());
    if (!p.file.empty()) {
      if (curl_api().mime_filedata(part, p.file.c_str()) != CURLE_OK)
        throw Error(ErrorKind::io, "cannot read " + p.file.string());
      if (!p.filename.empty()) curl_api().mime_filename(part, p.filename.c_str());
    } else {
      curl_api().mime_data(part, p.value.data(), p.value.size());
      if (!p.filename.empty()) curl_api().mime_filename(part, p.filename.c_str());
    }
    if (!p.content_type.empty()) curl_api().mime_type(part, p.content_type.c_str());
  }
}

namespace {

using text::iequals;
using text::trim;

// libcurl's words (OpenSSL backend) for a certificate that does not name the host asked for.
bool is_name_mismatch(std::string_view detail) {
  for (std::string_view words : {"does not match target", "no alternative certificate subject name matches",
                                 "subject name does not match", "hostname mismatch"})
    if (detail.find(words) != std::string_view::npos) return true;
  return false;
}

NetPhase phase_of(CURLcode c, CURL* easy) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return NetPhase::dns;
    case CURLE_COULDNT_CONNECT:
      return NetPhase::connect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return NetPhase::tls;
    case CURLE_OPERATION_TIMEDOUT: {
      double connect = 0;
      curl_api().easy_getinfo(easy, CURLINFO_CONNECT_TIME, &connect);
      return connect > 0 ? NetPhase::transfer : NetPhase::connect;
    }
    default:
      return NetPhase::transfer;
  }
}

}  // namespace

Transfer::Transfer(const Request& request, const Options& options, std::size_t index)
    : request_(request), options_(options), index_(index), url_(request.url), method_(request.method),
      cap_(request.max_body ? request.max_body : options.max_body) {}

bool Transfer::idempotent() const noexcept { return is_idempotent(request_.method) || request_.retry_safe; }

void Transfer::restart() {
  url_ = request_.url;
  method_ = request_.method;
  send_body_ = true;
  strip_credentials_ = false;
  redirects_ = 0;
  ++attempt_;
  response_ = Response{};
  response_.attempts = attempt_;
  error_ = nullptr;
  failed_phase_ = NetPhase::none;
  if (request_.on_retry) request_.on_retry();
}

void Transfer::setup(CURL* h) {
  // A URL a server sent (or redirected to) that impact will not use is the server's bad answer, not the user's.
  require_allowed_url(url_, redirects_ > 0 ? "redirect target" : "request URL",
                      request_.server_url || redirects_ > 0 ? ErrorKind::protocol : ErrorKind::usage);
  curl_api().easy_reset(h);
  errbuf_[0] = '\0';
  status_checked_ = false;
  to_sink_ = false;
  callback_error_ = nullptr;
  response_.headers.clear();
  response_.body.clear();
  response_.status = 0;
  sent_headers_.clear();

  curl_api().easy_setopt(h, CURLOPT_URL, url_.c_str());
  curl_api().easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_api().easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are followed by finish(), with our rules
  curl_api().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_api().easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf_);
  curl_api().easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  set_limits(h);
  set_tls(h);
  set_headers(h);
  set_method_and_body(h);
  set_callbacks(h);
}

void Transfer::set_limits(CURL* h) {
  curl_api().easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  // A download streams to a sink: no total limit (it may be large), but a floor on its speed. Anything else is
  // an API call: under 1 byte/s is a stall, and the whole answer must come within the deadline.
  min_speed_ = request_.sink ? std::max(1L, options_.min_speed) : 1L;
  deadline_ms_ = options_.total_timeout_ms;
  if (deadline_ms_ <= 0 && !request_.sink && request_.form.empty()) deadline_ms_ = options_.api_deadline_ms;
  curl_api().easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, min_speed_);
  curl_api().easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options_.stall_seconds);
  if (deadline_ms_ > 0) curl_api().easy_setopt(h, CURLOPT_TIMEOUT_MS, deadline_ms_);
  curl_api().easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!request_.sink) curl_api().easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  // A large streamed download reads the socket in large chunks: fewer system calls and callbacks per byte.
  else if (request_.receive_buffer)
    curl_api().easy_setopt(h, CURLOPT_BUFFERSIZE, static_cast<long>(std::clamp<std::size_t>(request_.receive_buffer, 16u << 10, 1u << 20)));
}

void Transfer::set_tls(CURL* h) {
  curl_api().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_api().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_api().easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
}

void Transfer::set_headers(CURL* h) {
  headers_.clear();
  for (const auto& hd : request_.headers) {
    if (strip_credentials_ && (request_.listed_headers ? iequals(hd.name, "authorization") || iequals(hd.name, "cookie") ||
                                                             iequals(hd.name, "proxy-authorization")
                                                       : is_sensitive_header(hd.name)))
      continue;
    if (!send_body_ && iequals(hd.name, "content-type")) continue;
    headers_.append(hd.name + ": " + hd.value);
  }
  if (send_body_ && !request_.form.empty()) headers_.append("Expect:");
  curl_api().easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
}

void Transfer::set_method_and_body(CURL* h) {
  const bool body = send_body_ && (!request_.body.empty() || method_ == Method::post || method_ == Method::put ||
                                   method_ == Method::patch);
  switch (method_) {
    case Method::get: curl_api().easy_setopt(h, CURLOPT_HTTPGET, 1L); break;
    case Method::head: curl_api().easy_setopt(h, CURLOPT_NOBODY, 1L); break;
    case Method::post: curl_api().easy_setopt(h, CURLOPT_POST, 1L); break;
    default: curl_api().easy_setopt(h, CURLOPT_CUSTOMREQUEST, std::string(to_string(method_)).c_str()); break;
  }
  if (body) {
    if (!request_.form.empty()) {
      mime_.build(h, request_.form);
      curl_api().easy_setopt(h, CURLOPT_MIMEPOST, mime_.get());
    } else {
      curl_api().easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_.body.size()));
      curl_api().easy_setopt(h, CURLOPT_POSTFIELDS, request_.body.data());
    }
  }
  // libcurl silently re-sends a request whose reused connection died before any answer; a POST that is
  // not safe to repeat (WES submission) must not be re-sent behind our back, so it gets a new connection.
  curl_api().easy_setopt(h, CURLOPT_FRESH_CONNECT, idempotent() ? 0L : 1L);
}

void Transfer::set_callbacks(CURL* h) {
  curl_api().easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
  curl_api().easy_setopt(h, CURLOPT_WRITEDATA, this);
  curl_api().easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_api().easy_setopt(h, CURLOPT_HEADERDATA, this);
  curl_api().easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_api().easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
  curl_api().easy_setopt(h, CURLOPT_XFERINFODATA, this);
  if (options_.debug) {
    curl_api().easy_setopt(h, CURLOPT_DEBUGFUNCTION, &Transfer::on_debug);
    curl_api().easy_setopt(h, CURLOPT_DEBUGDATA, this);
    curl_api().easy_setopt(h, CURLOPT_VERBOSE, 1L);
  }
}

size_t Transfer::on_write(char* data, size_t size, size_t n, void* self_) {
  auto* self = static_cast<Transfer*>(self_);
  const size_t len = size * n;
  try {
    if (!self->status_checked_) {
      // The status line is known by now; only a success body goes to the sink, anything else is kept
      // (capped) as the error body.
      self->status_checked_ = true;
      self->to_sink_ = self->request_.sink && self->response_.status >= 200 && self->response_.status < 300;
    }
    if (self->to_sink_) {
      self->request_.sink(std::string_view(data, len));
      return len;
    }
    const std::size_t cap = self->request_.sink ? std::min<std::size_t>(self->cap_, 64u << 10) : self->cap_;
    if (self->response_.body.size() + len > cap) {
      if (self->request_.sink) return len;  // an error body: keep what fits, ignore the rest
      throw Error(ErrorKind::protocol,
                  fmt::format("the response from {} is larger than {} MiB; refusing to read it into memory",
                              redact_url(self->url_), cap >> 20));
    }
    self->response_.body.append(data, len);
    return len;
  } catch (...) {
    self->callback_error_ = std::current_exception();
    return CURL_WRITEFUNC_ERROR;
  }
}

size_t Transfer::on_header(char* data, size_t size, size_t n, void* self_) {
  auto* self = static_cast<Transfer*>(self_);
  const size_t len = size * n;
  try {
    std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {
      // A new response (after 100 Continue or a proxy's CONNECT): start over.
      self->response_.headers.clear();
      auto sp = line.find(' ');
      self->response_.status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
      return len;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    if (self->response_.headers.size() > 500) throw Error(ErrorKind::protocol, "the server sent too many headers");
    self->response_.headers.push_back({std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
    return len;
  } catch (...) {
    self->callback_error_ = std::current_exception();
    return 0;
  }
}

int Transfer::on_progress(void* self_, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* self = static_cast<Transfer*>(self_);
  if (cancel_requested()) return 1;
  if (self->options_.observer && dlnow > 0) {
    try {
      self->options_.observer->on_progress(self->index_, static_cast<std::uint64_t>(dlnow),
                                           static_cast<std::uint64_t>(dltotal));
    } catch (...) {
      self->callback_error_ = std::current_exception();
      return 1;
    }
  }
  return 0;
}

int Transfer::on_debug(CURL*, curl_infotype type, char* data, size_t size, void* self_) {
  auto* self = static_cast<Transfer*>(self_);
  if (type != CURLINFO_HEADER_OUT) return 0;
  try {
    std::string_view block(data, size);
    bool first = true;
    while (!block.empty()) {
      auto eol = block.find('\n');
      auto line = trim(block.substr(0, eol));
      block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 1);
      if (first) { first = false; continue; }  // the request line; the URL is reported separately
      auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      self->sent_headers_.push_back({std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
    }
  } catch (...) {
  }
  return 0;
}

void Transfer::report(long status, const std::string& error_text) const {
  if (!options_.observer) return;
  Exchange ex;
  ex.method = std::string(to_string(method_));
  ex.url = redact_url(url_);
  ex.status = status;
  ex.seconds = response_.timings.total;
  ex.attempt = attempt_;
  ex.error = redact(error_text);
  if (options_.debug) {
    for (const auto& h : sent_headers_) ex.request_headers.push_back({h.name, redact_header(h.name, h.value)});
    for (const auto& h : response_.headers) ex.response_headers.push_back({h.name, redact_header(h.name, h.value)});
  }
  try {
    options_.observer->on_exchange(ex);
  } catch (...) {
    // An observer that fails to print must not change the outcome of a transfer.
  }
}

Transfer::Step Transfer::finish(CURL* h, CURLcode code) {
  curl_api().easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME, &response_.timings.dns);
  curl_api().easy_getinfo(h, CURLINFO_CONNECT_TIME, &response_.timings.connect);
  curl_api().easy_getinfo(h, CURLINFO_APPCONNECT_TIME, &response_.timings.tls);
  curl_api().easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME, &response_.timings.first_byte);
  curl_api().easy_getinfo(h, CURLINFO_TOTAL_TIME, &response_.timings.total);
  response_.attempts = attempt_;
  response_.received = std::chrono::system_clock::now();

  if (callback_error_) {
    error_ = callback_error_;
    report(0, "aborted");
    failed_phase_ = NetPhase::none;
    return Step::failed;
  }
  if (code != CURLE_OK) return fail(h, code);

  curl_api().easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response_.status);
  response_.url = url_;
  report(response_.status, {});

  const long s = response_.status;
  const bool redirect = s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
  if (!redirect) return Step::done;
  char* next = nullptr;
  curl_api().easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
  if (!next) return Step::done;  // a 3xx without Location is the caller's to interpret
  return follow(next);
}

// libcurl reported an error: Ctrl-C, or a network failure in a known phase (retryable by its rules).
Transfer::Step Transfer::fail(CURL* h, CURLcode code) {
  if (code == CURLE_ABORTED_BY_CALLBACK && cancel_requested()) {
    error_ = std::make_exception_ptr(Error(ErrorKind::cancelled, "interrupted"));
    report(0, "interrupted");
    return Step::failed;
  }
  failed_phase_ = phase_of(code, h);
  connect_code_ = 0;
  curl_api().easy_getinfo(h, CURLINFO_HTTP_CONNECTCODE, &connect_code_);
  Error e = network_error(code);
  e.with_url(url_).with_phase(failed_phase_);
  error_ = std::make_exception_ptr(e);
  report(0, e.what());
  return Step::failed;
}

Error Transfer::network_error(CURLcode code) const {
  const Url u = Url::parse(url_).value_or(Url{});
  const std::string where = u.host + ":" + std::to_string(u.port);
  const std::string detail = errbuf_[0] ? std::string(errbuf_) : std::string(curl_api().easy_strerror(code));
  // Through a proxy, a failure to reach or use the proxy is the proxy's, not the service's: name it (without
  // its credentials) and where it was set.
  if (auto proxy = proxy_for(url_)) {
    const std::string via = fmt::format("the proxy {} (from {})", proxy_address(proxy->url), proxy->variable);
    const std::string fix = "check the proxy setting (" + proxy->variable + "), or leave " + u.host +
                            " out of it with NO_PROXY if it can be reached directly";
    if (code == CURLE_COULDNT_RESOLVE_PROXY)
      return Error(ErrorKind::network, fmt::format("cannot resolve the host of {}", via), fix);
    if (connect_code_ == 407)
      return Error(ErrorKind::network, fmt::format("{} asks for credentials (HTTP 407) to reach {}", via, where),
                   "give the proxy's user and password in " + proxy->variable + " (http://USER:PASSWORD@HOST:PORT)");
    if (connect_code_ != 0 && (connect_code_ < 200 || connect_code_ > 299))
      return Error(ErrorKind::network, fmt::format("{} refused to connect to {} (HTTP {})", via, where, connect_code_),
                   "the proxy could not or would not reach the service; " + fix);
    if (code == CURLE_COULDNT_CONNECT)
      return Error(ErrorKind::network, fmt::format("cannot connect to {}: {}", via, detail), fix);
    if (code == CURLE_PROXY)
      return Error(ErrorKind::network, fmt::format("{} failed: {}", via, detail), fix);
  }
  switch (failed_phase_) {
    case NetPhase::dns:
      return Error(ErrorKind::network, "cannot resolve host " + u.host, "check the URL in your profile and your DNS or proxy settings");
    case NetPhase::connect:
      return code == CURLE_OPERATION_TIMEDOUT
                 ? Error(ErrorKind::timeout, "timed out connecting to " + where, "check that the service is up and reachable from here")
                 : Error(ErrorKind::network, "cannot connect to " + where + ": " + detail,
                         "check that the service is up and reachable from here");
    case NetPhase::tls:
      // A certificate that is valid but issued for another name: a CA bundle cannot fix that.
      if (code == CURLE_PEER_FAILED_VERIFICATION && is_name_mismatch(detail))
        return Error(ErrorKind::network,
                     fmt::format("TLS with {} failed: the server's certificate is not for the host name {} ({})", where,
                                 u.host, detail),
                     "check the URL in the profile: it must use a name the certificate holds (a CA bundle does not "
                     "change that)");
      return Error(ErrorKind::network, "TLS with " + where + " failed: " + detail).with_remedy(Remedy::cacert);
    default:
      break;
  }
  if (code != CURLE_OPERATION_TIMEDOUT) return Error(ErrorKind::network, "transfer from " + where + " failed: " + detail);
  if (deadline_ms_ > 0 && response_.timings.total * 1000 + 50 >= static_cast<double>(deadline_ms_))
    return Error(ErrorKind::timeout, fmt::format("no complete answer from {} within {} ms", where, deadline_ms_));
  if (min_speed_ > 1)
    return Error(ErrorKind::timeout, fmt::format("transfer from {} stalled (under {} bytes/s for {} s)", where,
                                                 min_speed_, options_.stall_seconds));
  return Error(ErrorKind::timeout, fmt::format("transfer from {} stalled (no data for {} s)", where, options_.stall_seconds));
}

// A 3xx with a Location: our rules decide whether and how the request goes on (setup() again), or it fails.
Transfer::Step Transfer::follow(const std::string& target) {
  const long s = response_.status;
  if (++redirects_ > options_.max_redirects) {
    error_ = std::make_exception_ptr(
        Error(ErrorKind::protocol, fmt::format("more than {} redirects", options_.max_redirects)).with_url(request_.url));
    return Step::failed;
  }
  const auto from = Url::parse(url_);
  const auto to = Url::parse(target);
  if (!to) {
    error_ = std::make_exception_ptr(Error(ErrorKind::protocol, "the server redirected to an invalid URL").with_url(url_));
    return Step::failed;
  }
  const bool cross = !from || !same_origin(*from, *to);
  const bool keeps_body = (s == 307 || s == 308) && send_body_ &&
                          (!request_.body.empty() || !request_.form.empty());
  if (cross && keeps_body) {
    // The body may carry passports; never forward it to another host.
    error_ = std::make_exception_ptr(
        Error(ErrorKind::protocol, "the server redirected a request with a body to another host (" + to->host +
                                       "); refusing to forward it")
            .with_url(url_));
    return Step::failed;
  }
  if (cross) strip_credentials_ = true;
  if (s == 303 || ((s == 301 || s == 302) && method_ == Method::post)) {
    method_ = method_ == Method::head ? Method::head : Method::get;
    send_body_ = false;
  }
  url_ = target;
  return Step::redirect;
}

}  // namespace impact::http::detail
