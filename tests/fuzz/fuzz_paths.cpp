// Names that come from servers and become local paths: S3 keys (storage::safe_relative_path) and DRS
// object names (transfer::check_path, the one rule for every source), plus the --include/--exclude glob patterns matched against them. Whatever
// a server sends, the result must stay inside the destination folder.
#include <filesystem>

#include "fuzz.hpp"
#include "impact/transfer.hpp"
#include "impact/storage.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto prefix = fuzz::next_line(input);
  const auto key = input;
  fuzz::expect_error_only([&] {
    const std::filesystem::path p = storage::safe_relative_path(key, prefix);
    if (p.empty() || p.is_absolute()) __builtin_trap();
    for (const auto& part : p)
      if (part == ".." || part == "." || part.string().find('\0') != std::string::npos) __builtin_trap();
  });
  fuzz::expect_error_only([&] {
    const std::filesystem::path p = transfer::check_path(key);
    if (p.empty() || p.is_absolute()) __builtin_trap();
    for (const auto& part : p)
      if (part == ".." || part == "." || part.string().find('\0') != std::string::npos) __builtin_trap();
  });
  return 0;
}
