// SafeDir: names below a download folder never go through a symbolic link.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fs/safe_dir.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "temp_dir.hpp"

using namespace impact;
namespace fs = std::filesystem;

namespace {
void put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
std::string get(const fs::path& p) { return read_file(p); }
}  // namespace

TEST_CASE("SafeDir: a link at a file is refused, never written through, and names the path below the folder") {
  test::TempDir tmp;
  const fs::path out = tmp.path() / "out", victim = tmp.path() / "victim";
  fs::create_directories(out);
  put(victim, "precious data, longer than the object");
  fs::create_symlink(victim, out / "good.bin.impact-part");
  fs::create_symlink(tmp.path() / "created-by-link", out / "dangling.impact-part");
  SafeDir d = SafeDir::open(out, false);
  for (int flags : {O_WRONLY | O_CREAT, O_RDWR | O_CREAT | O_TRUNC, O_WRONLY | O_CREAT | O_EXCL, O_RDONLY}) {
    CHECK_THROWS_WITH_AS(d.open_file("good.bin.impact-part", flags), doctest::Contains("good.bin.impact-part is a symbolic link"), Error);
    CHECK_THROWS_WITH_AS(d.open_file("dangling.impact-part", flags), doctest::Contains("dangling.impact-part is a symbolic link"), Error);
  }
  CHECK(get(victim) == "precious data, longer than the object");
  CHECK_FALSE(fs::exists(fs::symlink_status(tmp.path() / "created-by-link")));
  try {
    d.open_file("good.bin.impact-part", O_WRONLY | O_CREAT);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK(std::string(e.what()).find(victim.string()) == std::string::npos);  // the link's target is not shown
  }
  // A link at the final name is reported by stat (not followed) and refused by require_file_or_nothing.
  fs::create_symlink(victim, out / "good.bin");
  auto st = d.stat("good.bin");
  REQUIRE(st);
  CHECK(S_ISLNK(st->st_mode));
  CHECK_THROWS_WITH_AS(d.require_file_or_nothing("good.bin"), doctest::Contains("good.bin is a symbolic link"), Error);
  CHECK_NOTHROW(d.require_file_or_nothing("missing"));
}

TEST_CASE("SafeDir: a link at a folder on the way is refused; nothing is made or written behind it") {
  test::TempDir tmp;
  const fs::path out = tmp.path() / "out", elsewhere = tmp.path() / "elsewhere";
  fs::create_directories(out);
  fs::create_directories(elsewhere);
  fs::create_symlink("../elsewhere", out / "bundle");
  SafeDir d = SafeDir::open(out, false);
  CHECK_THROWS_WITH_AS(d.dir("bundle/inner", true), doctest::Contains("bundle is a symbolic link"), Error);
  CHECK_THROWS_WITH_AS(d.open_file("bundle/evil.txt", O_WRONLY | O_CREAT), doctest::Contains("bundle is a symbolic link"), Error);
  CHECK_THROWS_WITH_AS(d.stat("bundle/evil.txt"), doctest::Contains("bundle is a symbolic link"), Error);
  CHECK_THROWS_AS(d.rename("a", "bundle/evil.txt"), Error);
  CHECK(fs::is_empty(elsewhere));
  // Deeper down: runs/sub -> elsewhere, found while making runs/sub/deeper.
  fs::create_directories(out / "runs");
  fs::create_symlink(elsewhere, out / "runs" / "sub");
  CHECK_THROWS_WITH_AS(d.dir("runs/sub/deeper", true), doctest::Contains("runs/sub is a symbolic link"), Error);
  SafeDir runs = d.dir("runs", false);
  CHECK_THROWS_WITH_AS(runs.open_file("sub/evil.txt", O_WRONLY | O_CREAT), doctest::Contains("runs/sub is a symbolic link"), Error);
  CHECK(fs::is_empty(elsewhere));
  // A file where a folder is wanted.
  put(out / "plain", "x");
  CHECK_THROWS_WITH_AS(d.dir("plain/x", true), doctest::Contains("plain is not a folder"), Error);
  // Paths that would leave the folder are refused outright.
  CHECK_THROWS_AS(d.open_file("../victim", O_WRONLY | O_CREAT), Error);
  CHECK_THROWS_AS(d.open_file("/etc/passwd", O_RDONLY), Error);
}

TEST_CASE("SafeDir: files are made, renamed over a link (replacing it) and removed by name") {
  test::TempDir tmp;
  const fs::path out = tmp.path() / "out", victim = tmp.path() / "victim";
  put(victim, "victim");
  SafeDir d = SafeDir::open(out, true);
  CHECK(fs::is_directory(out));
  SafeDir sub = d.dir("a/b", true);
  CHECK(fs::is_directory(out / "a" / "b"));
  {
    Fd f = sub.open_file("x.impact-part", O_WRONLY | O_CREAT | O_EXCL, 0600);
    REQUIRE(f);
    CHECK(::write(f.get(), "data", 4) == 4);
  }
  // O_EXCL on an existing file: not a fresh file.
  CHECK_THROWS_AS(sub.open_file("x.impact-part", O_WRONLY | O_CREAT | O_EXCL), Error);
  fs::create_symlink(victim, out / "a" / "b" / "x");
  d.rename("a/b/x.impact-part", "a/b/x");
  CHECK(fs::is_regular_file(fs::symlink_status(out / "a" / "b" / "x")));
  CHECK(get(out / "a" / "b" / "x") == "data");
  CHECK(get(victim) == "victim");
  // remove takes away a link itself, never its target.
  fs::create_symlink(victim, out / "link");
  CHECK(d.remove("link"));
  CHECK_FALSE(d.remove("link"));
  CHECK(get(victim) == "victim");
  // Missing files.
  CHECK_FALSE(d.stat("nothing"));
  CHECK_FALSE(d.stat("no/such/folder/file"));
  try {
    d.open_file("nothing", O_RDONLY);
    FAIL("opened a missing file");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
  }
  CHECK_THROWS_AS(SafeDir::open(tmp.path() / "absent", false), Error);
}

TEST_CASE("SafeDir: a planted hard link or FIFO is refused for writing, without blocking") {
  test::TempDir tmp;
  const fs::path out = tmp.path() / "out";
  SafeDir d = SafeDir::open(out, true);
  put(tmp.path() / "victim", "victim");
  fs::create_hard_link(tmp.path() / "victim", out / "h.impact-part");
  CHECK_THROWS_WITH_AS(d.open_file("h.impact-part", O_WRONLY | O_CREAT), doctest::Contains("has other hard links"), Error);
  CHECK(get(tmp.path() / "victim") == "victim");
  REQUIRE(::mkfifo((out / "f.impact-part").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(d.open_file("f.impact-part", O_WRONLY | O_CREAT), doctest::Contains("not a regular file"), Error);
  CHECK_THROWS_WITH_AS(d.open_file("f.impact-part", O_RDONLY), doctest::Contains("not a regular file"), Error);
  fs::create_directories(out / "adir");
  CHECK_THROWS_WITH_AS(d.open_file("adir", O_RDWR | O_CREAT), doctest::Contains("not a regular file"), Error);
}

TEST_CASE("temporary names cannot be object names") {
  CHECK(is_temporary_name("x.impact-part"));
  CHECK(is_temporary_name("x.impact-part.3"));
  CHECK(is_temporary_name("x.impact-state.tmp"));
  CHECK(is_temporary_name("a.impact-state"));
  CHECK_FALSE(is_temporary_name("x.part"));
  CHECK_FALSE(is_temporary_name("impact-part"));
  CHECK_FALSE(is_temporary_name("report.txt"));
}
