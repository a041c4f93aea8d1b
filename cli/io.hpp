// The one object that owns stdout/stderr: TTY detection, colour, width, tables, JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include <nlohmann/json_fwd.hpp>

namespace impact::cli {

enum class Format { table, tsv, json };

class Progress;
class JqProgram;

enum class TextStyle { bold, dim, red, green, yellow, cyan };

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  // Columns of free text (names, descriptions, notes, tags) that may be cut, ending in "…", to fit the
  // terminal. Every other column (run and task ids, keys, URIs, URLs, checksums, ETags, states, times) is
  // always printed whole, in every format: an id that cannot be copied from a listing is no use.
  std::vector<std::size_t> free_text = {};
  // The colour of a body cell (row, column) on a terminal with colour on, applied after the cell is laid out,
  // so that escape codes never count as width; cells never carry escape codes themselves (they are made visible).
  std::function<std::optional<TextStyle>(std::size_t row, std::size_t column)> style = {};
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
  // --wide: no cell is ever cut. Otherwise free-text cells are cut to fit, but only on a terminal (or a width
  // forced with $IMPACT_WIDTH): `--format table` in a pipe is never cut.
  void set_wide(bool wide) noexcept { wide_ = wide; }
  bool cuts() const noexcept { return fit_ && !wide_; }  // free text is cut to width()
  // --header: TSV starts with the column names (as the table's header).
  void set_tsv_header(bool header) noexcept { tsv_header_ = header; }

  using Style = TextStyle;
  std::string style(std::string_view text, Style s) const;  // for stdout; plain when colour is off
  std::string err_style(std::string_view text, Style s) const;  // for stderr

  // Table on a TTY (aligned, bold header, free-text cells cut to fit the width), tab-separated lines
  // without a header (with one after --header) otherwise — or whatever `format` asks for.
  void print_table(const Table& t, Format format) const;
  // Pretty-printed (2 spaces) as it is serialised, never held whole in memory; control characters inside strings
  // are escaped (C1 and DEL too, not only what JSON requires). Ctrl-C ends it (Error cancelled).
  // `listing`: the key of the document's list of items ("runs"), whose items --json FIELDS cuts to those
  // fields; without it the document itself is cut. Then --jq's program, if any, runs over the result.
  void print_json(const nlohmann::json& j, bool one_line = false, std::string_view listing = {}) const;
  // --json FIELDS and --jq EXPR (see print_json).
  void set_json_filter(std::vector<std::string> fields, std::shared_ptr<JqProgram> jq);

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
  bool fit_ = false;  // tables are cut to width_ (stdout is a terminal, or $IMPACT_WIDTH is set)
  bool wide_ = false;
  bool tsv_header_ = false;
  std::vector<std::string> json_fields_;
  std::shared_ptr<JqProgram> jq_;
  void write_json(const nlohmann::json& j, bool one_line) const;
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
