#include <doctest/doctest.h>

#include "impact/duration.hpp"
#include "impact/error.hpp"

using namespace impact;
using std::chrono::seconds;

TEST_CASE("parse_duration") {
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

TEST_CASE("parse_duration refuses a number without a unit, and milliseconds, saying what to write") {
  try {
    parse_duration("72");
    FAIL("72 was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()) == "invalid duration '72': no unit");
    CHECK(e.hint() == "write 72s, 72m, 72h or 72d");
  }
  CHECK_THROWS_WITH_AS(parse_duration("500ms"), "invalid duration '500ms': the shortest unit is s (seconds)", Error);
  CHECK(parse_duration("0s") == seconds(0));
}

TEST_CASE("format_duration") {
  CHECK(format_duration(seconds(0)) == "0s");
  CHECK(format_duration(seconds(45)) == "45s");
  CHECK(format_duration(seconds(5400)) == "1h30m");
  CHECK(format_duration(seconds(90061)) == "1d1h");
  CHECK(format_duration(seconds(-60)) == "-1m");
}
