// Beacon v2 answers and metadata documents (beacon.hpp parse_answer, error_message, filter_ids,
// entry_url_from_map, flat_request_parameters). Input: one byte choosing the query that was sent, then
// the JSON body the beacon answered.
#include "fuzz.hpp"
#include "impact/beacon.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto body = fuzz::json(fuzz::text(data + 1, size - 1));
  if (body.is_discarded()) return 0;
  const auto& types = beacon::entry_types();
  beacon::Query q;
  q.entry = std::string(types[data[0] % types.size()].path);
  q.granularity = static_cast<beacon::Granularity>((data[0] >> 4) % 3);
  if (data[0] & 0x40) q.filters = {beacon::parse_filter("HP:0001250"), beacon::parse_filter("age:>=:P40Y")};
  if (data[0] & 0x80) {
    q.variant.reference_name = "17";
    q.variant.start = {43044294};
    q.variant.alternate_bases = "A";
  }
  fuzz::expect_error_only([&] {
    const auto a = beacon::parse_answer(body, q);
    if (a.count && *a.count < 0 && a.exists) __builtin_trap();
    (void)a.records.dump();
  });
  fuzz::expect_error_only([&] { (void)beacon::error_message(body); });
  fuzz::expect_error_only([&] { (void)beacon::filter_ids(body); });
  fuzz::expect_error_only([&] { (void)beacon::flat_request_parameters(body); });
  for (const auto& et : types)
    fuzz::expect_error_only([&] { (void)beacon::entry_url_from_map(body, et); });
  return 0;
}
