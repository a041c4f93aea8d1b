// `impact doctor`: is every service of the profile reachable, well-formed and in step with our clock?
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "impact/config.hpp"
#include "impact/error.hpp"
#include "impact/http.hpp"

namespace impact {

enum class CheckStatus { ok, warn, fail };

struct Check {
  std::string service;  // "wes", "beacon public", "issuer", ...
  std::string url;      // redacted
  std::string name;     // "reach", "api", "clock", ...
  CheckStatus status = CheckStatus::ok;
  std::string detail;   // one line
  std::string hint;     // what to do, when not ok (facts; no command or flag)
  Remedy remedy = Remedy::none;  // what the CLI words with its commands (see error.hpp)
};

struct DoctorReport {
  std::vector<Check> checks;
  bool ok() const;  // no check failed
};

void to_json(nlohmann::json& j, const Check& c);
void to_json(nlohmann::json& j, const DoctorReport& r);
std::string_view to_string(CheckStatus s) noexcept;

// Clock skew limits: beyond `warn` a check warns, beyond `fail` it fails (signatures and token
// lifetimes break).
inline constexpr int kSkewWarnSeconds = 10;
inline constexpr int kSkewFailSeconds = 60;

// Probes every configured service in parallel (one attempt each, no retries).
DoctorReport run_doctor(const Profile& profile, http::Options options);

}  // namespace impact
