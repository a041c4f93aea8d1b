// FileInput (encrypt/decrypt's reader): chunks in order, and a file that shrinks while it is read is a clear
// error. Reading through a mapping made the same truncation a SIGBUS that killed the process.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <string>

#include "file_input.hpp"
#include "impact/error.hpp"
#include "../unit/temp_dir.hpp"

using impact::cli::FileInput;

namespace {

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 % 251);
  return s;
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("file input: a regular file arrives whole, in order, in full chunks but the last") {
  impact::test::TempDir dir;
  const auto path = dir.path() / "in";
  const std::string data = pattern(10 * 4096 + 123);
  write_file(path, data);
  FileInput in(path.string());
  std::string got;
  std::size_t chunks = 0, short_chunks = 0;
  in.each([&](std::string_view c) {
    ++chunks;
    short_chunks += c.size() < 4096;
    got.append(c);
  }, 4096);
  CHECK(got == data);
  CHECK(chunks == 11);
  CHECK(short_chunks == 1);
}

TEST_CASE("file input: a file truncated by another program while it is read is an error naming both sizes") {
  impact::test::TempDir dir;
  const auto path = dir.path() / "in";
  constexpr std::size_t chunk = 64 * 1024;
  write_file(path, pattern(64 * chunk));  // far more than the reader thread reads ahead
  FileInput in(path.string());
  std::size_t seen = 0;
  bool truncated = false;
  try {
    in.each([&](std::string_view c) {
      seen += c.size();
      if (!truncated) {
        REQUIRE(::truncate(path.c_str(), static_cast<off_t>(8 * chunk)) == 0);
        truncated = true;
      }
    }, chunk);
    FAIL("no error for a file that shrank");
  } catch (const impact::Error& e) {
    CHECK(e.kind() == impact::ErrorKind::io);
    const std::string msg = e.what();
    CHECK(msg.find("shrank while it was read") != std::string::npos);
    CHECK(msg.find(std::to_string(64 * chunk)) != std::string::npos);
  }
  CHECK(truncated);
  CHECK(seen <= 8 * chunk);
}

TEST_CASE("file input: what the consumer throws stops the reader and is thrown on") {
  impact::test::TempDir dir;
  const auto path = dir.path() / "in";
  write_file(path, pattern(1 << 20));
  FileInput in(path.string());
  int calls = 0;
  CHECK_THROWS_WITH_AS(in.each([&](std::string_view) {
    ++calls;
    throw impact::Error(impact::ErrorKind::protocol, "bad segment");
  }, 4096), "bad segment", impact::Error);
  CHECK(calls == 1);
}
