// Durations as users type them (duration.hpp): parse, format, and parse the formatted text again.
#include "fuzz.hpp"
#include "impact/duration.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_error_only([&] {
    const auto d = parse_duration(fuzz::text(data, size));
    if (d.count() < 0) __builtin_trap();
    // format_duration rounds down for display: seconds go when hours are shown, minutes when days are.
    const auto back = parse_duration(format_duration(d));
    const auto precision = d.count() >= 86400 ? 3600 : d.count() >= 3600 ? 60 : 1;
    if (back > d || (d - back).count() >= precision) __builtin_trap();
  });
  return 0;
}
