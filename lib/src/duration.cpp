#include "impact/duration.hpp"

#include <cctype>

#include "impact/error.hpp"

namespace impact {

std::chrono::seconds parse_duration(std::string_view text) {
  auto bad = [&] {
    return Error(ErrorKind::usage, "invalid duration '" + std::string(text) + "'",
                 "use a number with a unit, e.g. 30s, 15m, 2h, 3d or 1h30m");
  };
  if (text.empty() || text.size() > 32) throw bad();
  // A bare number is refused: "72" could be meant as seconds, minutes or hours.
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    const std::string n(text);
    throw Error(ErrorKind::usage, "invalid duration '" + n + "': no unit",
                "write " + n + "s, " + n + "m, " + n + "h or " + n + "d");
  }
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms")
    throw Error(ErrorKind::usage, "invalid duration '" + std::string(text) + "': the shortest unit is s (seconds)",
                "write whole seconds, e.g. 1s");
  long long total = 0;
  std::size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) throw bad();
    long long n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > 100'000'000) throw bad();
      ++i;
    }
    long long unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: throw bad();
      }
      ++i;
    } else if (any) {
      throw bad();  // "1h30" is ambiguous
    }
    total += n * unit;
    any = true;
  }
  return std::chrono::seconds(total);
}

std::string format_duration(std::chrono::seconds d) {
  long long s = d.count();
  std::string out;
  if (s < 0) {
    out += '-';
    s = -s;
  }
  const long long days = s / 86400, hours = (s / 3600) % 24, minutes = (s / 60) % 60, secs = s % 60;
  if (days) out += std::to_string(days) + "d";
  if (hours) out += std::to_string(hours) + "h";
  if (minutes && !days) out += std::to_string(minutes) + "m";
  if ((secs && !days && !hours) || out.empty() || out == "-") out += std::to_string(secs) + "s";
  return out;
}

}  // namespace impact
