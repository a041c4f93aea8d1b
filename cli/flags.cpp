#include "flags.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "impact/duration.hpp"
#include "impact/error.hpp"

namespace impact::cli {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string size_text(std::uint64_t n) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G", "T"};
  std::size_t u = 0;
  while (u + 1 < std::size(kUnits) && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + kUnits[u];
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  const std::string shown = text.size() > 40 ? std::string(text.substr(0, 40)) + "…" : std::string(text);
  auto bad = [&](std::string why) { return Error(ErrorKind::usage, fmt::format("invalid size '{}': {}", shown, why)); };
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  const std::size_t whole = i;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  if (whole == 0 || whole > 19 || i == whole + 1) throw bad("write a number and a unit, e.g. 512K, 64M or 1.5G");
  const double number = std::stod(std::string(text.substr(0, i)));
  const std::string unit = lower(text.substr(i));
  int power = -1;
  if (unit.empty() || unit == "b") power = 0;
  else if (unit == "k" || unit == "ki" || unit == "kib") power = 1;
  else if (unit == "m" || unit == "mi" || unit == "mib") power = 2;
  else if (unit == "g" || unit == "gi" || unit == "gib") power = 3;
  else if (unit == "t" || unit == "ti" || unit == "tib") power = 4;
  else if (unit == "kb" || unit == "mb" || unit == "gb" || unit == "tb")
    throw bad(fmt::format("{} could mean powers of 1000 or of 1024; write {}{} (impact's units are binary: 1{} = 1{}iB)",
                          text.substr(i), text.substr(0, i), static_cast<char>(std::toupper(unit[0])),
                          static_cast<char>(std::toupper(unit[0])), static_cast<char>(std::toupper(unit[0]))));
  else
    throw bad("unknown unit; use K, M, G or T (binary: 1K = 1024 bytes), or none for bytes");
  const double bytes = number * std::pow(1024.0, power);
  if (bytes >= 9.2e18) throw bad("too large");
  return static_cast<std::uint64_t>(bytes);
}

CLI::Validator duration_check(DurationRange range) {
  return CLI::Validator(
      [range](std::string& value) -> std::string {
        std::chrono::seconds d{};
        try {
          d = parse_duration(value);
        } catch (const Error& e) {
          return e.what() + (e.hint().empty() ? std::string() : std::string("; ") + e.hint());
        }
        if (d < range.min)
          return fmt::format("{} is less than the minimum, {}", value, format_duration(range.min));
        if (d > range.max)
          return fmt::format("{} is more than the maximum, {}", value, format_duration(range.max));
        return {};
      },
      "", "DURATION");
}

CLI::Validator size_check(SizeRange range) {
  return CLI::Validator(
      [range](std::string& value) -> std::string {
        std::uint64_t n = 0;
        try {
          n = parse_size(value);
        } catch (const Error& e) {
          return e.what();
        }
        if (n < range.min) return fmt::format("{} is less than the minimum, {}", value, size_text(range.min));
        if (n > range.max) return fmt::format("{} is more than the maximum, {}", value, size_text(range.max));
        return {};
      },
      "", "SIZE");
}

CLI::Option* duration_flag(CLI::Option* option, DurationRange range) {
  return option->type_name("DURATION")->check(duration_check(range));
}

CLI::Option* size_flag(CLI::Option* option, SizeRange range) {
  return option->type_name("SIZE")->check(size_check(range));
}

}  // namespace impact::cli
