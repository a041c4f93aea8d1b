// What the htsget sources share inside the library.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace impact::htsget {
// A decimal byte offset of at most 18 digits (no sign, no spaces); nullopt otherwise.
std::optional<std::uint64_t> parse_byte_offset(std::string_view s);
}  // namespace impact::htsget
