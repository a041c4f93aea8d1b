// The configuration file (config.hpp Config::parse): parse, validate, and the serialize round trip.
#include "fuzz.hpp"
#include "impact/config.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_error_only([&] {
    const auto c = Config::parse(fuzz::text(data, size), "config.toml");
    for (const auto& entry : c.profiles()) {
      if (!valid_profile_name(entry.first)) __builtin_trap();
      nlohmann::json j = entry.second;
      (void)j.dump();
      fuzz::expect_error_only([&] { entry.second.validate(); });
    }
    fuzz::expect_error_only([&] { (void)c.select(std::nullopt); });
    // What impact writes, it reads back to the same profiles.
    const auto again = Config::parse(c.serialize(), "config.toml");
    if (again.profiles().size() != c.profiles().size() || again.default_profile() != c.default_profile())
      __builtin_trap();
  });
  return 0;
}
