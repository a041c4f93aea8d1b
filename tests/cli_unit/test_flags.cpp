// Typed flags (cli/flags.hpp): sizes and durations checked at parse time, one range per flag.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "flags.hpp"
#include "impact/error.hpp"

namespace {

using namespace impact::cli;

// Parses `--flag VALUE` with one typed option; returns CLI11's message, empty when accepted.
std::string parse(CLI::Option* (*typed)(CLI::Option*, SizeRange), SizeRange range, const std::string& value) {
  CLI::App app;
  std::string v;
  typed(app.add_option("--part-size", v), range);
  std::vector<std::string> args{value, "--part-size"};  // CLI11 reads the vector from the back
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return {};
}
std::string parse(CLI::Option* (*typed)(CLI::Option*, DurationRange), DurationRange range, const std::string& value) {
  CLI::App app;
  std::string v;
  typed(app.add_option("--timeout", v), range);
  std::vector<std::string> args{value, "--timeout"};
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("sizes: K, M, G, T binary in either case, with or without i/iB; none or B for bytes") {
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("4096") == 4096);
  CHECK(parse_size("100B") == 100);
  CHECK(parse_size("1k") == 1024);
  CHECK(parse_size("1K") == 1024);
  CHECK(parse_size("1Ki") == 1024);
  CHECK(parse_size("1KiB") == 1024);
  CHECK(parse_size("64M") == 64ull << 20);
  CHECK(parse_size("64m") == 64ull << 20);
  CHECK(parse_size("64Mi") == 64ull << 20);
  CHECK(parse_size("64MiB") == 64ull << 20);
  CHECK(parse_size("1.5G") == 3ull << 29);
  CHECK(parse_size("1Gi") == 1ull << 30);
  CHECK(parse_size("2TiB") == 2ull << 40);
}

TEST_CASE("sizes refused: decimal units, unknown units, no number, too large") {
  CHECK_THROWS_WITH_AS(parse_size("64MB"),
                       "invalid size '64MB': MB could mean powers of 1000 or of 1024; write 64M (impact's units are "
                       "binary: 1M = 1MiB)",
                       impact::Error);
  CHECK_THROWS_WITH_AS(parse_size("1kb"), doctest::Contains("write 1K"), impact::Error);
  CHECK_THROWS_WITH_AS(parse_size("5X"), "invalid size '5X': unknown unit; use K, M, G or T (binary: 1K = 1024 bytes), or none for bytes",
                       impact::Error);
  for (const char* bad : {"", "M", "-1M", ".5M", "1.M", "1 M", "1e9", "99999999999999999999", "99999999T"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_size(bad), impact::Error);
  }
}

TEST_CASE("--part-size: SIZE from 1M to 5G") {
  CHECK(parse(size_flag, flag_range::part_size, "1M").empty());
  CHECK(parse(size_flag, flag_range::part_size, "64Mi").empty());
  CHECK(parse(size_flag, flag_range::part_size, "5G").empty());
  CHECK(parse(size_flag, flag_range::part_size, "1048576").empty());
  CHECK(parse(size_flag, flag_range::part_size, "512K") == "--part-size: 512K is less than the minimum, 1M");
  CHECK(parse(size_flag, flag_range::part_size, "6G") == "--part-size: 6G is more than the maximum, 5G");
  CHECK(parse(size_flag, flag_range::part_size, "64MB").rfind("--part-size: invalid size '64MB'", 0) == 0);
}

TEST_CASE("durations: a number without a unit is refused with what to write; the range per flag") {
  CHECK(parse(duration_flag, flag_range::min_valid, "72h").empty());
  CHECK(parse(duration_flag, flag_range::min_valid, "0s").empty());
  CHECK(parse(duration_flag, flag_range::min_valid, "72") ==
        "--timeout: invalid duration '72': no unit; write 72s, 72m, 72h or 72d");
  CHECK(parse(duration_flag, flag_range::min_valid, "366d") == "--timeout: 366d is more than the maximum, 365d");
  CHECK(parse(duration_flag, flag_range::timeout, "0s") == "--timeout: 0s is less than the minimum, 1s");
  CHECK(parse(duration_flag, flag_range::timeout, "30d").empty());
  CHECK(parse(duration_flag, flag_range::poll_interval, "2h") == "--timeout: 2h is more than the maximum, 1h");
  CHECK(parse(duration_flag, flag_range::poll_interval, "1h30").rfind("--timeout: invalid duration '1h30'", 0) == 0);
}
