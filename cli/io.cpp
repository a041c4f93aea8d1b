#include "io.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sys/ioctl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "impact/cancel.hpp"
#include "impact/redact.hpp"

namespace impact::cli {

std::string visible(std::string_view s, bool keep_lines) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      if (keep_lines && (c == '\n' || c == '\t')) out += static_cast<char>(c);
      else out.append({'^', static_cast<char>(c == 0x7f ? '?' : c + 0x40)});
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then continuation bytes only.
    const std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (!ok) {
      out.append({'\\', 'x', kHex[c >> 4], kHex[c & 0xF]});
      ++i;
      continue;
    }
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xC2 && second <= 0x9F) out.append({'\\', 'u', '0', '0', kHex[second >> 4], kHex[second & 0xF]});
    else out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

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
// Tabs and newlines inside a cell would break both the TSV and the table; other controls are made visible.
std::string clean(std::string_view s) {
  std::string out(s);
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return visible(out);
}

// Receives the serialiser's output: escapes what JSON allows raw but a terminal would act on (DEL, and the C1
// controls U+0080..U+009F, which are C2 80..C2 9F in UTF-8 and only ever occur inside strings), writes in
// 64 KiB pieces and stops at Ctrl-C.
class SafeJsonOutput final : public nlohmann::detail::output_adapter_protocol<char> {
 public:
  explicit SafeJsonOutput(std::ostream& os) : os_(os) { buf_.reserve(kPiece + 16); }
  void write_character(char c) override {
    put(c);
    if (buf_.size() >= kPiece) flush();
  }
  void write_characters(const char* s, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) put(s[i]);
    if (buf_.size() >= kPiece) flush();
  }
  void finish() {
    if (lead_) buf_ += '\xC2';
    lead_ = false;
    flush();
  }

 private:
  static constexpr std::size_t kPiece = 64u << 10;
  void escape(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    buf_.append({'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]});
  }
  void put(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (lead_) {
      lead_ = false;
      if (c >= 0x80 && c <= 0x9F) return escape(c);
      buf_ += '\xC2';
    }
    if (c == 0xC2) lead_ = true;
    else if (c == 0x7F) escape(c);
    else buf_ += ch;
  }
  void flush() {
    throw_if_cancelled();
    os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }
  std::ostream& os_;
  std::string buf_;
  bool lead_ = false;
};
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
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      if (r % 256 == 0) throw_if_cancelled();
      const auto& row = t.rows[r];
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
  std::vector<std::size_t> room = w;  // what each column may shrink to: nothing for whole columns
  for (auto i : t.whole)
    if (i < cols) room[i] = 0;
  while (total() > static_cast<std::size_t>(width_)) {
    std::size_t widest = cols;
    for (std::size_t i = 0; i < cols; ++i)
      if (room[i] != 0 && (widest == cols || w[i] > w[widest])) widest = i;
    if (widest == cols || w[widest] <= 8) break;
    room[widest] = --w[widest];
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
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    if (r % 256 == 0) throw_if_cancelled();
    line(t.rows[r], false);
  }
}

void Terminal::print_json(const nlohmann::json& j, bool one_line) const {
  auto output = std::make_shared<SafeJsonOutput>(*out_);
  nlohmann::detail::serializer<nlohmann::json> serializer(output, ' ', nlohmann::json::error_handler_t::replace);
  serializer.dump(j, !one_line, false, one_line ? 0 : 2);
  output->finish();
  *out_ << '\n';
}

void Terminal::error(std::string_view message, std::string_view hint) const {
  *err_ << err_style("impact:", Style::red) << ' ' << visible(redact(message), true) << '\n';
  if (!hint.empty()) *err_ << "hint: " << visible(redact(hint), true) << '\n';
}

void Terminal::warn(std::string_view message) const {
  *err_ << err_style("warning:", Style::yellow) << ' ' << visible(redact(message), true) << '\n';
}

void Terminal::note(std::string_view message) const { *err_ << visible(redact(message), true) << '\n'; }

}  // namespace impact::cli
