// impact profile add|list|show|use|remove
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/registry.hpp"
#include "impact/session.hpp"
#include "impact/url.hpp"

namespace impact::cli {
namespace {

struct AddOptions {
  std::string name;
  std::string registry, issuer, client_id, client_secret_file, wes, wes_engine, tes, archive, htsget, storage, bucket, sts, region, resolver, keys_file;
  std::string cacert;
  std::vector<std::string> scopes, beacons, drs, trust;
  std::vector<std::string> trs;
  bool make_default = false;
  bool force = false;
};

// "NAME=URL" or "URL" (named after its host and port).
std::pair<std::string, std::string> named_url(const std::string& arg, const char* flag) {
  auto eq = arg.find('=');
  auto scheme = arg.find("://");
  if (eq != std::string::npos && (scheme == std::string::npos || eq < scheme)) {
    std::string name = arg.substr(0, eq);
    if (!valid_profile_name(name))
      throw Error(ErrorKind::usage, std::string(flag) + ": invalid name '" + name + "'",
                  "names use letters, digits, '-', '_' and '.'");
    return {name, arg.substr(eq + 1)};
  }
  auto u = Url::parse(arg);
  if (!u) throw Error(ErrorKind::usage, std::string(flag) + ": not a URL: " + arg, "give NAME=URL or a full URL");
  std::string name = u->host;
  if (u->port != 443 && u->port != 80) name += "-" + std::to_string(u->port);
  return {name, arg};
}

void add(Context& ctx, const AddOptions& o) {
  if (!valid_profile_name(o.name))
    throw Error(ErrorKind::usage, "invalid profile name '" + o.name + "'",
                "use letters, digits, '-', '_' and '.', starting with a letter or digit");
  Config config = ctx.load_config(/*to_create=*/true);
  if (config.profiles().count(o.name) && !o.force)
    throw Error(ErrorKind::usage, "a profile named '" + o.name + "' exists already",
                "pass --force to replace it, or: impact profile remove " + o.name);

  Profile p;
  p.name = o.name;
  std::vector<std::string> notes;
  // The new profile's CA bundle (not the profile in use's) for the registry's discovery; --cacert before the
  // command still wins, for this call alone.
  const std::string cacert = o.cacert.empty() ? std::string() : std::filesystem::absolute(o.cacert).string();
  ctx.set_profile_cacert(cacert);
  if (!o.registry.empty()) {
    auto client = ctx.client();
    auto d = discover(client, o.registry, o.name);
    p = std::move(d.profile);
    notes = std::move(d.notes);
  }
  // Explicit flags refine what the registry said.
  if (!o.issuer.empty()) p.issuer = o.issuer;
  if (!o.client_id.empty()) p.client_id = o.client_id;
  if (!o.client_secret_file.empty()) p.client_secret_file = std::filesystem::absolute(o.client_secret_file).string();
  if (!o.scopes.empty()) p.scopes = o.scopes;
  if (!o.wes.empty()) p.wes = o.wes;
  if (!o.wes_engine.empty()) p.wes_engine = o.wes_engine;
  if (!o.tes.empty()) p.tes = o.tes;
  if (!o.archive.empty()) p.archive = o.archive;
  if (!o.htsget.empty()) p.htsget = htsget::base_url_of(o.htsget);  // …/reads or …/variants: the service's base
  if (!o.resolver.empty()) p.drs_resolver = o.resolver;
  if (!cacert.empty()) p.cacert = cacert;
  for (const auto& b : o.beacons) {
    auto [n, u] = named_url(b, "--beacon");
    p.beacons[n] = u;
  }
  for (const auto& d : o.drs) {
    auto [n, u] = named_url(d, "--drs");
    p.drs[n] = u;
  }
  for (const auto& t : o.trs) {
    auto [n, u] = named_url(t, "--trs");
    p.trs[n] = u;
  }
  for (const auto& t : o.trust) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == t.size())
      throw Error(ErrorKind::usage, "--trust-visa-issuer wants ISSUER=JKU_URL, got '" + t + "'");
    p.trusted_visa_issuers[t.substr(0, eq)] = t.substr(eq + 1);
  }
  if (!o.storage.empty() || !o.bucket.empty() || !o.sts.empty() || !o.region.empty() || !o.keys_file.empty()) {
    if (!p.storage) p.storage = StorageConfig{};
    if (!o.storage.empty()) p.storage->url = o.storage;
    if (!o.bucket.empty()) p.storage->bucket = o.bucket;
    if (!o.sts.empty()) p.storage->sts = o.sts;
    if (!o.keys_file.empty()) p.storage->keys_file = std::filesystem::absolute(o.keys_file).string();
    if (!o.region.empty()) p.storage->region = o.region;
    if (p.storage->url.empty())
      throw Error(ErrorKind::usage, "--bucket, --sts and --region need --storage URL (or a registry that lists storage)");
  }
  if (!p.issuer.empty() && p.client_id.empty()) p.client_id = "impact-cli";
  if (p.registry.empty() && p.issuer.empty() && p.wes.empty() && p.tes.empty() && p.archive.empty() && p.htsget.empty() && p.beacons.empty() && p.drs.empty() &&
      !p.storage && p.trs.empty())
    throw Error(ErrorKind::usage, "the profile would have no services",
                "give --registry URL, or services with --issuer, --beacon, --drs, --wes, --tes, --archive, --htsget, --storage, --trs");
  try {
    p.validate();
  } catch (const Error& e) {
    throw Error(ErrorKind::usage, e.what(), e.hint()).with_remedy(e.remedy());
  }

  config.profiles()[o.name] = p;
  const bool becomes_default = o.make_default || config.default_profile().empty();
  if (becomes_default) config.set_default_profile(o.name);
  config.save();

  for (const auto& n : notes) ctx.term().warn(n);
  if (ctx.json()) {
    ctx.term().print_json(p);
    return;
  }
  const std::size_t services = p.beacons.size() + p.drs.size() + p.trs.size() + (p.wes.empty() ? 0 : 1) + (p.tes.empty() ? 0 : 1) + (p.archive.empty() ? 0 : 1) + (p.htsget.empty() ? 0 : 1) + (p.storage ? 1 : 0) +
                               (p.issuer.empty() ? 0 : 1);
  ctx.term().note("Saved profile '" + o.name + "' with " + std::to_string(services) + " service(s) to " +
                  config.path().string() + (becomes_default ? " (default)" : ""));
  // The next commands as they work when pasted: the new profile is the one they use only when it is the default.
  const std::string impact = becomes_default ? "impact" : "impact --profile " + o.name;
  ctx.term().note("Next: " + impact + " doctor" + (p.issuer.empty() ? "" : ", then " + impact + " login"));
}

Table profile_table(const Profile& p) {
  Table t{{"KEY", "VALUE"}, {}};
  auto row = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) t.rows.push_back({k, v});
  };
  row("name", p.name);
  row("registry", p.registry);
  row("issuer", p.issuer);
  row("client_id", p.client_id);
  row("client_secret_file", p.client_secret_file);
  if (!p.scopes.empty()) {
    std::string s;
    for (const auto& x : p.scopes) s += (s.empty() ? "" : " ") + x;
    row("scopes", s);
  }
  for (const auto& [n, u] : p.beacons) row("beacon." + n, u);
  for (const auto& [n, u] : p.drs) row("drs." + n, u);
  row("wes", p.wes);
  row("wes_engine", p.wes_engine);
  for (const auto& [n, u] : p.trs) row("trs." + n, u);
  row("tes", p.tes);
  row("archive", p.archive);
  row("htsget", p.htsget);
  if (p.storage) {
    row("storage.url", p.storage->url);
    row("storage.bucket", p.storage->bucket);
    row("storage.region", p.storage->region);
    row("storage.sts", p.storage->sts);
    row("storage.keys_file", p.storage->keys_file);
    row("storage.result_prefix", p.storage->result_prefix);
  }
  for (const auto& [iss, jku] : p.trusted_visa_issuers) row("trusted_visa_issuer." + iss, jku);
  row("drs_resolver", p.drs_resolver);
  row("cacert", p.cacert);
  return t;
}

void list(Context& ctx) {
  Config config = ctx.load_config();
  if (ctx.json()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [name, p] : config.profiles()) {
      nlohmann::json j = p;
      j["default"] = name == config.default_profile();
      arr.push_back(j);
    }
    ctx.term().print_json({{"profiles", arr}}, false, "profiles");
    return;
  }
  if (config.profiles().empty()) {
    ctx.term().note("No profiles yet. Add one: impact profile add NAME --registry URL");
    return;
  }
  Table t{{"NAME", "DEFAULT", "ISSUER", "BEACONS", "DRS", "WES", "STORAGE"}, {}};
  for (const auto& [name, p] : config.profiles()) {
    t.rows.push_back({name, name == config.default_profile() ? "*" : "", p.issuer, std::to_string(p.beacons.size()),
                      std::to_string(p.drs.size()), p.wes.empty() ? "-" : "yes", p.storage ? "yes" : "-"});
  }
  ctx.term().print_table(t, ctx.format());
}

void show(Context& ctx, const std::string& name) {
  Config config = ctx.load_config();
  const Profile* p = nullptr;
  if (name.empty()) {
    p = &ctx.profile(config);
  } else {
    auto it = config.profiles().find(name);
    if (it == config.profiles().end())
      throw Error(ErrorKind::not_found, "no profile named '" + name + "'", "run: impact profile list");
    p = &it->second;
  }
  if (ctx.json()) {
    nlohmann::json j = *p;
    j["default"] = p->name == config.default_profile();
    ctx.term().print_json(j);
    return;
  }
  ctx.term().print_table(profile_table(*p), ctx.format());
}

struct SetOptions {
  std::string name, cacert, wes, tes, archive, htsget;
  bool no_cacert = false;
};

// Changes settings of an existing profile, leaving the rest as it is.
void set(Context& ctx, const SetOptions& o) {
  Config config = ctx.load_config();
  auto it = config.profiles().find(o.name);
  if (it == config.profiles().end())
    throw Error(ErrorKind::not_found, "no profile named '" + o.name + "'", "run: impact profile list");
  const bool services = !o.wes.empty() || !o.tes.empty() || !o.archive.empty() || !o.htsget.empty();
  const bool ca = !o.cacert.empty() || o.no_cacert;
  if (!services && !ca)
    throw Error(ErrorKind::usage, "nothing to set", "give --wes, --tes, --archive or --htsget URL, or --cacert FILE (or --no-cacert)");
  Profile& p = it->second;
  if (ca) p.cacert = o.no_cacert ? std::string() : std::filesystem::absolute(o.cacert).string();
  if (!o.wes.empty()) p.wes = o.wes;
  if (!o.tes.empty()) p.tes = o.tes;
  if (!o.archive.empty()) p.archive = o.archive;
  if (!o.htsget.empty()) p.htsget = htsget::base_url_of(o.htsget);
  p.validate();
  config.save();
  if (ctx.json()) {
    ctx.term().print_json(p);
    return;
  }
  if (services) ctx.term().note("Profile '" + o.name + "' updated; its other settings are as they were");
  if (ca)
    ctx.term().note(p.cacert.empty() ? "Profile '" + o.name + "' uses the default CA store again"
                                     : "Profile '" + o.name + "' trusts the CAs in " + p.cacert + " for every request");
}

void use(Context& ctx, const std::string& name) {
  Config config = ctx.load_config();
  if (!config.profiles().count(name))
    throw Error(ErrorKind::not_found, "no profile named '" + name + "'", "run: impact profile list");
  config.set_default_profile(name);
  config.save();
  if (ctx.json()) ctx.term().print_json({{"default_profile", name}});
  else ctx.term().note("Default profile is now '" + name + "'");
}

void remove(Context& ctx, const std::string& name) {
  Config config = ctx.load_config();
  auto it = config.profiles().find(name);
  if (it == config.profiles().end())
    throw Error(ErrorKind::not_found, "no profile named '" + name + "'", "run: impact profile list");
  // The login goes with the profile (revoked where the provider allows, as `impact logout` does): a new
  // profile of the same name must not inherit it.
  std::string warning;
  const bool logged_out = auth::Session(it->second, ctx.http_options(it->second)).logout(warning);
  if (!warning.empty()) ctx.term().warn(name + ": " + warning);
  config.profiles().erase(it);
  if (config.default_profile() == name) config.set_default_profile("");
  config.save();
  if (ctx.json()) ctx.term().print_json({{"removed", name}, {"logged_out", logged_out}});
  else ctx.term().note("Removed profile '" + name + "'" + (logged_out ? " and its login" : ""));
}

}  // namespace

void register_profile(CLI::App& app, Context& ctx) {
  auto* grp = add_command(app, "profile");
  grp->require_subcommand(1);
  grp->footer(
      "Examples:\n"
      "  impact profile add local --registry http://127.0.0.1:18000\n"
      "  impact profile add ega --issuer https://login.example.org/realms/x --beacon https://beacon.example.org/api\n"
      "  impact profile use local");

  auto o = std::make_shared<AddOptions>();
  auto* add_cmd = grp->add_subcommand("add", "Add a profile, from a GA4GH service registry and/or explicit URLs");
  add_cmd->add_option("name", o->name, "Profile name")->required();
  add_cmd->add_option("--registry", o->registry, "GA4GH Service Registry to discover the services from")
      ->group("Discovery");
  add_cmd->add_option("--issuer", o->issuer, "OIDC issuer URL")->group("Identity");
  add_cmd->add_option("--client-id", o->client_id, "OIDC client id (default: impact-cli)")->group("Identity");
  add_cmd->add_option("--client-secret-file", o->client_secret_file,
                      "File holding the secret of a confidential client (the secret never goes in argv)")
      ->check(CLI::ExistingFile)
      ->group("Identity");
  add_cmd->add_option("--scope", o->scopes, "Scope to request (repeatable; default: openid offline_access ga4gh_passport_v1)")
      ->group("Identity");
  add_cmd->add_option("--trust-visa-issuer", o->trust, "Trust visas from ISSUER whose keys are at JKU_URL (ISSUER=JKU_URL)")
      ->group("Identity");
  add_cmd->add_option("--beacon", o->beacons, "Beacon v2 API base URL, or NAME=URL (repeatable)")->group("Services");
  add_cmd->add_option("--drs", o->drs, "DRS API base URL, or NAME=URL (repeatable)")->group("Services");
  add_cmd->add_option("--drs-resolver", o->resolver, "Resolver for compact drs://prefix:accession ids")->group("Services");
  add_cmd->add_option("--wes", o->wes, "WES API base URL (…/ga4gh/wes/v1)")->group("Services");
  add_cmd->add_option("--wes-engine", o->wes_engine, "Workflow engine to send where the WES requires one (e.g. cwltool)")
      ->group("Services");
  add_cmd->add_option("--trs", o->trs, "GA4GH TRS registry base URL (…/ga4gh/trs/v2), or NAME=URL (repeatable)")
      ->group("Services");
  add_cmd->add_option("--tes", o->tes, "TES API base URL (…/ga4gh/tes/v1)")->group("Services");
  add_cmd->add_option("--archive", o->archive, "SDA download API URL of a GDI / Federated EGA archive (its origin)")
      ->group("Services");
  add_cmd->add_option("--htsget", o->htsget, "GA4GH htsget base URL (the one below which /reads and /variants are)")->group("Services");
  add_cmd->add_option("--storage", o->storage, "S3-compatible endpoint URL")->group("Storage");
  add_cmd->add_option("--bucket", o->bucket, "Results bucket")->group("Storage");
  add_cmd->add_option("--sts", o->sts, "STS endpoint for temporary credentials (AssumeRoleWithWebIdentity)")->group("Storage");
  add_cmd->add_option("--storage-keys-file", o->keys_file,
                      "File with a static access key id and secret key, one per line (mode 0600; never the keys in argv)")
      ->check(CLI::ExistingFile)
      ->group("Storage");
  add_cmd->add_option("--region", o->region, "S3 region (default: us-east-1)")->group("Storage");
  add_cmd->add_option("--cacert", o->cacert,
                      "CA bundle (PEM) to trust for every request of this profile, e.g. a private CA (instead of the "
                      "system's store; --cacert before the command still wins)")
      ->check(CLI::ExistingFile)
      ->group("Services");
  add_cmd->add_flag("--default", o->make_default, "Make it the default profile");
  add_cmd->add_flag("--force", o->force, "Replace a profile of the same name");
  add_cmd->footer("Examples:\n  impact profile add local --registry http://127.0.0.1:18000\n"
                  "  impact profile add node --issuer https://id.example.org --wes https://wes.example.org/ga4gh/wes/v1");
  add_cmd->callback(ctx.action([&ctx, o] { add(ctx, *o); }));

  auto* list_cmd = grp->add_subcommand("list", "List profiles");
  list_cmd->alias("ls");
  list_cmd->footer("Examples:\n  impact profile list\n  impact --json profile list");
  list_cmd->callback(ctx.action([&ctx] { list(ctx); }));

  auto show_name = std::make_shared<std::string>();
  auto* show_cmd = grp->add_subcommand("show", "Show a profile (default: the one in use)");
  show_cmd->add_option("name", *show_name, "Profile name");
  show_cmd->footer("Examples:\n  impact profile show\n  impact profile show ega --json");
  show_cmd->callback(ctx.action([&ctx, show_name] { show(ctx, *show_name); }));

  auto so = std::make_shared<SetOptions>();
  auto* set_cmd = grp->add_subcommand("set", "Change settings of a profile, keeping the others");
  set_cmd->add_option("name", so->name, "Profile name")->required();
  auto* set_ca = set_cmd->add_option("--cacert", so->cacert, "CA bundle (PEM) to trust for every request of this profile")
                     ->check(CLI::ExistingFile);
  set_cmd->add_flag("--no-cacert", so->no_cacert, "Use the default CA store again")->excludes(set_ca);
  set_cmd->add_option("--wes", so->wes, "WES API base URL (…/ga4gh/wes/v1)")->group("Services");
  set_cmd->add_option("--tes", so->tes, "TES API base URL (…/ga4gh/tes/v1)")->group("Services");
  set_cmd->add_option("--archive", so->archive, "SDA download API URL of an archive (its origin)")->group("Services");
  set_cmd->add_option("--htsget", so->htsget, "GA4GH htsget base URL (the one below which /reads and /variants are)")
      ->group("Services");
  set_cmd->footer("Examples:\n  impact profile set node --cacert /etc/pki/node-ca.pem\n"
                  "  impact profile set node --htsget https://htsget.example.org");
  set_cmd->callback(ctx.action([&ctx, so] { set(ctx, *so); }));

  auto use_name = std::make_shared<std::string>();
  auto* use_cmd = grp->add_subcommand("use", "Make a profile the default");
  use_cmd->add_option("name", *use_name, "Profile name")->required();
  use_cmd->footer("Examples:\n  impact profile use local\n  impact --profile ega search datasets   # one command on another profile");
  use_cmd->callback(ctx.action([&ctx, use_name] { use(ctx, *use_name); }));

  auto rm_name = std::make_shared<std::string>();
  auto* rm_cmd = grp->add_subcommand("remove", "Remove a profile");
  rm_cmd->alias("rm");
  rm_cmd->add_option("name", *rm_name, "Profile name")->required();
  rm_cmd->footer("Examples:\n  impact profile remove old-node\n  impact profile rm ega --json");
  rm_cmd->callback(ctx.action([&ctx, rm_name] { remove(ctx, *rm_name); }));
}

}  // namespace impact::cli
