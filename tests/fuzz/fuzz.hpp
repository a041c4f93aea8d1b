// Shared by the libFuzzer targets: the input as text or JSON, and the one exception a parser may throw.
// Anything else escaping a target (a nlohmann::json exception, std::out_of_range, ...) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/http.hpp"
#include "impact/redact.hpp"
#include "impact/service_info.hpp"

namespace impact::fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The text up to the next newline; `input` moves past it.
inline std::string_view next_line(std::string_view& input) {
  const auto nl = input.find('\n');
  const auto line = input.substr(0, nl);
  input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
  return line;
}

// The input parsed as JSON; `discarded` when it is not JSON or nests deeper than impact reads (parsers get
// only what parse_json_body passes).
inline nlohmann::json json(std::string_view input) {
  http::Response r;
  r.body = std::string(input);
  try {
    return parse_json_body(r, "fuzz");
  } catch (const Error&) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}

// Runs `f`, accepting impact::Error (the documented way to refuse input). Forgets the secrets the parsers
// remembered, so that the process-wide list stays small over millions of inputs.
template <class F>
void expect_error_only(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
  forget_secrets();
}

}  // namespace impact::fuzz
