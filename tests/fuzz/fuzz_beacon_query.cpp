// What users type for a Beacon query (beacon.hpp parse_filter, parse_granularity, entry_type) and the
// request it becomes (request_body, query_string). Input: lines; the first is a filter, the second a
// granularity, the third an entry type.
#include "fuzz.hpp"
#include "impact/beacon.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto filter = fuzz::next_line(input), granularity = fuzz::next_line(input), entry = fuzz::next_line(input);
  fuzz::expect_error_only([&] {
    beacon::Query q;
    q.filters.push_back(beacon::parse_filter(filter, size % 2 == 0));
    (void)beacon::to_json(q.filters.back()).dump();
    if (auto g = beacon::parse_granularity(granularity)) q.granularity = *g;
    q.entry = std::string(beacon::entry_type(entry).path);
    (void)beacon::request_body(q).dump();
    (void)beacon::query_string(q);
  });
  return 0;
}
