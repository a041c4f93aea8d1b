#include "io.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <sys/ioctl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "impact/redact.hpp"

namespace impact::cli {

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

namespace {
std::string cut(std::string_view s, std::size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return {};
  std::string out;
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) {
      if (n + 1 == width) break;
      ++n;
    }
    out += s[i];
  }
  return out + "…";
}
// Tabs and newlines inside a cell would break both the TSV and the table.
std::string clean(std::string_view s) {
  std::string out(s);
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return out;
}
}  // namespace

Terminal Terminal::from_environment(std::ostream& out, std::ostream& err) {
  Terminal t;
  t.out_ = &out;
  t.err_ = &err;
  const char* force = std::getenv("IMPACT_FORCE_TTY");
  const bool forced = force && std::string_view(force) == "1";
  t.out_tty_ = forced || ::isatty(STDOUT_FILENO);
  t.err_tty_ = forced || ::isatty(STDERR_FILENO);
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  const bool color_ok = !(no_color && *no_color) && !(term && std::string_view(term) == "dumb");
  t.color_ = t.out_tty_ && color_ok;
  t.err_color_ = t.err_tty_ && color_ok;
  int width = 0;
  if (const char* w = std::getenv("IMPACT_WIDTH"); w && *w) width = std::atoi(w);
  if (width <= 0 && t.out_tty_) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) width = ws.ws_col;
  }
  if (width <= 0)
    if (const char* c = std::getenv("COLUMNS"); c && *c) width = std::atoi(c);
  t.width_ = width > 20 ? std::min(width, 1000) : 80;
  return t;
}

Terminal Terminal::with_traits(std::ostream& out, std::ostream& err, Traits traits) {
  Terminal t;
  t.out_ = &out;
  t.err_ = &err;
  t.out_tty_ = t.err_tty_ = traits.tty;
  t.color_ = t.err_color_ = traits.tty && traits.color;
  t.width_ = traits.width;
  return t;
}

namespace {
// ANSI styling, or the text unchanged when colour is off for that stream.
std::string paint(std::string_view text, Terminal::Style s, bool enabled) {
  if (!enabled) return std::string(text);
  const char* code = "";
  switch (s) {
    case Terminal::Style::bold: code = "1"; break;
    case Terminal::Style::dim: code = "2"; break;
    case Terminal::Style::red: code = "31"; break;
    case Terminal::Style::green: code = "32"; break;
    case Terminal::Style::yellow: code = "33"; break;
    case Terminal::Style::cyan: code = "36"; break;
  }
  return std::string("\033[") + code + "m" + std::string(text) + "\033[0m";
}
}  // namespace

std::string Terminal::style(std::string_view text, Style s) const { return paint(text, s, color_); }
std::string Terminal::err_style(std::string_view text, Style s) const { return paint(text, s, err_color_); }

void Terminal::print_table(const Table& t, Format format) const {
  if (format == Format::tsv) {
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size(); ++i) *out_ << (i ? "\t" : "") << clean(row[i]);
      *out_ << '\n';
    }
    return;
  }
  const std::size_t cols = t.headers.size();
  std::vector<std::size_t> w(cols, 0);
  for (std::size_t i = 0; i < cols; ++i) w[i] = display_width(t.headers[i]);
  for (const auto& row : t.rows)
    for (std::size_t i = 0; i < cols && i < row.size(); ++i) w[i] = std::max(w[i], display_width(clean(row[i])));
  // Shrink the widest columns until the table fits.
  const std::size_t gap = 2;
  auto total = [&] {
    std::size_t s = 0;
    for (auto x : w) s += x;
    return s + gap * (cols ? cols - 1 : 0);
  };
  while (total() > static_cast<std::size_t>(width_)) {
    auto widest = std::max_element(w.begin(), w.end());
    if (*widest <= 8) break;
    --*widest;
  }
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string text;
    for (std::size_t i = 0; i < cols; ++i) {
      std::string cell = cut(i < cells.size() ? clean(cells[i]) : "", w[i]);
      const bool last = i + 1 == cols;
      std::string padded = cell + (last ? "" : std::string(w[i] - display_width(cell) + gap, ' '));
      text += header ? style(padded, Style::bold) : padded;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    *out_ << text << '\n';
  };
  line(t.headers, true);
  for (const auto& row : t.rows) line(row, false);
}

void Terminal::print_json(const nlohmann::json& j) const {
  *out_ << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void Terminal::error(std::string_view message, std::string_view hint) const {
  *err_ << err_style("impact:", Style::red) << ' ' << redact(message) << '\n';
  if (!hint.empty()) *err_ << "hint: " << redact(hint) << '\n';
}

void Terminal::warn(std::string_view message) const {
  *err_ << err_style("warning:", Style::yellow) << ' ' << redact(message) << '\n';
}

void Terminal::note(std::string_view message) const { *err_ << redact(message) << '\n'; }

}  // namespace impact::cli
