// Reading members of JSON objects by type: the one set of rules the library's parsers share (internal).
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace impact::detail {

// How deeply arrays and objects may nest in any JSON impact reads (server answers, its own files, JWTs).
// Printing and copying a parsed document recurse once per level, and pretty-printing indents each line by
// its level: the bound keeps the stack safe and the printed size linear in the input.
inline constexpr std::size_t kMaxJsonDepth = 128;

// The deepest nesting of arrays and objects in `text`, counting no further than `stop` (strings skipped;
// a scan, not a validation).
inline std::size_t json_depth(std::string_view text, std::size_t stop = kMaxJsonDepth + 1) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest && (deepest = depth) >= stop) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// `text` parsed, or a discarded value when it is not JSON or nests deeper than kMaxJsonDepth.
inline nlohmann::json parse_json(std::string_view text) {
  if (json_depth(text) > kMaxJsonDepth) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, false);
}

// The member `key` of `j`; nullptr when `j` is not an object or has no such member.
inline const nlohmann::json* member(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// The member `key` when it is of `type`; nullptr otherwise.
inline const nlohmann::json* member(const nlohmann::json& j, std::string_view key, nlohmann::json::value_t type) {
  const auto* v = member(j, key);
  return v != nullptr && v->type() == type ? v : nullptr;
}

// A value as text: a string as it is, anything else as JSON.
inline std::string as_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Lenient readers, for documents from servers: a member that is missing or of another type (or a `j` that is not
// an object) reads as empty, so one odd member does not fail the whole document.

// A string member, or "".
inline std::string string_member(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key, nlohmann::json::value_t::string);
  return v != nullptr ? v->get<std::string>() : std::string();
}

// The strings of an array (other elements are skipped); empty when `array` is not an array.
inline std::vector<std::string> strings_of(const nlohmann::json& array) {
  std::vector<std::string> out;
  if (array.is_array())
    for (const auto& v : array)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

// The strings of an array member.
inline std::vector<std::string> strings_member(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key);
  return v != nullptr ? strings_of(*v) : std::vector<std::string>();
}

// An integer member (signed or unsigned JSON integer, read as int64 like json::get does), or std::nullopt.
inline std::optional<std::int64_t> integer_member(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  return v->get<std::int64_t>();
}

// A boolean member, or std::nullopt.
inline std::optional<bool> bool_member(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key, nlohmann::json::value_t::boolean);
  if (v == nullptr) return std::nullopt;
  return v->get<bool>();
}

// A number member (integer or float) as an integer clamped to [-limit, limit], or std::nullopt: converting a huge
// float is undefined behaviour, and sums with the result must not overflow. `limit` must be exact as a double.
inline std::optional<std::int64_t> clamped_number_member(const nlohmann::json& j, std::string_view key, std::int64_t limit) {
  const auto* v = member(j, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  if (v->is_number_unsigned()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get<std::uint64_t>(), static_cast<std::uint64_t>(limit)));
  if (v->is_number_integer()) return std::clamp<std::int64_t>(v->get<std::int64_t>(), -limit, limit);
  const auto bound = static_cast<double>(limit);
  return static_cast<std::int64_t>(std::clamp(v->get<double>(), -bound, bound));
}

// Strict readers, for impact's own files: a missing member reads as empty, one of another type throws WrongType
// (its message names the member), for the caller to report the file as damaged.
struct WrongType : std::runtime_error {
  WrongType(std::string_view key, std::string_view what) : std::runtime_error(message(key, what)) {}

 private:
  static std::string message(std::string_view key, std::string_view what) {
    std::string m = "'";
    m.append(key).append("' is not ").append(what);
    return m;
  }
};

inline std::string string_member_strict(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key);
  if (v == nullptr) return {};
  if (!v->is_string()) throw WrongType(key, "a string");
  return v->get<std::string>();
}

// get<int64_t> of a float out of range is undefined behaviour: only integers are accepted.
inline std::int64_t integer_member_strict(const nlohmann::json& j, std::string_view key) {
  const auto* v = member(j, key);
  if (v == nullptr) return 0;
  if (!v->is_number_integer()) throw WrongType(key, "an integer");
  return v->get<std::int64_t>();
}

}  // namespace impact::detail
