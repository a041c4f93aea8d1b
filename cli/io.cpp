#include "io.hpp"
#include "jq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/cancel.hpp"
#include "impact/error.hpp"
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
  t.fit_ = t.out_tty_ || (std::getenv("IMPACT_WIDTH") && *std::getenv("IMPACT_WIDTH"));
  // The progress line on stderr follows the terminal's width as it changes, unless a width was forced.
  t.query_err_width_ = t.err_tty_ && !forced && !(std::getenv("IMPACT_WIDTH") && *std::getenv("IMPACT_WIDTH"));
  return t;
}

Terminal Terminal::with_traits(std::ostream& out, std::ostream& err, Traits traits) {
  Terminal t;
  t.out_ = &out;
  t.err_ = &err;
  t.out_tty_ = t.err_tty_ = traits.tty;
  t.color_ = t.err_color_ = traits.tty && traits.color;
  t.width_ = traits.width;
  t.fit_ = traits.tty;
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
    if (tsv_header_ && !t.headers.empty()) {
      for (std::size_t i = 0; i < t.headers.size(); ++i) *out_ << (i ? "\t" : "") << t.headers[i];
      *out_ << '\n';
    }
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
  // Shrink the widest free-text columns until the table fits; ids and the like stay whole even when the
  // table is then wider than the terminal (it wraps, as kubectl's does).
  const std::size_t gap = 2;
  auto total = [&] {
    std::size_t s = 0;
    for (auto x : w) s += x;
    return s + gap * (cols ? cols - 1 : 0);
  };
  std::vector<std::size_t> room(cols, 0);  // what each column may shrink to: nothing but for free text
  for (auto i : t.free_text)
    if (i < cols) room[i] = w[i];
  while (fit_ && !wide_ && total() > static_cast<std::size_t>(width_)) {
    std::size_t widest = cols;
    for (std::size_t i = 0; i < cols; ++i)
      if (room[i] != 0 && (widest == cols || w[i] > w[widest])) widest = i;
    if (widest == cols || w[widest] <= 8) break;
    room[widest] = --w[widest];
  }
  auto line = [&](const std::vector<std::string>& cells, std::optional<std::size_t> row) {
    std::string text, pad;
    for (std::size_t i = 0; i < cols; ++i) {
      std::string cell = cut(i < cells.size() ? clean(cells[i]) : "", w[i]);
      const std::size_t width = display_width(cell);
      if (cell.empty()) {
      } else if (!row) {
        cell = style(cell, Style::bold);
      } else if (t.style) {
        if (const auto st = t.style(*row, i)) cell = style(cell, *st);
      }
      text += pad + cell;
      pad.assign(i + 1 == cols ? 0 : w[i] - width + gap, ' ');  // padding goes before the next cell
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    *out_ << text << '\n';
  };
  line(t.headers, std::nullopt);
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    if (r % 256 == 0) throw_if_cancelled();
    line(t.rows[r], r);
  }
}

void Terminal::write_json(const nlohmann::json& j, bool one_line) const {
  auto output = std::make_shared<SafeJsonOutput>(*out_);
  nlohmann::detail::serializer<nlohmann::json> serializer(output, ' ', nlohmann::json::error_handler_t::replace);
  serializer.dump(j, !one_line, false, one_line ? 0 : 2);
  output->finish();
  *out_ << '\n';
}

void Terminal::set_json_filter(std::vector<std::string> fields, std::shared_ptr<JqProgram> jq) {
  json_fields_ = std::move(fields);
  jq_ = std::move(jq);
}

namespace {
// --json FIELDS: each record cut to the fields asked for, in their order. A field that no record has is
// refused, naming the fields there are (gh's "Unknown JSON field"), unless there is no record to tell.
nlohmann::json select_fields(const nlohmann::json& j, const std::vector<std::string>& fields, std::string_view listing,
                             bool check) {
  const bool listed = !listing.empty() && j.is_object() && j.contains(listing) && j[std::string(listing)].is_array();
  std::vector<const nlohmann::json*> records;
  if (listed) {
    for (const auto& item : j[std::string(listing)]) records.push_back(&item);
  } else {
    records.push_back(&j);
  }
  if (check) {
    std::vector<std::string> known;
    for (const auto* r : records)
      if (r->is_object())
        for (const auto& [key, value] : r->items())
          if (std::find(known.begin(), known.end(), key) == known.end()) known.push_back(key);
    if (!known.empty()) {
      for (const auto& f : fields) {
        if (std::find(known.begin(), known.end(), f) != known.end()) continue;
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        throw Error(ErrorKind::usage, "unknown JSON field '" + f + "'", "the fields here are: " + list);
      }
    }
  }
  auto pick = [&](const nlohmann::json& r) {
    if (!r.is_object()) return r;
    nlohmann::json o = nlohmann::json::object();
    for (const auto& f : fields)
      if (auto it = r.find(f); it != r.end()) o[f] = *it;
    return o;
  };
  if (!listed) return pick(j);
  nlohmann::json out = j;
  auto& items = out[std::string(listing)];
  for (auto& item : items) item = pick(item);
  return out;
}
}  // namespace

void Terminal::print_json(const nlohmann::json& j, bool one_line, std::string_view listing) const {
  if (json_fields_.empty() && !jq_) return write_json(j, one_line);
  // NDJSON events differ in their keys: a field is only checked against a whole document.
  const nlohmann::json doc = json_fields_.empty() ? j : select_fields(j, json_fields_, listing, !one_line);
  if (!jq_) return write_json(doc, one_line);
  jq_->run(doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), [&](const std::string& text) {
    const auto value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_string()) {
      // jq -r: a string as its text (made visible on a terminal; scripts get it as it is)
      const auto& str = value.get_ref<const std::string&>();
      *out_ << (out_tty_ ? visible(str, true) : str) << '\n';
    } else {
      write_json(value, one_line || !out_tty_);  // one value per line in a pipe, as jq -c
    }
  });
}

void Terminal::error(std::string_view message, std::string_view hint) const {
  clear_progress();
  *err_ << err_style("impact:", Style::red) << ' ' << visible(redact(message), true) << '\n';
  if (!hint.empty()) *err_ << "hint: " << visible(redact(hint), true) << '\n';
}

void Terminal::warn(std::string_view message) const {
  clear_progress();
  *err_ << err_style("warning:", Style::yellow) << ' ' << visible(redact(message), true) << '\n';
}

void Terminal::note(std::string_view message) const {
  clear_progress();
  *err_ << visible(redact(message), true) << '\n';
}

// ---- progress

std::string human_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[u]);
}

std::string short_duration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  return fmt::format("{}d{:02}h", s / 86400, s / 3600 % 24);
}

std::string render_progress(const ProgressFigures& f, std::size_t width) {
  // The parts in the order shown, each with its priority (the lowest is dropped first).
  struct Part {
    std::string text;
    int priority;
  };
  std::vector<Part> parts;
  const bool known = f.bytes_total > 0;
  if (f.bytes && f.final) {
    parts.push_back({human_bytes(static_cast<double>(f.bytes_done)), 6});
    parts.push_back({"in " + short_duration(f.elapsed), 3});
    if (f.rate > 0) parts.push_back({"(" + human_bytes(f.rate) + "/s)", 2});
  } else if (f.bytes) {
    parts.push_back({known ? human_bytes(static_cast<double>(f.bytes_done)) + " / " + human_bytes(static_cast<double>(f.bytes_total))
                           : human_bytes(static_cast<double>(f.bytes_done)),
                     6});
    if (known) {
      const double pct = std::min(100.0, 100.0 * static_cast<double>(f.bytes_done) / static_cast<double>(f.bytes_total));
      parts.push_back({fmt::format("{:.0f}%", std::floor(pct)), 1});
    }
    if (f.rate > 0) parts.push_back({human_bytes(f.rate) + "/s", 2});
    if (f.rate > 0 && known && f.bytes_total > f.bytes_done) {
      const double eta = static_cast<double>(f.bytes_total - f.bytes_done) / f.rate;
      if (eta < 100.0 * 86400) parts.push_back({"ETA " + short_duration(eta), 3});
    }
  }
  if (f.items_total > 0 || !f.bytes)
    parts.push_back({fmt::format("{} {}/{}", f.noun, f.items_done, std::max(f.items_total, f.items_done)), 5});
  if (f.failed > 0) parts.push_back({fmt::format("{} failed", f.failed), 4});
  if (!f.detail.empty()) parts.push_back({visible(f.detail), 0});

  const std::size_t room = width > 1 ? width - 1 : 0;
  auto join = [&] {
    std::string line;
    for (const auto& p : parts) line += (line.empty() ? "" : "  ") + p.text;
    return line;
  };
  std::string line = join();
  while (display_width(line) > room && !parts.empty()) {
    auto lowest = std::min_element(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.priority < b.priority; });
    if (lowest->priority == 0) {  // free text: cut before dropping it
      const std::size_t rest = display_width(line) - display_width(lowest->text);
      if (rest + 2 + 8 <= room) {
        lowest->text = cut(lowest->text, room - rest);
        line = join();
        continue;
      }
    }
    if (parts.size() == 1) break;
    parts.erase(lowest);
    line = join();
  }
  return display_width(line) > room ? cut(line, room) : line;
}

Progress Terminal::progress(ProgressOptions options) const {
  if (options.resume_hint.empty())
    options.resume_hint = "rerun the same command to resume" + (command_line_.empty() ? "" : ": " + command_line_);
  return Progress(*this, std::move(options));
}

void Terminal::clear_progress() const {
  if (progress_) progress_->clear();
}

int Terminal::err_width() const {
  if (query_err_width_) {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return std::min<int>(ws.ws_col, 1000);
  }
  return width_;
}

Progress::Progress(const Terminal& term, Terminal::ProgressOptions options)
    : term_(term),
      opt_(std::move(options)),
      drawing_(opt_.draw && term.err_tty()),
      uncaught_(std::uncaught_exceptions()),
      start_(now()),
      previous_(term.progress_) {
  term_.progress_ = this;
}

Progress::~Progress() {
  if (term_.progress_ == this) term_.progress_ = previous_;
  if (finished_) return;
  try {
    if (std::uncaught_exceptions() > uncaught_ && cancel_requested()) {
      // Ctrl-C: the last figures stay on screen, the cursor goes to a new line for the "interrupted" message.
      if (drawn_) {
        draw(true);  // the figures as they are now, not as last drawn (up to 100 ms before)
        drawn_ = false;
        term_.err() << '\n' << std::flush;
      }
      term_.interrupt_hint_ = opt_.resume_hint;
    } else {
      clear();
    }
  } catch (...) {  // a destructor never throws; the stream's state says what went wrong
  }
}

std::chrono::steady_clock::time_point Progress::now() const {
  return opt_.clock ? opt_.clock() : std::chrono::steady_clock::now();
}

void Progress::plan(std::size_t items, std::uint64_t bytes) {
  planned_ = true;
  items_total_ += items;
  total_bytes_ += bytes;
  draw(false);
}

void Progress::present(std::size_t items, std::uint64_t bytes) {
  items_total_ += items;
  items_done_ += items;
  present_bytes_ += bytes;
  total_bytes_ += bytes;
  draw(false);
}

void Progress::add_bytes(std::uint64_t n) {
  fetched_ += n;
  draw(false);
}

void Progress::rewind(std::uint64_t n) { fetched_ -= std::min(fetched_, n); }

void Progress::item_done(bool ok) {
  ++items_done_;
  items_total_ = std::max(items_total_, items_done_);
  if (!ok) ++failed_;
  draw(false);
}

void Progress::detail(std::string text) {
  detail_ = std::move(text);
  draw(false);
}

ProgressFigures Progress::figures() const {
  ProgressFigures f;
  const auto t = now();
  f.bytes_done = present_bytes_ + fetched_;
  f.bytes_total = std::max(total_bytes_, f.bytes_done);
  f.elapsed = std::chrono::duration<double>(t - start_).count();
  f.items_done = items_done_;
  f.items_total = items_total_;
  f.failed = failed_;
  f.noun = opt_.noun;
  f.bytes = opt_.bytes;
  f.final = finished_;
  f.detail = detail_;
  if (finished_) {
    f.rate = f.elapsed > 0 ? static_cast<double>(fetched_) / f.elapsed : 0;
    return f;
  }
  // The rate over the last few seconds (the samples kept by draw()), or since the start while that is short.
  if (!samples_.empty()) {
    const auto& [t0, b0] = samples_.front();
    const double span = std::chrono::duration<double>(t - t0).count();
    if (span >= 1.0) f.rate = fetched_ > b0 ? static_cast<double>(fetched_ - b0) / span : 0;
  }
  if (f.rate == 0 && f.elapsed >= 0.5) f.rate = static_cast<double>(fetched_) / f.elapsed;
  return f;
}

void Progress::draw(bool force) {
  if (!drawing_ || finished_ || !planned_) return;  // nothing shown before the work is known: no "files 1/1"
  const auto t = now();
  if (!force && drawn_ && t - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = t;
  samples_.emplace_back(t, fetched_);
  while (samples_.size() > 2 && t - samples_[1].first >= std::chrono::seconds(5)) samples_.erase(samples_.begin());
  std::string line = render_progress(figures(), static_cast<std::size_t>(term_.err_width()));
  if (failed_ > 0) {  // the one coloured part (plain with NO_COLOR or --no-color)
    const std::string failed = fmt::format("{} failed", failed_);
    if (const auto at = line.find(failed); at != std::string::npos)
      line.replace(at, failed.size(), term_.err_style(failed, Terminal::Style::red));
  }
  term_.err() << '\r' << line << "\033[K" << std::flush;
  drawn_ = true;
}

void Progress::clear() {
  if (!drawn_) return;
  term_.err() << "\r\033[K" << std::flush;
  drawn_ = false;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!drawing_) return;
  term_.err() << '\r' << render_progress(figures(), static_cast<std::size_t>(term_.err_width())) << "\033[K\n" << std::flush;
  drawn_ = false;
}

}  // namespace impact::cli
