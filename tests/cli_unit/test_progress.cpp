// The progress line (cli/io.hpp) on the Terminal test double, with a clock the test moves by hand.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "io.hpp"

namespace {

using impact::cli::display_width;
using impact::cli::Progress;
using impact::cli::ProgressFigures;
using impact::cli::render_progress;
using impact::cli::Terminal;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1u << 20;

// A terminal writing into strings, and a clock that moves only when told.
struct Screen {
  explicit Screen(Terminal::Traits traits = {.tty = true, .color = false, .width = 80})
      : term(Terminal::with_traits(out, err, traits)) {}
  Terminal::ProgressOptions options(Terminal::ProgressOptions o = {}) {
    o.clock = [this] { return now; };
    return o;
  }
  // The lines as a terminal would show them: each \r starts the line again, \033[K ends it.
  std::vector<std::string> frames() const {
    std::vector<std::string> out_frames;
    std::string s = err.str(), cur;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 3, "\033[K") == 0) {
        i += 2;
        continue;
      }
      if (s[i] == '\r' || s[i] == '\n') {
        if (!cur.empty()) out_frames.push_back(cur);
        cur.clear();
        continue;
      }
      cur += s[i];
    }
    if (!cur.empty()) out_frames.push_back(cur);
    return out_frames;
  }
  std::ostringstream out, err;
  Terminal term;
  Clock::time_point now = Clock::time_point{} + 1000h;
};

// A download under way: MiB done of MiB in all, MiB/s, files done of all.
ProgressFigures running(std::uint64_t mib_done, std::uint64_t mib_total, double mib_rate, std::size_t done, std::size_t all) {
  ProgressFigures f;
  f.bytes_done = mib_done * kMiB;
  f.bytes_total = mib_total * kMiB;
  f.rate = mib_rate * kMiB;
  f.items_done = done;
  f.items_total = all;
  return f;
}

}  // namespace

TEST_CASE("render_progress: bytes, share, rate, ETA and files at 200 columns") {
  ProgressFigures f = running(64, 256, 16, 1, 3);
  CHECK(render_progress(f, 200) == "64.0 MiB / 256.0 MiB  25%  16.0 MiB/s  ETA 12s  files 1/3");
  f.failed = 1;
  f.detail = "retrying";
  CHECK(render_progress(f, 200) == "64.0 MiB / 256.0 MiB  25%  16.0 MiB/s  ETA 12s  files 1/3  1 failed  retrying");
}

TEST_CASE("render_progress: never wider than the terminal, the least useful parts dropped first") {
  ProgressFigures f = running(1536, 10240, 2.5, 120, 1000);
  f.detail = std::string(300, 'x');
  const std::string full = render_progress(f, 1000);
  CHECK(display_width(full) > 200);
  const std::string wide = render_progress(f, 200);
  CHECK(display_width(wide) == 199);  // the detail cut to fit, with a marker
  CHECK(wide.rfind("1.5 GiB / 10.0 GiB  15%  2.5 MiB/s  ETA 58m02s  files 120/1000  xxx", 0) == 0);
  CHECK(wide.substr(wide.size() - 3) == "…");
  const std::string narrow = render_progress(f, 80);
  CHECK(display_width(narrow) <= 79);
  CHECK(narrow.rfind("1.5 GiB / 10.0 GiB  15%  2.5 MiB/s  ETA 58m02s  files 120/1000  x", 0) == 0);
  // Without the detail: the share goes first, then the rate, then the ETA.
  f.detail.clear();
  CHECK(render_progress(f, 60) == "1.5 GiB / 10.0 GiB  2.5 MiB/s  ETA 58m02s  files 120/1000");
  CHECK(render_progress(f, 50) == "1.5 GiB / 10.0 GiB  ETA 58m02s  files 120/1000");
  CHECK(render_progress(f, 40) == "1.5 GiB / 10.0 GiB  files 120/1000");
  CHECK(display_width(render_progress(f, 21)) <= 20);
}

TEST_CASE("short durations and byte counts as the line writes them") {
  using impact::cli::human_bytes;
  using impact::cli::short_duration;
  CHECK(short_duration(0) == "0s");
  CHECK(short_duration(59.4) == "59s");
  CHECK(short_duration(245) == "4m05s");
  CHECK(short_duration(3720) == "1h02m");
  CHECK(short_duration(3 * 86400 + 4 * 3600) == "3d04h");
  CHECK(human_bytes(512) == "512 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(256.0 * kMiB) == "256.0 MiB");
}

TEST_CASE("the closing line: total bytes, time, average rate, files") {
  ProgressFigures f;
  f.final = true;
  f.bytes_done = f.bytes_total = 256 * kMiB;
  f.elapsed = 16;
  f.rate = 16.0 * kMiB;
  f.items_done = f.items_total = 3;
  CHECK(render_progress(f, 80) == "256.0 MiB  in 16s  (16.0 MiB/s)  files 3/3");
}

TEST_CASE("items only: runs done of all and a count per state") {
  ProgressFigures f;
  f.bytes = false;
  f.noun = "runs";
  f.items_done = 2;
  f.items_total = 5;
  f.failed = 1;
  f.detail = "3 RUNNING  1 COMPLETE  1 EXECUTOR_ERROR";
  CHECK(render_progress(f, 80) == "runs 2/5  1 failed  3 RUNNING  1 COMPLETE  1 EXECUTOR_ERROR");
}

TEST_CASE("a download on a terminal: rate over the last seconds, ETA, and a closing line") {
  Screen s;
  {
    Progress p = s.term.progress(s.options());
    p.plan(2, 100 * kMiB);
    for (int i = 0; i < 10; ++i) {
      s.now += 1s;
      p.add_bytes(5 * kMiB);
    }
    const auto f = p.figures();
    CHECK(f.bytes_done == 50 * kMiB);
    CHECK(f.rate == doctest::Approx(5.0 * kMiB));
    CHECK(s.frames().back() == "50.0 MiB / 100.0 MiB  50%  5.0 MiB/s  ETA 10s  files 0/2");
    p.item_done();
    s.now += 1s;
    p.add_bytes(50 * kMiB);
    p.item_done();
    s.now += 1s;
    p.finish();
  }
  const auto err = s.err.str();
  CHECK(err.ends_with("\n"));
  CHECK(s.frames().back() == "100.0 MiB  in 12s  (8.3 MiB/s)  files 2/2");
  for (const auto& frame : s.frames()) CHECK(display_width(frame) <= 79);
}

TEST_CASE("redrawn at most ten times a second") {
  Screen s;
  Progress p = s.term.progress(s.options());
  p.plan(1, 1000);
  const auto drawn = [&] { return s.frames().size(); };
  const auto before = drawn();
  for (int i = 0; i < 100; ++i) p.add_bytes(1);  // no time passes: no redraw
  CHECK(drawn() == before);
  s.now += 150ms;
  p.add_bytes(1);
  CHECK(drawn() == before + 1);
  for (int i = 0; i < 1000; ++i) {  // 1000 updates over one second
    s.now += 1ms;
    p.add_bytes(1);
  }
  CHECK(drawn() <= before + 1 + 10);
  CHECK(drawn() >= before + 1 + 9);
}

TEST_CASE("a resumed download counts the files already there as done: files 4/4, never 3/1") {
  Screen s;
  Progress p = s.term.progress(s.options());
  // As the S3 engine reports it: the three identical files first, then the plan of what is left.
  for (int i = 0; i < 3; ++i) p.present(1, 10 * kMiB);
  CHECK(s.err.str().empty());  // nothing drawn before the plan: no "files 1/1" while the count is incomplete
  p.plan(1, 10 * kMiB);
  CHECK(s.frames().back() == "30.0 MiB / 40.0 MiB  75%  files 3/4");
  CHECK(p.figures().items_done == 3);
  CHECK(p.figures().items_total == 4);
  CHECK(p.figures().bytes_total == 40 * kMiB);
  s.now += 1s;
  p.add_bytes(10 * kMiB);
  p.item_done();
  s.now += 1s;
  p.finish();
  CHECK(s.frames().back() == "40.0 MiB  in 2s  (5.0 MiB/s)  files 4/4");  // the rate counts this run's bytes only
  // An item that fails before the plan (a refused name) raises the total with it.
  Screen t;
  Progress q = t.term.progress(t.options());
  q.item_done(false);
  q.plan(2, 0);
  CHECK(q.figures().items_done == 1);
  CHECK(q.figures().items_total == 3);
  CHECK(q.figures().failed == 1);
}

TEST_CASE("not a terminal: nothing drawn, not even the closing line") {
  Screen s({.tty = false, .color = false, .width = 80});
  {
    Progress p = s.term.progress(s.options());
    p.plan(1, 10);
    s.now += 1s;
    p.add_bytes(10);
    p.item_done();
    p.finish();
  }
  CHECK(s.err.str().empty());
}

TEST_CASE("messages clear the line first; colour only where it is on") {
  Screen s({.tty = true, .color = true, .width = 80});
  Progress p = s.term.progress(s.options());
  p.plan(2, 10);
  s.now += 1s;
  p.item_done(false);
  CHECK(s.err.str().find("\033[31m1 failed\033[0m") != std::string::npos);
  s.term.error("a.txt: refused");
  CHECK(s.err.str().find("\r\033[K\033[31mimpact:\033[0m a.txt: refused\n") != std::string::npos);
  Screen plain({.tty = true, .color = false, .width = 80});  // NO_COLOR, --no-color
  Progress q = plain.term.progress(plain.options());
  q.plan(2, 10);
  plain.now += 1s;
  q.item_done(false);
  CHECK(plain.frames().back() == "0 B / 10 B  0%  files 1/2  1 failed");
  CHECK(plain.err.str().find('\033' + std::string("[3")) == std::string::npos);
}

TEST_CASE("Ctrl-C: the last figures stay, a newline, and the hint how to resume") {
  impact::reset_cancel();
  Screen s;
  s.term.set_command_line("impact results download run-42 -o 'my results'");
  try {
    Progress p = s.term.progress(s.options());
    p.plan(3, 30 * kMiB);
    s.now += 1s;
    p.add_bytes(10 * kMiB);
    impact::request_cancel();
    impact::throw_if_cancelled();
  } catch (const impact::Error& e) {
    CHECK(e.kind() == impact::ErrorKind::cancelled);
  }
  impact::reset_cancel();
  const auto err = s.err.str();
  CHECK(err.ends_with("files 0/3\033[K\n"));  // not cleared: ended with a newline
  CHECK(s.frames().back() == "10.0 MiB / 30.0 MiB  33%  10.0 MiB/s  ETA 2s  files 0/3");
  CHECK(s.term.interrupt_hint() == "rerun the same command to resume: impact results download run-42 -o 'my results'");
}

TEST_CASE("another error: the line is cleared and no resume hint is kept") {
  impact::reset_cancel();
  Screen s;
  try {
    Progress p = s.term.progress(s.options());
    p.plan(1, 10);
    throw impact::Error(impact::ErrorKind::generic, "disk full");
  } catch (const impact::Error&) {
  }
  const auto err = s.err.str();
  CHECK(err.ends_with("\r\033[K"));
  CHECK(s.term.interrupt_hint().empty());
}
