// TRS input from users and servers (trs.hpp): ID[:VERSION] refs, relative paths a registry lists, and tool,
// version, file-list and file-wrapper documents. The first line is a ref, the second a relative path; the
// rest is a JSON document, read as each of the four shapes.
#include "fuzz.hpp"
#include "impact/trs.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto ref = fuzz::next_line(input);
  fuzz::expect_error_only([&] { (void)trs::parse_ref(ref); });
  const auto rel = fuzz::next_line(input);
  if (auto safe = trs::safe_relative_path(rel)) {
    // a safe path never starts at the root, and no component is empty, "." or ".." ("..x" is a name)
    if (safe->empty() || safe->front() == '/') __builtin_trap();
    std::size_t start = 0;
    while (start <= safe->size()) {
      auto end = safe->find('/', start);
      if (end == std::string::npos) end = safe->size();
      const auto part = std::string_view(*safe).substr(start, end - start);
      if (part.empty() || part == "." || part == ".." || part.find('\\') != std::string_view::npos) __builtin_trap();
      start = end + 1;
    }
  }
  const auto doc = fuzz::json(input);
  if (!doc.is_discarded()) {
    fuzz::expect_error_only([&] { (void)trs::parse_tools(doc, "fuzzing"); });
    fuzz::expect_error_only([&] { (void)trs::parse_tool(doc, "fuzzing"); });
    fuzz::expect_error_only([&] { (void)trs::parse_files(doc, "fuzzing"); });
    fuzz::expect_error_only([&] {
      auto w = trs::parse_file_wrapper(doc, "fuzzing");
      if (w.content) (void)trs::verify(*w.content, w.checksums, "fuzzing");
    });
  }
  return 0;
}
