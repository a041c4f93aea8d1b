// URLs from configuration files and server answers (url.hpp): parse, print, and the rules applied to them.
#include "fuzz.hpp"
#include "impact/url.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text(data, size);
  if (auto u = Url::parse(text)) {
    (void)u->origin();
    (void)u->is_loopback();
    // What str() prints parses back to the same place.
    auto again = Url::parse(u->str());
    if (!again || !same_origin(*u, *again) || again->path != u->path) __builtin_trap();
  }
  fuzz::expect_error_only([&] { require_allowed_url(text, "the fuzzed URL"); });
  (void)join_url(text, text);
  (void)percent_encode(text, size % 2 == 0);
  (void)redact_url(text);
  return 0;
}
