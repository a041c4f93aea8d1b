// A profile's run ids, kept a few seconds for shell completion: a TAB after `impact run show` should not list
// ten thousand runs from the WES again at every key press.
//
// The list lives in cache_home()/run-ids/<profile>.json (0600, in a 0700 folder, written atomically) with the
// WES URL it came from and when it was read; it is used only for the same profile and URL, and only while it
// is younger than the time to live. Whatever changes the list from impact's side forgets it: a submission or
// a cancellation through that profile, and a login or logout of it. Runs submitted from elsewhere show up
// once it expires.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace impact::wes {

constexpr std::chrono::seconds kRunIdsTtl{30};

// The ids cached for `profile` and `wes_url`, or nullopt (none, another URL, too old, unreadable).
std::optional<std::vector<std::string>> cached_run_ids(std::string_view profile, std::string_view wes_url,
                                                       std::chrono::seconds ttl = kRunIdsTtl);
// Keeps `ids` for `profile` and `wes_url`. Best effort: a cache that cannot be written is no error.
void cache_run_ids(std::string_view profile, std::string_view wes_url, const std::vector<std::string>& ids);
// Forgets what is cached for `profile` (best effort).
void forget_run_ids(std::string_view profile);

}  // namespace impact::wes
