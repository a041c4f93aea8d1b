// The configuration file: named profiles, each the services of one federation node.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace impact {

struct StorageConfig {
  std::string url;                            // S3 endpoint
  std::string bucket;                         // results bucket
  std::string region = "us-east-1";
  std::string sts;                            // AssumeRoleWithWebIdentity endpoint, if any
  std::string keys_file;                      // static keys: a file of "ACCESS_KEY_ID\nSECRET_ACCESS_KEY[\nSESSION_TOKEN]"
  std::string result_prefix = "runs/{run_id}/";
};

struct Profile {
  std::string name;
  std::string registry;                       // where it was discovered from, if anywhere
  std::string issuer;                         // OIDC issuer
  std::string client_id;
  std::string client_secret_file;             // confidential clients only; never the secret itself
  std::vector<std::string> scopes;            // empty = impact's defaults
  std::map<std::string, std::string> beacons; // name -> Beacon v2 base URL (…/api)
  std::map<std::string, std::string> drs;     // name -> DRS base URL (…/ga4gh/drs/v1)
  std::string wes;                            // WES base URL (…/ga4gh/wes/v1)
  std::string wes_engine;                     // the workflow engine to send where the WES requires one
  std::string tes;                            // TES base URL (…/ga4gh/tes/v1)
  std::string archive;                        // SDA download API base URL (the service's origin)
  std::string htsget;                         // htsget base URL (the one below which /reads and /variants are)
  std::optional<StorageConfig> storage;
  std::map<std::string, std::string> trusted_visa_issuers;  // visa iss -> jku URL
  std::string drs_resolver;                   // compact identifier resolver (identifiers.org style)
  std::map<std::string, std::string> trs;     // name -> TRS 2.x base URL (…/ga4gh/trs/v2)
  std::string cacert;                         // CA bundle (PEM) for every request of this profile; "" = the default

  // Checks every URL against impact's rules (https, or http to loopback). Throws Error(config).
  void validate() const;
};

void to_json(nlohmann::json& j, const Profile& p);

class Config {
 public:
  // Where the file is: --config, else $IMPACT_CONFIG, else $XDG_CONFIG_HOME/impact/config.toml.
  static std::filesystem::path default_path();

  // Loads the file; a missing file is an empty configuration. A malformed file throws Error(config) with
  // the line and column, and is left untouched.
  static Config load(const std::filesystem::path& path);

  // Writes the file atomically (0600, folder 0700).
  void save() const;

  // The profile to use: `requested` (--profile), else $IMPACT_PROFILE, else the default profile, else
  // the only profile. Throws Error(config) with a hint when none can be chosen or the name is unknown.
  const Profile& select(const std::optional<std::string>& requested) const;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::map<std::string, Profile>& profiles() noexcept { return profiles_; }
  const std::map<std::string, Profile>& profiles() const noexcept { return profiles_; }
  const std::string& default_profile() const noexcept { return default_; }
  void set_default_profile(std::string name) { default_ = std::move(name); }
  // Keys impact does not know, found while loading (a typo, or a newer version's setting).
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }

  // Parses configuration text; `origin` names it in error messages.
  static Config parse(std::string_view text, const std::string& origin);
  std::string serialize() const;

 private:
  std::filesystem::path path_;
  std::string default_;
  std::map<std::string, Profile> profiles_;
  std::vector<std::string> warnings_;
};

// Profile names: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64.
bool valid_profile_name(std::string_view name);

}  // namespace impact
