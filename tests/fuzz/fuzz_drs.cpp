// DRS input from users and servers (drs.hpp): drs:// URIs and compact identifiers, object documents and
// the OPTIONS authorizations. The first line is a URI; the rest is a JSON document.
#include "fuzz.hpp"
#include "impact/drs.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input = fuzz::text(data, size);
  const auto uri = fuzz::next_line(input);
  fuzz::expect_error_only([&] { (void)drs::parse_uri(uri); });
  const auto doc = fuzz::json(input);
  if (!doc.is_discarded()) {
    fuzz::expect_error_only([&] { (void)drs::parse_object(doc, "fuzzing"); });
    fuzz::expect_error_only([&] { (void)drs::parse_authorizations(doc); });
  }
  return 0;
}
