// The one object that owns stdout/stderr: TTY detection, colour, width, tables, JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace impact::cli {

enum class Format { table, tsv, json };

class Progress;

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
  int err_width() const;  // stderr's width now (the terminal may have been resized); width() when unknown
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

  // The one progress line of a long operation (see Progress below). Drawn on stderr only when stderr is a
  // terminal; error(), warn() and note() clear it first, so messages never land in the middle of it.
  struct ProgressOptions {
    std::string noun = "files";  // what the items are: "files 3/10", "runs 2/5"
    bool bytes = true;           // show bytes, rate and ETA (false: items only)
    bool draw = true;            // false: never drawn (NDJSON on stdout, say), the interrupt hint still kept
    // Said after "interrupted" when Ctrl-C ends the operation: how to carry on. Empty: "rerun the same command
    // to resume: impact ..." with the command line (see set_command_line).
    std::string resume_hint;
    std::function<std::chrono::steady_clock::time_point()> clock;  // tests; default steady_clock::now
  };
  Progress progress(ProgressOptions options) const;
  // What to say after "interrupted" (set by a Progress that Ctrl-C ended; empty otherwise).
  const std::string& interrupt_hint() const noexcept { return interrupt_hint_; }
  // The command being run, as the user could type it again ("impact results download run-42 -o out").
  void set_command_line(std::string line) { command_line_ = std::move(line); }

 private:
  friend class Progress;
  void clear_progress() const;
  std::ostream* out_ = nullptr;
  std::ostream* err_ = nullptr;
  bool out_tty_ = false;
  bool err_tty_ = false;
  bool color_ = false;
  bool err_color_ = false;
  int width_ = 80;
  bool query_err_width_ = false;
  mutable Progress* progress_ = nullptr;  // the line being drawn, if any
  mutable std::string interrupt_hint_;
  std::string command_line_;
};

// What a progress line shows at one moment; render_progress() lays it out.
struct ProgressFigures {
  std::uint64_t bytes_done = 0, bytes_total = 0;
  double rate = 0;       // bytes per second; 0: unknown
  double elapsed = 0;    // seconds since the start
  std::size_t items_done = 0, items_total = 0, failed = 0;
  std::string noun = "files";
  bool bytes = true;     // false: items only
  bool final = false;    // the closing line: total time and average rate instead of rate and ETA
  std::string detail;    // free text at the end ("2 RUNNING  1 COMPLETE"), cut first when space is short
};
// One line, at most `width - 1` columns (the last column would make some terminals wrap), dropping the least
// useful parts first: the detail (cut, then dropped), the percentage, the rate, the ETA, the failures, the
// items. Plain text.
std::string render_progress(const ProgressFigures& f, std::size_t width);
// "17s", "4m05s", "1h02m", "3d04h"
std::string short_duration(double seconds);
// "512 B", "1.5 KiB", "256.0 MiB" (binary units)
std::string human_bytes(double bytes);

// The progress of one long operation (a download, a wait for many runs): bytes, rate, ETA and items done
// out of items in all, redrawn at most 10 times a second, never wider than the terminal. Made by
// Terminal::progress(); neither copied nor moved. The counts:
//   plan(items, bytes)   work still to do, added to the totals (call once the work is known; nothing is drawn
//                        before the first plan())
//   present(items, bytes) already there from an earlier run: counted as done and in the totals, so a resumed
//                          download shows "files 4/4", never "files 3/1"
//   add_bytes / rewind    bytes received; bytes taken back when a part is fetched again
//   item_done(ok)         one item finished (ok = false: failed); an item finished outside the plan raises
//                          the total with it
//   detail(text)          free text after the counts
//   finish()              the closing line (total, time, average rate) and a newline
// Destroyed without finish(): by Ctrl-C (Error cancelled on its way out), the line is ended with a newline and
// the resume hint kept for the "interrupted" message; otherwise (another error) the line is cleared.
class Progress {
 public:
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  Progress(Progress&&) = delete;
  Progress& operator=(Progress&&) = delete;

  void plan(std::size_t items, std::uint64_t bytes);
  void present(std::size_t items, std::uint64_t bytes);
  void add_bytes(std::uint64_t n);
  void rewind(std::uint64_t n);
  void item_done(bool ok = true);
  void detail(std::string text);
  void finish();
  ProgressFigures figures() const;  // what the line shows now (final() after finish())

 private:
  friend class Terminal;
  Progress(const Terminal& term, Terminal::ProgressOptions options);
  std::chrono::steady_clock::time_point now() const;
  void draw(bool force);
  void clear();
  const Terminal& term_;
  Terminal::ProgressOptions opt_;
  bool drawing_;
  int uncaught_;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  Progress* previous_;  // the terminal's line before this one (a wait inside a batch, say)
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples_;  // for the rate
  std::uint64_t present_bytes_ = 0, fetched_ = 0, total_bytes_ = 0;
  std::size_t items_done_ = 0, items_total_ = 0, failed_ = 0;
  std::string detail_;
  bool planned_ = false, drawn_ = false, finished_ = false;
};

// Text from a server made safe to show on a terminal: C0 control characters become caret notation (ESC as
// `^[`, BEL as `^G`, CR as `^M`; tab and newline stay when `keep_lines`), DEL `^?`, the C1 controls
// U+0080..U+009F `\u0080`..`\u009f`, and bytes that are not UTF-8 `\xNN`; everything else is unchanged.
// Terminal applies it to table cells, TSV fields and messages; call it for any other server text printed.
std::string visible(std::string_view s, bool keep_lines = false);

// Printable width of UTF-8 text (code points; good enough for the tables we print).
std::size_t display_width(std::string_view s);

}  // namespace impact::cli
