// The short-lived cache of run ids for completion (see impact/run_ids_cache.hpp).
#include "impact/run_ids_cache.hpp"

#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/config.hpp"
#include "impact/paths.hpp"

namespace impact::wes {
namespace {

std::filesystem::path file_for(std::string_view profile) {
  return cache_home() / "run-ids" / (std::string(profile) + ".json");
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Only a valid profile name (config's rule) is used as a file name: none steps out of the cache folder.
bool usable(std::string_view profile) { return valid_profile_name(profile); }

}  // namespace

std::optional<std::vector<std::string>> cached_run_ids(std::string_view profile, std::string_view wes_url,
                                                       std::chrono::seconds ttl) {
  if (!usable(profile)) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(read_private_file(file_for(profile), 64u << 20));
    const auto age = now_seconds() - j.at("read_at").get<std::int64_t>();
    if (j.at("wes").get<std::string>() != wes_url || age < 0 || age >= ttl.count()) return std::nullopt;
    return j.at("ids").get<std::vector<std::string>>();
  } catch (const std::exception&) {
    return std::nullopt;  // none yet, or not ours to trust: read the list again
  }
}

void cache_run_ids(std::string_view profile, std::string_view wes_url, const std::vector<std::string>& ids) {
  if (!usable(profile)) return;
  try {
    const auto file = file_for(profile);
    ensure_private_dir(file.parent_path());
    const nlohmann::json j{{"wes", wes_url}, {"read_at", now_seconds()}, {"ids", ids}};
    write_file_atomic(file, j.dump(), 0600);
  } catch (const Error&) {
    // a read-only or full cache folder: completion still works, only slower
  }
}

void forget_run_ids(std::string_view profile) {
  if (!usable(profile)) return;
  std::error_code ec;
  std::filesystem::remove(file_for(profile), ec);
}

}  // namespace impact::wes
