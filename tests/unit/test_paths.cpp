#include <doctest/doctest.h>

#include <filesystem>
#include <sys/stat.h>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "temp_dir.hpp"

using namespace impact;
using impact::test::mode_of;

TEST_CASE("write_file_atomic writes with the mode asked, replaces, leaves no temp file") {
  test::TempDir dir;
  auto f = dir.path() / "tokens.json";
  write_file_atomic(f, "first", 0600);
  write_file_atomic(f, "second", 0600);
  CHECK(read_file(f) == "second");
  struct stat st{};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("write_file_atomic into a missing folder fails cleanly") {
  test::TempDir dir;
  CHECK_THROWS_AS(write_file_atomic(dir.path() / "nope" / "f", "x"), Error);
}

TEST_CASE("read_file refuses oversized files and reports missing ones as not_found") {
  test::TempDir dir;
  write_file_atomic(dir.path() / "big", std::string(2048, 'x'));
  CHECK_THROWS_AS(read_file(dir.path() / "big", 1024), Error);
  try {
    read_file(dir.path() / "missing");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
  }
}

TEST_CASE("ensure_private_dir creates the folder and every missing parent 0700, whatever the umask") {
  test::TempDir dir;
  // as for XDG_STATE_HOME=<tmp>/home/.local/state when none of it exists yet
  auto d = dir.path() / "home" / ".local" / "state" / "impact" / "tokens";
  const mode_t old = ::umask(022);
  ensure_private_dir(d);
  ::umask(0277);  // a umask that would leave a folder without write or search permission
  ensure_private_dir(dir.path() / "strict" / "cache");
  ::umask(old);
  for (auto p = d; p != dir.path(); p = p.parent_path()) CHECK_MESSAGE(mode_of(p) == 0700, p.string());
  CHECK(mode_of(dir.path() / "strict") == 0700);
  CHECK(mode_of(dir.path() / "strict" / "cache") == 0700);
}

TEST_CASE("create_private_dirs leaves existing folders as they are; ensure_private_dir sets only its own") {
  test::TempDir dir;
  auto shared = dir.path() / "shared";
  std::filesystem::create_directory(shared);
  ::chmod(shared.c_str(), 0755);
  create_private_dirs(shared / "new" / "leaf");
  CHECK(mode_of(shared) == 0755);
  CHECK(mode_of(shared / "new") == 0700);
  CHECK(mode_of(shared / "new" / "leaf") == 0700);

  auto own = shared / "own";
  std::filesystem::create_directory(own);
  ::chmod(own.c_str(), 0755);
  create_private_dirs(own);
  CHECK(mode_of(own) == 0755);  // not impact's to change
  ensure_private_dir(own);
  CHECK(mode_of(own) == 0700);  // impact's own folder: made private as before
  CHECK(mode_of(shared) == 0755);

  // a link to a folder is a folder; a file in the way is a clear error
  std::filesystem::create_directory_symlink(own, dir.path() / "link");
  create_private_dirs(dir.path() / "link" / "sub");
  CHECK(mode_of(own / "sub") == 0700);
  write_file_atomic(dir.path() / "file", "x");
  CHECK_THROWS_WITH_AS(create_private_dirs(dir.path() / "file" / "sub"), doctest::Contains("cannot create"), Error);
  CHECK_THROWS_WITH_AS(create_private_dirs(dir.path() / "file"), doctest::Contains("not a folder"), Error);
}

TEST_CASE("XDG variables are honoured, relative ones ignored") {
  ::setenv("XDG_CONFIG_HOME", "/tmp/xdg-test", 1);
  CHECK(config_home() == std::filesystem::path("/tmp/xdg-test/impact"));
  ::setenv("XDG_CONFIG_HOME", "relative", 1);
  ::setenv("HOME", "/home/someone", 1);
  CHECK(config_home() == std::filesystem::path("/home/someone/.config/impact"));
  ::setenv("XDG_STATE_HOME", "/tmp/state", 1);
  CHECK(state_home() == std::filesystem::path("/tmp/state/impact"));
  ::unsetenv("XDG_CONFIG_HOME");
  ::unsetenv("XDG_STATE_HOME");
}

TEST_CASE("read_private_file reads a regular file and refuses links and non-files") {
  test::TempDir tmp;
  write_file_atomic(tmp.path() / "secret", "s3cr3t", 0600);
  CHECK(read_private_file(tmp.path() / "secret") == "s3cr3t");
  std::filesystem::create_symlink(tmp.path() / "secret", tmp.path() / "link");
  CHECK(read_file(tmp.path() / "link") == "s3cr3t");  // ordinary files may be links
  CHECK_THROWS_WITH_AS(read_private_file(tmp.path() / "link"), doctest::Contains("symbolic link"), Error);
  CHECK_THROWS_WITH_AS(read_private_file(tmp.path()), doctest::Contains("not a regular file"), Error);
  try {
    read_private_file(tmp.path() / "missing");
    FAIL("read a missing file");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
  }
}

TEST_CASE("read_private_file refuses files others can read or write, and folders others can write (issue 22)") {
  test::TempDir tmp;
  const auto f = tmp.path() / "secret";
  write_file_atomic(f, "s3cr3t", 0600);
  for (unsigned mode : {0666u, 0644u, 0640u, 0604u, 0620u}) {
    CAPTURE(mode);
    REQUIRE(::chmod(f.c_str(), mode) == 0);
    CHECK_THROWS_WITH_AS(read_private_file(f), doctest::Contains("can be read or changed by other users"), Error);
  }
  REQUIRE(::chmod(f.c_str(), 0400) == 0);
  CHECK(read_private_file(f) == "s3cr3t");
  REQUIRE(::chmod(f.c_str(), 0600) == 0);
  for (unsigned mode : {0777u, 0770u, 0702u}) {
    CAPTURE(mode);
    REQUIRE(::chmod(tmp.path().c_str(), mode) == 0);
    CHECK_THROWS_WITH_AS(read_private_file(f), doctest::Contains("can be written by other users"), Error);
  }
  for (unsigned mode : {01777u, 0755u, 0700u}) {  // sticky (others cannot swap the file), or not writable by others
    CAPTURE(mode);
    REQUIRE(::chmod(tmp.path().c_str(), mode) == 0);
    CHECK(read_private_file(f) == "s3cr3t");
  }
}
