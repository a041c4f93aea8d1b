// Tables (cli/io.hpp) on the Terminal test double: ids whole, free text cut with "…" on a terminal only,
// --wide, --header, colour applied after the layout.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "io.hpp"

namespace {

using impact::cli::Format;
using impact::cli::Table;
using impact::cli::Terminal;
using impact::cli::TextStyle;

const std::string kId = "9e32b9aa-c036-4f8c-9abb-8546a1f0c0de-and-then-some-more";  // 55 columns
const std::string kText = "a long free-text description that will not fit anywhere near forty columns";

Table sample() { return Table{{"ID", "STATE", "NOTE"}, {{kId, "COMPLETE", kText}}, {2}}; }

std::string render(Terminal::Traits traits, Format format, bool wide = false, bool header = false, Table t = sample()) {
  std::ostringstream out, err;
  Terminal term = Terminal::with_traits(out, err, traits);
  term.set_wide(wide);
  term.set_tsv_header(header);
  term.print_table(t, format);
  return out.str();
}

}  // namespace

TEST_CASE("a table on a narrow terminal keeps the id whole and cuts only the free text, with …") {
  const std::string s = render({.tty = true, .color = false, .width = 40}, Format::table);
  CHECK(s.find(kId + "  COMPLETE  ") != std::string::npos);
  CHECK(s.find("a long …") != std::string::npos);  // cut to the 8 columns a free column may shrink to
  CHECK(s.find(kText) == std::string::npos);
}

TEST_CASE("--wide, a pipe (--format table) and TSV never cut anything") {
  CHECK(render({.tty = true, .color = false, .width = 40}, Format::table, true).find(kText) != std::string::npos);
  CHECK(render({.tty = false, .color = false, .width = 80}, Format::table).find(kText) != std::string::npos);
  CHECK(render({.tty = true, .color = false, .width = 40}, Format::tsv) == kId + "\tCOMPLETE\t" + kText + "\n");
}

TEST_CASE("--header starts TSV with the column names") {
  CHECK(render({.tty = false, .color = false, .width = 80}, Format::tsv, false, true) ==
        "ID\tSTATE\tNOTE\n" + kId + "\tCOMPLETE\t" + kText + "\n");
}

TEST_CASE("a styled cell is coloured after the layout: the columns after it do not move") {
  Table t{{"SERVICE", "STATUS", "DETAIL"}, {{"wes", "ok", "fine"}, {"drs", "FAIL", "down"}}};
  t.style = [](std::size_t row, std::size_t col) -> std::optional<TextStyle> {
    if (col != 1) return std::nullopt;
    return row == 0 ? TextStyle::green : TextStyle::red;
  };
  const std::string plain = render({.tty = true, .color = false, .width = 80}, Format::table, false, false, t);
  CHECK(plain == "SERVICE  STATUS  DETAIL\nwes      ok      fine\ndrs      FAIL    down\n");
  const std::string coloured = render({.tty = true, .color = true, .width = 80}, Format::table, false, false, t);
  CHECK(coloured.find("wes      \x1b[32mok\x1b[0m      fine\n") != std::string::npos);
  CHECK(coloured.find("drs      \x1b[31mFAIL\x1b[0m    down\n") != std::string::npos);
}
