#include "impact/config.hpp"

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
      throw Error(ErrorKind::config, "profile '" + name + "': " + e.what(), e.hint());
    }
  };
  check(registry, "registry");
  check(issuer, "issuer");
  check(wes, "WES endpoint");
  check(drs_resolver, "DRS resolver");
  for (const auto& [n, u] : beacons) check(u, "beacon '" + n + "'");
  for (const auto& [n, u] : drs) check(u, "DRS server '" + n + "'");
  if (storage) {
    check(storage->url, "storage");
    check(storage->sts, "storage STS endpoint");
  }
  for (const auto& [iss, jku] : trusted_visa_issuers) check(jku, "jku of visa issuer '" + iss + "'");
}

void to_json(nlohmann::json& j, const Profile& p) {
  j = nlohmann::json{{"name", p.name}};
  if (!p.registry.empty()) j["registry"] = p.registry;
  if (!p.issuer.empty()) j["issuer"] = p.issuer;
  if (!p.client_id.empty()) j["client_id"] = p.client_id;
  if (!p.client_secret_file.empty()) j["client_secret_file"] = p.client_secret_file;
  if (!p.scopes.empty()) j["scopes"] = p.scopes;
  j["beacons"] = p.beacons;
  j["drs"] = p.drs;
  if (!p.wes.empty()) j["wes"] = p.wes;
  if (p.storage) {
    j["storage"] = {{"url", p.storage->url},       {"bucket", p.storage->bucket},
                    {"region", p.storage->region}, {"sts", p.storage->sts}, {"keys_file", p.storage->keys_file},
                    {"result_prefix", p.storage->result_prefix}};
  }
  j["trusted_visa_issuers"] = p.trusted_visa_issuers;
  if (!p.drs_resolver.empty()) j["drs_resolver"] = p.drs_resolver;
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
                "fix the file (impact has not changed it), or pass --config to use another");
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
                "fix the file (impact has not changed it), or pass --config to use another");
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
          if (fk == "registry") p.registry = r.str(f, fk);
          else if (fk == "issuer") p.issuer = r.str(f, fk);
          else if (fk == "client_id") p.client_id = r.str(f, fk);
          else if (fk == "client_secret_file") p.client_secret_file = r.str(f, fk);
          else if (fk == "scopes") p.scopes = r.str_list(f, fk);
          else if (fk == "beacons") p.beacons = r.str_map(f, fk);
          else if (fk == "drs") p.drs = r.str_map(f, fk);
          else if (fk == "wes") p.wes = r.str(f, fk);
          else if (fk == "drs_resolver") p.drs_resolver = r.str(f, fk);
          else if (fk == "trusted_visa_issuers") p.trusted_visa_issuers = r.str_map(f, fk);
          else if (fk == "storage") {
            const auto* st = f.as_table();
            if (!st) r.fail(f, "'storage' must be a table");
            StorageConfig s;
            for (const auto& [skey, sv] : *st) {
              const std::string sk(skey.str());
              if (sk == "url") s.url = r.str(sv, sk);
              else if (sk == "bucket") s.bucket = r.str(sv, sk);
              else if (sk == "region") s.region = r.str(sv, sk);
              else if (sk == "sts") s.sts = r.str(sv, sk);
              else if (sk == "keys_file") s.keys_file = r.str(sv, sk);
              else if (sk == "result_prefix") s.result_prefix = r.str(sv, sk);
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
    throw Error(ErrorKind::config, e.what(), "check the file's permissions, or pass --config to use another");
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
    auto put = [&](const char* k, const std::string& v) {
      if (!v.empty()) t.insert(k, v);
    };
    put("registry", p.registry);
    put("issuer", p.issuer);
    put("client_id", p.client_id);
    put("client_secret_file", p.client_secret_file);
    if (!p.scopes.empty()) {
      toml::array a;
      for (const auto& s : p.scopes) a.push_back(s);
      t.insert("scopes", a);
    }
    put("wes", p.wes);
    put("drs_resolver", p.drs_resolver);
    auto put_map = [&](const char* k, const std::map<std::string, std::string>& m) {
      if (m.empty()) return;
      toml::table mt;
      for (const auto& [mk, mv] : m) mt.insert(mk, mv);
      t.insert(k, mt);
    };
    put_map("beacons", p.beacons);
    put_map("drs", p.drs);
    put_map("trusted_visa_issuers", p.trusted_visa_issuers);
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
  if (path_.has_parent_path()) ensure_private_dir(path_.parent_path());
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
    throw Error(ErrorKind::config, "no profile is configured",
                "run: impact profile add NAME --registry URL (or with --issuer, --wes, ...)");
  } else {
    throw Error(ErrorKind::config, "several profiles are configured and none is the default",
                "run: impact profile use NAME, or pass --profile NAME");
  }
  auto it = profiles_.find(name);
  if (it == profiles_.end())
    throw Error(ErrorKind::config, "no profile named '" + name + "' (from " + source + ")",
                "run: impact profile list");
  return it->second;
}

}  // namespace impact
