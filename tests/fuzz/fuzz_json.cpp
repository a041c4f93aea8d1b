// The one JSON reader every answer passes through (service_info.hpp parse_json_body): it never throws anything
// but impact::Error, what it accepts nests at most 128 levels, and printing it (as the CLI does, indented) is
// bounded by the input's size times the depth bound and reads back the same.
#include <cstdlib>

#include "fuzz.hpp"

using namespace impact;

namespace {
std::size_t depth_of(const nlohmann::json& j) {
  std::size_t deepest = 0;
  if (j.is_structured())
    for (const auto& v : j) deepest = std::max(deepest, depth_of(v));
  return j.is_structured() ? deepest + 1 : 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::Response r;
  r.status = 200;
  r.url = "https://service.example/x";
  r.body = std::string(fuzz::text(data, size));
  nlohmann::json j;
  try {
    j = parse_json_body(r, "the service");
  } catch (const Error&) {
    return 0;
  }
  if (depth_of(j) > 128) std::abort();
  const auto printed = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  if (printed.size() > 64 + size * 300) std::abort();
  const auto again = nlohmann::json::parse(printed, nullptr, false);
  if (again.is_discarded()) std::abort();
  return 0;
}
