// The HTTP layer's public face. libcurl stays behind this header (only lib/src/http/ includes it).
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "impact/error.hpp"

namespace impact::http {

enum class Method { get, head, post, put, del, options, patch };
std::string_view to_string(Method m) noexcept;
// GET, HEAD, PUT, DELETE and OPTIONS may be repeated without changing the outcome (RFC 9110 9.2.2).
bool is_idempotent(Method m) noexcept;

struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;
std::optional<std::string_view> find_header(const Headers& headers, std::string_view name);

// One part of a multipart/form-data body: a plain field (value) or a file (path, sent as `filename`).
struct FormPart {
  std::string name;
  std::string value;
  std::filesystem::path file;
  std::string filename;
  std::string content_type;
};

// Receives the body of a streamed response, chunk by chunk. It may throw; the transfer is then aborted and
// the exception rethrown to the caller once libcurl has returned.
using Sink = std::function<void(std::string_view chunk)>;

struct Request {
  Method method = Method::get;
  std::string url;
  Headers headers;
  std::string body;
  std::vector<FormPart> form;     // sent as multipart/form-data when not empty
  bool retry_safe = false;        // a non-idempotent request that is known to be safe to repeat
  bool server_url = false;        // the URL came from a server's answer: refusing it is a protocol error, not usage
  // A redirect to another origin drops the headers that look like credentials (redact.hpp's
  // is_sensitive_header). For headers a server listed for this very URL (an htsget ticket's block headers,
  // which a client must send again after a redirect), set this: only Authorization, Proxy-Authorization and
  // Cookie are dropped then.
  bool listed_headers = false;
  std::size_t max_body = 0;       // cap for a body read into memory; 0 = the client's default
  Sink sink;                      // stream the body here instead of into Response::body
  std::size_t receive_buffer = 0; // bytes read from the socket at a time for a sink; 0 = libcurl's 16 KiB
  std::function<void()> on_retry; // called before a retry restarts the transfer (reset the sink)
  std::size_t group = 0;          // Batch: requests of one group (not 0) share the batch's per-group bound
  // Batch: called just before each attempt starts (the first and every retry), to fill in what should be
  // fresh then: a signature's date, an open file. What it throws ends the request with that error.
  std::function<void(Request&)> prepare;
};

struct Timings {
  double dns = 0, connect = 0, tls = 0, first_byte = 0, total = 0;  // seconds since the start
};

struct Response {
  long status = 0;
  Headers headers;
  std::string body;
  std::string url;  // the final URL, after redirects
  Timings timings;
  int attempts = 1;
  std::chrono::system_clock::time_point received;  // when the response was complete (for clock skew)
  std::optional<std::string_view> header(std::string_view name) const { return find_header(headers, name); }
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

// What an observer sees of each attempt. Every string in it has been redacted.
struct Exchange {
  std::string method;
  std::string url;
  long status = 0;          // 0 when no response arrived
  double seconds = 0;
  int attempt = 1;
  std::string error;        // empty on a response
  Headers request_headers;  // filled only when Options::debug is set
  Headers response_headers;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_exchange(const Exchange&) {}
  // Bytes received so far and expected in total (0 = unknown) for the transfer with this index.
  virtual void on_progress(std::size_t /*index*/, std::uint64_t /*now*/, std::uint64_t /*total*/) {}
};

struct RetryPolicy {
  int max_attempts = 4;                          // including the first
  std::chrono::milliseconds base{500};           // first back-off
  std::chrono::milliseconds cap{20'000};         // longest back-off
  std::chrono::milliseconds max_retry_after{120'000};  // a longer Retry-After is not waited for
};

struct Options {
  std::string user_agent;
  std::string ca_file;                 // --cacert, else SSL_CERT_FILE / CURL_CA_BUNDLE, else the system store
  long connect_timeout_ms = 10'000;
  long stall_seconds = 30;             // abort when under 1 byte/s (a streamed download: min_speed) for this long
  long total_timeout_ms = 0;           // abort any transfer that has not finished by then (0 = no limit)
  // An answer read into memory (an API call: no sink, no file upload) must be complete within this, per attempt,
  // so a server that trickles a byte a second cannot hold impact forever (0 = no limit).
  long api_deadline_ms = 300'000;
  // A streamed download (a sink) has no total limit, however large; it is aborted when slower than this many
  // bytes a second for stall_seconds instead.
  long min_speed = 1024;
  std::size_t max_body = 32u << 20;    // default cap for bodies read into memory
  int max_redirects = 5;
  RetryPolicy retry;
  Observer* observer = nullptr;
  bool debug = false;                  // also report headers to the observer
};

// Options from the environment and defaults; the CLI then applies its flags.
Options default_options();

// A synchronous client. One instance keeps one connection cache: requests to the same host reuse it.
// HTTP statuses come back as data; network failures, caps and refusals throw impact::Error.
class Client {
 public:
  explicit Client(Options options = default_options());
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Response send(Request request);
  const Options& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Outcome of one request in a batch: a response (any status) or the error that ended it.
struct Outcome {
  std::optional<Response> response;
  std::exception_ptr error;
};

// Runs many requests over libcurl's multi interface, at most `max_parallel` at once and at most
// `max_per_group` (0: no bound) of any one Request::group, each with its own retry state; queued requests
// start in order, passing over those whose group is at its bound.
class Batch {
 public:
  Batch(Options options, std::size_t max_parallel, std::size_t max_per_group = 0);
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // All of `requests`; the outcomes come back in request order.
  std::vector<Outcome> run(std::vector<Request> requests);

  // Requests taken from `next` as places come free, each outcome handed to `done` as soon as it is final,
  // so a caller can finish its work item by item and hold only the requests near the front in memory.
  struct Feed {
    std::function<std::optional<Request>()> next;     // the next request; nullopt when there are no more
    std::function<void(std::size_t, Outcome)> done;   // (index in the order `next` gave them, outcome)
    // Requests taken ahead of a free place: enough to find startable ones past a full group's.
    std::size_t lookahead = 1024;
    // Optional: true when `next` would first have to fetch something (a listing page). It is then called
    // only once every request taken before has started (and, at first, one was answered), so those go first.
    std::function<bool()> slow;
    // Optional: true when `next` has nothing to give yet but may have later (a caller bounding the bytes it
    // holds, or one that will repeat a request). Asked again as transfers end; not asked while nothing is in
    // flight or queued, so `next` is then called (and must give a request or end the feed).
    std::function<bool()> hold;
  };
  // What `next` or `done` throws ends the run (transfers in flight are dropped) and is rethrown.
  void run(Feed feed);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws the Error that fits a non-2xx response, with the server's own message where it sent one.
// `what` names the operation ("fetching service-info").
[[noreturn]] void throw_for_status(const Response& response, std::string_view what);

// Library versions for `impact version`.
std::string curl_version();
// The libcurl version impact was built against (its headers): no need to load the library.
std::string curl_build_version();

// The proxy libcurl takes from the environment for `url`, as it reads it: http_proxy (lower case only) for
// http, https_proxy or HTTPS_PROXY for https, then all_proxy or ALL_PROXY; none when no_proxy/NO_PROXY
// names the host ("*", a host name or a domain suffix, an IP address). `variable` is the one it came from.
struct ProxySetting {
  std::string url;       // as set (may hold credentials: show it through redact_url)
  std::string variable;  // "HTTPS_PROXY", ...
};
std::optional<ProxySetting> proxy_for(std::string_view url);
// "host:port" of a proxy setting, without its scheme, credentials or path: safe to show.
std::string proxy_address(std::string_view proxy);

}  // namespace impact::http
