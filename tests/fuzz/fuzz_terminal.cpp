// What the CLI prints of a server's text (cli/io.hpp visible, Terminal tables, TSV, messages and JSON): no
// byte a terminal would act on (C0 controls but newline and tab, DEL, C1 controls, ESC) reaches the output.
#include <cstdlib>
#include <sstream>

#include "fuzz.hpp"
#include "io.hpp"

using namespace impact;

namespace {
// A byte a terminal would act on: a C0 control but newline, DEL, or the UTF-8 form of a C1 control.
bool has_control(std::string_view s, bool allow_lines) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' || (allow_lines && c == '\t')) continue;
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return true;
  }
  return false;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(fuzz::text(data, size));
  if (has_control(cli::visible(input), false) || has_control(cli::visible(input, true), true)) std::abort();
  std::ostringstream out, err;
  auto term = cli::Terminal::from_environment(out, err);
  term.print_table({{"A", "B"}, {{input, "x"}, {"y", input}}}, cli::Format::table);
  term.print_table({{"A", "B"}, {{input, "x"}}}, cli::Format::tsv);
  term.error(input, input);
  term.warn(input);
  term.note(input);
  term.print_json({{"s", input}, {input, 1}});
  if (has_control(out.str(), true) || has_control(err.str(), true)) std::abort();
  return 0;
}
