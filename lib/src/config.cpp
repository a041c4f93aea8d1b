#include "impact/config.hpp"

#include <array>
#include <cstdlib>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/url.hpp"

namespace fs = std::filesystem;

namespace impact {
namespace {

// A profile's settings by name, for reading, writing and showing them in one way.
template <class Owner, class T, std::size_t N>
using Fields = std::array<std::pair<std::string_view, T Owner::*>, N>;
constexpr Fields<Profile, std::string, 11> kProfileText{{{"registry", &Profile::registry},
                                                        {"issuer", &Profile::issuer},
                                                        {"client_id", &Profile::client_id},
                                                        {"client_secret_file", &Profile::client_secret_file},
                                                        {"wes", &Profile::wes},
                                                        {"wes_engine", &Profile::wes_engine},
                                                        {"tes", &Profile::tes},
                                                        {"archive", &Profile::archive},
                                                        {"htsget", &Profile::htsget},
                                                        {"drs_resolver", &Profile::drs_resolver},
                                                        {"cacert", &Profile::cacert}}};
constexpr Fields<Profile, std::map<std::string, std::string>, 4> kProfileMaps{
    {{"beacons", &Profile::beacons}, {"drs", &Profile::drs}, {"trusted_visa_issuers", &Profile::trusted_visa_issuers},
     {"trs", &Profile::trs}}};
constexpr Fields<StorageConfig, std::string, 6> kStorageText{
    {{"url", &StorageConfig::url}, {"bucket", &StorageConfig::bucket}, {"region", &StorageConfig::region},
     {"sts", &StorageConfig::sts}, {"keys_file", &StorageConfig::keys_file}, {"result_prefix", &StorageConfig::result_prefix}}};

// The member called `key` in `fields`, or nullptr.
template <class Owner, class T, std::size_t N>
T Owner::*field(const Fields<Owner, T, N>& fields, std::string_view key) {
  for (const auto& [k, f] : fields)
    if (k == key) return f;
  return nullptr;
}

}  // namespace

bool valid_profile_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

void Profile::validate() const {
  auto check = [&](const std::string& url, const std::string& what) {
    if (url.empty()) return;
    try {
      require_allowed_url(url, what);
    } catch (const Error& e) {
      throw Error(ErrorKind::config, "profile '" + name + "': " + e.what(), e.hint()).with_remedy(e.remedy());
    }
  };
  check(registry, "registry");
  check(issuer, "issuer");
  check(wes, "WES endpoint");
  check(tes, "TES endpoint");
  check(archive, "archive");
  check(htsget, "htsget endpoint");
  check(drs_resolver, "DRS resolver");
  for (const auto& [n, u] : beacons) check(u, "beacon '" + n + "'");
  for (const auto& [n, u] : drs) check(u, "DRS server '" + n + "'");
  for (const auto& [n, u] : trs) check(u, "TRS registry '" + n + "'");
  if (storage) {
    check(storage->url, "storage");
    check(storage->sts, "storage STS endpoint");
  }
  for (const auto& [iss, jku] : trusted_visa_issuers) check(jku, "jku of visa issuer '" + iss + "'");
}

void to_json(nlohmann::json& j, const Profile& p) {
  j = nlohmann::json{{"name", p.name}};  // an object's members are written sorted by name
  for (const auto& [k, f] : kProfileText)
    if (!(p.*f).empty()) j[k] = p.*f;
  if (!p.scopes.empty()) j["scopes"] = p.scopes;
  for (const auto& [k, f] : kProfileMaps) j[k] = p.*f;
  if (p.storage) {
    j["storage"] = nlohmann::json::object();
    for (const auto& [k, f] : kStorageText) j["storage"][k] = *p.storage.*f;
  }
}

fs::path Config::default_path() {
  if (const char* v = std::getenv("IMPACT_CONFIG"); v && *v) return v;
  return config_home() / "config.toml";
}

namespace {

struct Reader {
  std::string origin;
  std::vector<std::string>& warnings;

  [[noreturn]] void fail(const toml::node& n, const std::string& what) const {
    const auto& src = n.source();
    throw Error(ErrorKind::config,
                origin + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) + ": " + what,
                "fix the file (impact has not changed it)")
        .with_remedy(Remedy::other_config);
  }
  std::string str(const toml::node& n, const std::string& key) const {
    if (auto v = n.value<std::string>()) return *v;
    fail(n, "'" + key + "' must be a string");
  }
  std::map<std::string, std::string> str_map(const toml::node& n, const std::string& key) const {
    const auto* t = n.as_table();
    if (!t) fail(n, "'" + key + "' must be a table of name = \"value\"");
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : *t) out[std::string(k.str())] = str(v, key + "." + std::string(k.str()));
    return out;
  }
  std::vector<std::string> str_list(const toml::node& n, const std::string& key) const {
    const auto* a = n.as_array();
    if (!a) fail(n, "'" + key + "' must be an array of strings");
    std::vector<std::string> out;
    for (const auto& v : *a) out.push_back(str(v, key));
    return out;
  }
  void unknown(const std::string& where, std::string_view key) const {
    warnings.push_back(origin + ": unknown setting '" + where + std::string(key) + "' (ignored)");
  }
};

}  // namespace

Config Config::parse(std::string_view text, const std::string& origin) {
  Config c;
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw Error(ErrorKind::config,
                origin + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " +
                    std::string(e.description()),
                "fix the file (impact has not changed it)")
        .with_remedy(Remedy::other_config);
  }
  Reader r{origin, c.warnings_};
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (k == "default_profile") {
      c.default_ = r.str(node, k);
    } else if (k == "profiles") {
      const auto* profiles = node.as_table();
      if (!profiles) r.fail(node, "'profiles' must be a table");
      for (const auto& [pname, pnode] : *profiles) {
        Profile p;
        p.name = std::string(pname.str());
        if (!valid_profile_name(p.name)) r.fail(pnode, "invalid profile name '" + p.name + "'");
        const auto* t = pnode.as_table();
        if (!t) r.fail(pnode, "profile '" + p.name + "' must be a table");
        const std::string where = "profiles." + p.name + ".";
        for (const auto& [fkey, f] : *t) {
          const std::string fk(fkey.str());
          if (auto text_field = field(kProfileText, fk)) p.*text_field = r.str(f, fk);
          else if (auto map_field = field(kProfileMaps, fk)) p.*map_field = r.str_map(f, fk);
          else if (fk == "scopes") p.scopes = r.str_list(f, fk);
          else if (fk == "storage") {
            const auto* st = f.as_table();
            if (!st) r.fail(f, "'storage' must be a table");
            StorageConfig s;
            for (const auto& [skey, sv] : *st) {
              const std::string sk(skey.str());
              if (auto storage_field = field(kStorageText, sk)) s.*storage_field = r.str(sv, sk);
              else r.unknown(where + "storage.", sk);
            }
            p.storage = s;
          } else {
            r.unknown(where, fk);
          }
        }
        c.profiles_[p.name] = std::move(p);
      }
    } else {
      r.unknown("", k);
    }
  }
  return c;
}

Config Config::load(const fs::path& path) {
  std::string text;
  try {
    text = read_file(path, 4u << 20);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::not_found) {
      Config c;
      c.path_ = path;
      return c;
    }
    throw Error(ErrorKind::config, e.what(), "check the file's permissions").with_remedy(Remedy::other_config);
  }
  Config c = parse(text, path.string());
  c.path_ = path;
  return c;
}

std::string Config::serialize() const {
  toml::table root;
  if (!default_.empty()) root.insert("default_profile", default_);
  toml::table profiles;
  for (const auto& [name, p] : profiles_) {
    toml::table t;
    for (const auto& [k, f] : kProfileText)
      if (!(p.*f).empty()) t.insert(k, p.*f);
    if (!p.scopes.empty()) {
      toml::array a;
      for (const auto& s : p.scopes) a.push_back(s);
      t.insert("scopes", a);
    }
    for (const auto& [k, f] : kProfileMaps) {
      if ((p.*f).empty()) continue;
      toml::table mt;
      for (const auto& [mk, mv] : p.*f) mt.insert(mk, mv);
      t.insert(k, mt);
    }
    if (p.storage) {
      toml::table st;
      st.insert("url", p.storage->url);
      if (!p.storage->bucket.empty()) st.insert("bucket", p.storage->bucket);
      st.insert("region", p.storage->region);
      if (!p.storage->sts.empty()) st.insert("sts", p.storage->sts);
      if (!p.storage->keys_file.empty()) st.insert("keys_file", p.storage->keys_file);
      st.insert("result_prefix", p.storage->result_prefix);
      t.insert("storage", st);
    }
    profiles.insert(name, t);
  }
  if (!profiles.empty()) root.insert("profiles", profiles);
  std::ostringstream out;
  out << "# impact configuration: see impact-config(5). `impact profile` rewrites this file;\n"
         "# comments you add are not kept.\n\n"
      << root << "\n";
  return out.str();
}

void Config::save() const {
  // The folder may be one the user named (--config): create what is missing, change nothing that exists.
  if (path_.has_parent_path()) create_private_dirs(path_.parent_path());
  write_file_atomic(path_, serialize(), 0600);
}

const Profile& Config::select(const std::optional<std::string>& requested) const {
  std::string name;
  std::string source;
  if (requested && !requested->empty()) {
    name = *requested;
    source = "--profile";
  } else if (const char* env = std::getenv("IMPACT_PROFILE"); env && *env) {
    name = env;
    source = "IMPACT_PROFILE";
  } else if (!default_.empty()) {
    name = default_;
    source = "default_profile in " + path_.string();
  } else if (profiles_.size() == 1) {
    return profiles_.begin()->second;
  } else if (profiles_.empty()) {
    throw Error(ErrorKind::config, "no profile is configured").with_remedy(Remedy::profile_add);
  } else {
    throw Error(ErrorKind::config, "several profiles are configured and none is the default")
        .with_remedy(Remedy::profile_choose);
  }
  auto it = profiles_.find(name);
  if (it == profiles_.end())
    throw Error(ErrorKind::config, "no profile named '" + name + "' (from " + source + ")").with_remedy(Remedy::profile_list);
  return it->second;
}

}  // namespace impact
