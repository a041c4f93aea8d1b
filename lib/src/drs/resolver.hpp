// Compact DRS identifiers (drs://prefix:accession) resolved through an identifiers.org / n2t style resolver.
#pragma once
#include <string>

#include "impact/drs.hpp"

namespace impact::drs::detail {
// The DRS base URL (…/ga4gh/drs/v1) serving `uri`'s prefix; cached per prefix on disk for settings.resolver_ttl.
std::string resolve_compact(http::Client& http, const Settings& settings, const Uri& uri);
}  // namespace impact::drs::detail
