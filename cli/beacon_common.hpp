// What `impact search` and `impact beacon` share: which beacons to ask, with which token, and the settings.
#pragma once

#include <string>
#include <vector>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/beacon.hpp"

namespace impact::cli {

struct BeaconSelection {
  std::vector<std::string> names;  // --beacon NAME|URL; empty = every beacon of the profile
  std::string timeout = "10s";     // per beacon
  bool refresh = false;            // ignore cached /map, /configuration, /filtering_terms
  bool anonymous = false;          // send no token even when logged in
};

// Adds --timeout, --refresh, --anonymous and (with_beacon) --beacon to `cmd`.
void add_beacon_options(CLI::App* cmd, BeaconSelection& sel, bool with_beacon = true);

// The beacons to ask. A token goes only when logged in, and only to a beacon of the same origin as one of
// the profile's services (auth::is_profile_service); any other URL is asked anonymously.
std::vector<beacon::Target> beacon_targets(Context& ctx, const Profile& p, const BeaconSelection& sel);
beacon::Settings beacon_settings(Context& ctx, const BeaconSelection& sel);

}  // namespace impact::cli
