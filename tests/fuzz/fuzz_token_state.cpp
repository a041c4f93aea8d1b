// Login state files (token_store.hpp parse_token_state), and that what parses survives serialize().
#include "fuzz.hpp"
#include "impact/token_store.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_error_only([&] {
    const auto s = auth::parse_token_state(fuzz::text(data, size), "fuzz.json");
    const auto again = auth::parse_token_state(auth::serialize(s), "fuzz.json");
    if (again.access_token != s.access_token || again.refresh_token != s.refresh_token || again.visas != s.visas ||
        again.access_expires != s.access_expires)
      __builtin_trap();
  });
  return 0;
}
