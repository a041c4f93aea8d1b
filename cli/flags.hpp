// Typed flags: durations and sizes checked when the command line is parsed, with one range per flag name so
// that the same flag has the same limits on every command. Help shows them as DURATION and SIZE.
//
// DURATION: a number with a unit, s m h d, or several ("1h30m"); a number without a unit is refused (is "72"
// seconds or hours?).
// SIZE: a number (a fraction allowed: 1.5G) and an optional unit, in either case: none or B = bytes,
// k K Ki KiB = 1024, M Mi MiB = 1024², G Gi GiB = 1024³, T Ti TiB = 1024⁴. The single letters are binary, as
// in rclone and curl; KB, MB, GB and TB are refused rather than guessed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace impact::cli {

struct DurationRange {
  std::chrono::seconds min, max;
};
struct SizeRange {
  std::uint64_t min, max;
};

// The limits of each typed flag, wherever it appears.
namespace flag_range {
inline constexpr DurationRange timeout{std::chrono::seconds(1), std::chrono::hours(24 * 30)};
inline constexpr DurationRange poll_interval{std::chrono::seconds(1), std::chrono::hours(1)};
inline constexpr DurationRange min_valid{std::chrono::seconds(0), std::chrono::hours(24 * 365)};
inline constexpr SizeRange part_size{std::uint64_t{1} << 20, std::uint64_t{5} << 30};
}  // namespace flag_range

// The checks themselves (CLI11 validators; the message names the value and the limit).
CLI::Validator duration_check(DurationRange range);
CLI::Validator size_check(SizeRange range);

// Types the option DURATION or SIZE and adds the check; returns the option.
CLI::Option* duration_flag(CLI::Option* option, DurationRange range);
CLI::Option* size_flag(CLI::Option* option, SizeRange range);

// A SIZE as above, in bytes; throws Error(usage) naming the text.
std::uint64_t parse_size(std::string_view text);

}  // namespace impact::cli
