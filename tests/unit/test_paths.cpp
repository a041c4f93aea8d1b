#include <doctest/doctest.h>

#include <filesystem>
#include <sys/stat.h>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "temp_dir.hpp"

using namespace impact;

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

TEST_CASE("ensure_private_dir creates folders 0700") {
  test::TempDir dir;
  auto d = dir.path() / "a" / "b";
  ensure_private_dir(d);
  struct stat st{};
  REQUIRE(::stat(d.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
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
