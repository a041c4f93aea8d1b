// RAII over libcurl, and one transfer attempt shared by Client and Batch. Internal: never include this
// header outside lib/src/http/.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include "curl_api.hpp"
#include "impact/http.hpp"

namespace impact::http::detail {

class Easy {
 public:
  Easy();
  ~Easy();
  Easy(Easy&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Easy& operator=(Easy&& o) noexcept;
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
  CURL* get() const noexcept { return h_; }

 private:
  CURL* h_ = nullptr;
};

class Multi {
 public:
  Multi();
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;
  CURLM* get() const noexcept { return h_; }

 private:
  CURLM* h_ = nullptr;
};

class Slist {
 public:
  Slist() = default;
  ~Slist() { clear(); }
  Slist(const Slist&) = delete;
  Slist& operator=(const Slist&) = delete;
  void append(const std::string& line);
  void clear() {
    if (l_) curl_api().slist_free_all(l_);
    l_ = nullptr;
  }
  curl_slist* get() const noexcept { return l_; }

 private:
  curl_slist* l_ = nullptr;
};

class Mime {
 public:
  Mime() = default;
  ~Mime() { clear(); }
  Mime(const Mime&) = delete;
  Mime& operator=(const Mime&) = delete;
  void build(CURL* easy, const std::vector<FormPart>& parts);
  curl_mime* get() const noexcept { return m_; }
  void clear() {
    if (m_) curl_api().mime_free(m_);
    m_ = nullptr;
  }

 private:
  curl_mime* m_ = nullptr;
};

// One request as it travels: redirects change its URL (and for 301/302/303 its method), and a move to
// another origin strips credentials. One Transfer lives across all attempts of a request.
class Transfer {
 public:
  Transfer(const Request& request, const Options& options, std::size_t index);

  // Prepares `easy` for the next attempt (after curl_easy_reset).
  void setup(CURL* easy);

  enum class Step { done, redirect, failed };
  // Reads the result of a finished attempt. On `done` the response is in response(); on `redirect` call
  // setup() again; on `failed` error() holds what went wrong (a network error has no response).
  Step finish(CURL* easy, CURLcode code);

  Response& response() noexcept { return response_; }
  std::exception_ptr error() const noexcept { return error_; }
  NetPhase failed_phase() const noexcept { return failed_phase_; }
  void restart();  // before a retry: back to the original URL, fresh response, sink reset
  const Request& request() const noexcept { return request_; }
  bool idempotent() const noexcept;

 private:
  static size_t on_write(char* data, size_t size, size_t n, void* self);
  static size_t on_header(char* data, size_t size, size_t n, void* self);
  static int on_progress(void* self, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t);
  static int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* self);
  void report(long status, const std::string& error_text) const;
  void set_limits(CURL* easy);
  void set_tls(CURL* easy);
  void set_headers(CURL* easy);
  void set_method_and_body(CURL* easy);
  void set_callbacks(CURL* easy);
  Step fail(CURL* easy, CURLcode code);
  Error network_error(CURLcode code) const;
  Step follow(const std::string& target);

  const Request& request_;
  const Options& options_;
  std::size_t index_;
  std::string url_;
  Method method_;
  bool send_body_ = true;
  bool strip_credentials_ = false;
  int redirects_ = 0;
  long deadline_ms_ = 0;  // CURLOPT_TIMEOUT_MS of this attempt (0: none)
  long min_speed_ = 1;    // CURLOPT_LOW_SPEED_LIMIT of this attempt
  int attempt_ = 1;
  Response response_;
  bool status_checked_ = false;
  bool to_sink_ = false;
  std::size_t cap_;
  std::exception_ptr error_;
  std::exception_ptr callback_error_;
  NetPhase failed_phase_ = NetPhase::none;
  long connect_code_ = 0;  // a proxy's answer to CONNECT, when the failure came after one
  Headers sent_headers_;
  Slist headers_;
  Mime mime_;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

// Whether the attempt that just ended (`step`: done or failed) is to be repeated, and after how long; the same
// rule for Client and Batch. A failure that is not the network's (a refused redirect, a callback's error) never is.
std::optional<std::chrono::milliseconds> retry_wait(Transfer& t, Transfer::Step step, const RetryPolicy& policy);

}  // namespace impact::http::detail
