#include <doctest/doctest.h>

#include "impact/duration.hpp"
#include "impact/error.hpp"

using namespace impact;
using std::chrono::seconds;

TEST_CASE("parse_duration") {
  CHECK(parse_duration("90") == seconds(90));
  CHECK(parse_duration("90s") == seconds(90));
  CHECK(parse_duration("15m") == seconds(900));
  CHECK(parse_duration("2h") == seconds(7200));
  CHECK(parse_duration("3d") == seconds(259200));
  CHECK(parse_duration("1h30m") == seconds(5400));
  for (const char* bad : {"", "h", "1x", "-5m", "1.5h", "1h30", "m5", "999999999999"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_duration(bad), Error);
  }
}

TEST_CASE("format_duration") {
  CHECK(format_duration(seconds(0)) == "0s");
  CHECK(format_duration(seconds(45)) == "45s");
  CHECK(format_duration(seconds(5400)) == "1h30m");
  CHECK(format_duration(seconds(90061)) == "1d1h");
  CHECK(format_duration(seconds(-60)) == "-1m");
}
