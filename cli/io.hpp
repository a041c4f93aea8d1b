// The one object that owns stdout/stderr: TTY detection, colour, width, tables, JSON.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace impact::cli {

enum class Format { table, tsv, json };

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> whole = {};  // columns never shortened to fit the terminal (ids a user copies)
};

class Terminal {
 public:
  // Reads isatty(), $NO_COLOR, $TERM, $COLUMNS and the test overrides $IMPACT_FORCE_TTY=1 and
  // $IMPACT_WIDTH=N.
  static Terminal from_environment(std::ostream& out, std::ostream& err);

  // A terminal with the traits given rather than read from the environment: the test double (gh's
  // iostreams.Test()), writing into whatever streams the test holds (string streams, say).
  struct Traits {
    bool tty = false;    // both stdout and stderr
    bool color = false;  // only where tty
    int width = 80;
  };
  static Terminal with_traits(std::ostream& out, std::ostream& err, Traits traits);

  std::ostream& out() const noexcept { return *out_; }
  std::ostream& err() const noexcept { return *err_; }
  bool out_tty() const noexcept { return out_tty_; }
  bool err_tty() const noexcept { return err_tty_; }
  bool color() const noexcept { return color_; }
  int width() const noexcept { return width_; }
  void disable_color() noexcept { color_ = err_color_ = false; }

  enum class Style { bold, dim, red, green, yellow, cyan };
  std::string style(std::string_view text, Style s) const;  // for stdout; plain when colour is off
  std::string err_style(std::string_view text, Style s) const;  // for stderr

  // Table on a TTY (aligned, bold header, cells cut to fit the width), tab-separated lines without a
  // header otherwise — or whatever `format` asks for.
  void print_table(const Table& t, Format format) const;
  // Pretty-printed (2 spaces) as it is serialised, never held whole in memory; control characters inside strings
  // are escaped (C1 and DEL too, not only what JSON requires). Ctrl-C ends it (Error cancelled).
  void print_json(const nlohmann::json& j, bool one_line = false) const;  // one_line: NDJSON events

  // "impact: <message>" and an optional hint line, on stderr; messages pass through redact() and visible().
  void error(std::string_view message, std::string_view hint = {}) const;
  void warn(std::string_view message) const;
  void note(std::string_view message) const;  // informational, stderr

 private:
  std::ostream* out_ = nullptr;
  std::ostream* err_ = nullptr;
  bool out_tty_ = false;
  bool err_tty_ = false;
  bool color_ = false;
  bool err_color_ = false;
  int width_ = 80;
};

// Text from a server made safe to show on a terminal: C0 control characters become caret notation (ESC as
// `^[`, BEL as `^G`, CR as `^M`; tab and newline stay when `keep_lines`), DEL `^?`, the C1 controls
// U+0080..U+009F `\u0080`..`\u009f`, and bytes that are not UTF-8 `\xNN`; everything else is unchanged.
// Terminal applies it to table cells, TSV fields and messages; call it for any other server text printed.
std::string visible(std::string_view s, bool keep_lines = false);

// Printable width of UTF-8 text (code points; good enough for the tables we print).
std::size_t display_width(std::string_view s);

}  // namespace impact::cli
