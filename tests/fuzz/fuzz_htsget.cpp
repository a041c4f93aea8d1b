// htsget input from users and servers (htsget.hpp): a region as samtools writes it (first line), a Range
// header value (second line), a data: URI (third line), then a JSON document read as a ticket and as an
// endpoint's service-info. Every block of a parsed ticket must be within the bounds the parser promises.
#include "fuzz.hpp"
#include "impact/htsget.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto region = fuzz::next_line(input);
  fuzz::expect_error_only([&] {
    auto r = htsget::parse_region(region);
    if (r.reference.empty()) __builtin_trap();
    if (r.start && r.end && *r.end <= *r.start) __builtin_trap();
    // written back and read again, a region is the same
    auto again = htsget::parse_region(htsget::to_string(r));
    if (again.reference != r.reference || again.start != r.start || again.end != r.end) __builtin_trap();
  });
  if (auto range = htsget::parse_byte_range(fuzz::next_line(input)))
    if (range->second < range->first) __builtin_trap();
  const auto uri = fuzz::next_line(input);
  fuzz::expect_error_only([&] { (void)htsget::decode_data_uri(uri); });
  const auto doc = fuzz::json(input);
  if (!doc.is_discarded()) {
    fuzz::expect_error_only([&] {
      auto t = htsget::parse_ticket(doc, "fuzzing");
      std::size_t inline_bytes = 0;
      if (t.blocks.size() > htsget::kMaxBlocks) __builtin_trap();
      for (const auto& b : t.blocks) {
        if (b.data) inline_bytes += b.data->size();
        else if (b.url.empty() || b.url.size() > htsget::kMaxUrlBytes) __builtin_trap();
        if (b.headers.size() > htsget::kMaxHeadersPerBlock) __builtin_trap();
        for (const auto& h : b.headers)
          for (char c : h.value)
            if (c == '\r' || c == '\n') __builtin_trap();
      }
      if (inline_bytes > htsget::kMaxDataBytes) __builtin_trap();
      (void)htsget::assemble_order({t, t});
    });
    fuzz::expect_error_only([&] { (void)htsget::parse_endpoint_info(doc, "fuzzing"); });
  }
  return 0;
}
