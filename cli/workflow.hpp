// What `impact run submit --trs` uses of `impact workflow` (cmd_workflow.cpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "context.hpp"
#include "impact/trs.hpp"

namespace impact::cli {

struct TrsFetched {
  trs::Registry registry;
  trs::Fetched fetched;
};

// Fetches ID:VERSION (of type `type`, or the version's only one) from the registries named in `wanted`
// (the profile's, by name or URL; all of them when empty, the first that knows it) into `dir`.
TrsFetched fetch_trs_workflow(Context& ctx, const std::string& ref, const std::string& type,
                              const std::vector<std::string>& wanted, const std::filesystem::path& dir);

}  // namespace impact::cli
