// Durations as users write them on the command line: "90s", "15m", "2h", "3d", "1h30m". A number without a
// unit ("90") is refused: it could be meant as seconds, minutes or hours.
#pragma once
#include <chrono>
#include <string>
#include <string_view>

namespace impact {
std::chrono::seconds parse_duration(std::string_view text);  // throws Error(usage)
std::string format_duration(std::chrono::seconds d);          // "1h30m", "45s"
}  // namespace impact
