// What the tests of the service clients (WES, TES) share: quick retries, JSON replies from the scripted
// loopback server, and a prefix test for request targets.
#pragma once

#include <chrono>
#include <string>

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

}  // namespace impact::test
