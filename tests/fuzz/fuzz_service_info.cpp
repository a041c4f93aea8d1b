// GA4GH service-info documents (service_info.hpp parse_service_info, kind_of, to_json).
#include "fuzz.hpp"
#include "impact/service_info.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto doc = fuzz::json(fuzz::text(data, size));
  if (doc.is_discarded()) return 0;
  fuzz::expect_error_only([&] {
    const auto s = parse_service_info(doc, "https://service.example");
    (void)to_string(s.kind());
    nlohmann::json j = s;
    (void)j.dump();
  });
  return 0;
}
