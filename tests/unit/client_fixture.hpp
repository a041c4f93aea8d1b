// What the tests of the service clients (WES, TES) share: quick retries, JSON replies from the scripted
// loopback server, a prefix test for request targets, and the fixture of server, HTTP client and counted token.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "impact/http.hpp"
#include "mini_server.hpp"

namespace impact::test {

// HTTP options whose retries and stall limit keep a test short.
inline http::Options fast() {
  http::Options o = http::default_options();
  o.retry.base = std::chrono::milliseconds(1);
  o.retry.cap = std::chrono::milliseconds(5);
  o.stall_seconds = 5;
  return o;
}

inline Reply js(int status, const nlohmann::json& body) {
  return reply(status, body.dump(), "Content-Type: application/json\r\n");
}

inline bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A scripted server, an HTTP client for it, and clients of a service (`C`: wes::Client, tes::Client) whose
// token function counts how often it is asked (`token`).
template <class C>
struct ClientFixture {
  ClientFixture(MiniServer::Handler h, std::string base, std::string token)
      : server(std::move(h)), http(fast()), base_(std::move(base)), token_(std::move(token)) {}
  C client() { return client(base_); }
  C client(const std::string& base) {
    return C(http, server.url(base), [this] {
      ++tokens;
      return token_;
    });
  }
  // The requests with this method whose target starts with `prefix`.
  int count(const std::string& method, const std::string& prefix) const {
    int n = 0;
    for (const auto& r : server.requests()) n += r.method == method && starts(r.target, prefix);
    return n;
  }
  MiniServer server;
  http::Client http;
  std::atomic<int> tokens{0};

 private:
  std::string base_, token_;
};

}  // namespace impact::test
