// impact keys generate|list|show|import|remove: the Crypt4GH key store.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/crypt4gh.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "passphrase.hpp"

namespace impact::cli {
namespace c4gh = crypt4gh;
namespace {

nlohmann::json key_json(const c4gh::StoredKey& k) {
  return {{"name", k.name},
          {"fingerprint", c4gh::fingerprint(k.public_key)},
          {"public_key", c4gh::base64_public_key(k.public_key)},
          {"private", k.has_secret},
          {"kdf", k.has_secret ? nlohmann::json(k.info.kdf) : nlohmann::json(nullptr)},
          {"public_key_file", (c4gh::key_dir() / (k.name + ".pub")).string()},
          {"private_key_file", k.has_secret ? nlohmann::json((c4gh::key_dir() / (k.name + ".sec")).string())
                                            : nlohmann::json(nullptr)}};
}

std::string protection(const c4gh::StoredKey& k) {
  if (!k.has_secret) return "public only";
  return k.info.encrypted() ? "passphrase (" + k.info.kdf + ")" : "none";
}

void generate(Context& ctx, const std::string& name, bool no_passphrase, const std::string& comment) {
  if (!c4gh::valid_key_name(name))
    throw Error(ErrorKind::usage, "'" + name + "' is not a valid key name", "use letters, digits, '-', '_' and '.'");
  try {
    c4gh::find_key(name);
    throw Error(ErrorKind::usage, "a key named '" + name + "' exists already", "run: impact keys remove " + name);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::not_found) throw;
  }
  std::string phrase = no_passphrase ? std::string() : new_passphrase();
  c4gh::KeyPair k = c4gh::generate_key_pair();
  std::string pem = c4gh::format_private_key(k, phrase, comment);
  OPENSSL_cleanse(phrase.data(), phrase.size());
  c4gh::store_key(name, pem, k.public_key);
  OPENSSL_cleanse(pem.data(), pem.size());
  auto stored = c4gh::find_key(name);
  if (ctx.json()) {
    ctx.term().print_json(key_json(stored));
    return;
  }
  ctx.term().note(fmt::format("Created Crypt4GH key '{}' ({}), protection: {}", name,
                              c4gh::fingerprint(k.public_key), protection(stored)));
  ctx.term().note("Public key (give it to data providers): " + (c4gh::key_dir() / (name + ".pub")).string());
}

void list(Context& ctx) {
  auto keys = c4gh::list_keys();
  if (ctx.json()) {
    auto arr = nlohmann::json::array();
    for (const auto& k : keys) arr.push_back(key_json(k));
    ctx.term().print_json({{"keys", arr}}, false, "keys");
    return;
  }
  if (keys.empty()) {
    ctx.term().note("No Crypt4GH keys yet. Create one: impact keys generate");
    return;
  }
  Table t{{"NAME", "FINGERPRINT", "PROTECTION", "PUBLIC KEY"}, {}};
  for (const auto& k : keys)
    t.rows.push_back({k.name, c4gh::fingerprint(k.public_key), protection(k), c4gh::base64_public_key(k.public_key)});
  ctx.term().print_table(t, ctx.format());
}

void show(Context& ctx, const std::string& name, bool pem) {
  auto k = c4gh::find_key(name);
  if (pem) {
    ctx.term().out() << c4gh::format_public_key(k.public_key);
    return;
  }
  if (ctx.json()) {
    ctx.term().print_json(key_json(k));
    return;
  }
  Table t{{"KEY", "VALUE"}, {}};
  t.rows.push_back({"name", k.name});
  t.rows.push_back({"fingerprint", c4gh::fingerprint(k.public_key)});
  t.rows.push_back({"public key", c4gh::base64_public_key(k.public_key)});
  t.rows.push_back({"protection", protection(k)});
  t.rows.push_back({"public key file", (c4gh::key_dir() / (k.name + ".pub")).string()});
  if (k.has_secret) t.rows.push_back({"private key file", (c4gh::key_dir() / (k.name + ".sec")).string()});
  if (!k.info.comment.empty()) t.rows.push_back({"comment", k.info.comment});
  ctx.term().print_table(t, ctx.format());
}

void import_key(Context& ctx, const std::string& file, std::string name) {
  if (name.empty()) {
    name = std::filesystem::path(file).stem().string();
    if (!c4gh::valid_key_name(name))
      throw Error(ErrorKind::usage, "cannot name the key after '" + file + "'", "pass --name NAME");
  }
  std::string text = read_file(file, 64u << 10);
  struct Wipe { std::string& s; ~Wipe() { OPENSSL_cleanse(s.data(), s.size()); } } wipe{text};
  bool is_private = text.find("PRIVATE KEY") != std::string::npos;
  c4gh::Key pub{};
  if (is_private) {
    // Opened once to check the passphrase and find the public key; stored as it was (its own protection).
    c4gh::KeyPair k = c4gh::parse_private_key(text, passphrase_source("the key in " + file));
    pub = k.public_key;
    c4gh::store_key(name, text, pub);
  } else {
    pub = c4gh::parse_public_key(text);
    c4gh::store_key(name, "", pub);
  }
  auto stored = c4gh::find_key(name);
  if (ctx.json()) {
    ctx.term().print_json(key_json(stored));
    return;
  }
  ctx.term().note(fmt::format("Imported {} key '{}' ({})", is_private ? "private" : "public", name,
                              c4gh::fingerprint(pub)));
}

}  // namespace

void register_keys(CLI::App& app, Context& ctx) {
  auto* grp = add_command(app, "keys");
  grp->require_subcommand(1);
  grp->footer("Keys live in $XDG_DATA_HOME/impact/keys (0600 files in a 0700 folder). A passphrase comes from\n"
              "IMPACT_C4GH_PASSPHRASE or a prompt on the terminal, never from the command line.\n\n"
              "Examples:\n  impact keys generate\n  impact keys show --pem > my-key.pub\n  impact keys list --json");

  struct GenOptions { std::string name = "default"; bool no_passphrase = false; std::string comment; };
  auto g = std::make_shared<GenOptions>();
  auto* gen = grp->add_subcommand("generate", "Create a key pair (c4gh-v1, passphrase-protected with scrypt)");
  gen->add_option("name", g->name, "Key name (default: default)");
  gen->add_flag("--no-passphrase", g->no_passphrase, "Store the private key unprotected");
  gen->add_option("--comment", g->comment, "A comment stored in the private key");
  gen->footer("Examples:\n  impact keys generate\n  impact keys generate work --comment 'lab laptop'\n"
              "  IMPACT_C4GH_PASSPHRASE=... impact keys generate ci");
  gen->callback(ctx.action([&ctx, g] { generate(ctx, g->name, g->no_passphrase, g->comment); }));

  auto* ls = grp->add_subcommand("list", "List the stored keys");
  ls->footer("Examples:\n  impact keys list\n  impact keys list --json");
  ls->callback(ctx.action([&ctx] { list(ctx); }));

  auto show_name = std::make_shared<std::string>("default");
  auto show_pem = std::make_shared<bool>(false);
  auto* sh = grp->add_subcommand("show", "Show a key: fingerprint, public key, protection");
  sh->add_option("name", *show_name, "Key name (default: default)");
  sh->add_flag("--pem", *show_pem, "Print only the public key, in the Crypt4GH PEM form");
  sh->footer("Examples:\n  impact keys show\n  impact keys show work --pem > work.pub");
  sh->callback(ctx.action([&ctx, show_name, show_pem] { show(ctx, *show_name, *show_pem); }));

  auto imp_file = std::make_shared<std::string>();
  auto imp_name = std::make_shared<std::string>();
  auto* imp = grp->add_subcommand("import", "Store a Crypt4GH private or public key file");
  imp->add_option("file", *imp_file, "Key file (c4gh-v1 private key, or a public key)")->required();
  imp->add_option("--name", *imp_name, "Name to store it under (default: the file name without extension)");
  imp->footer("Examples:\n  impact keys import ~/.c4gh/key --name ega\n  impact keys import alice.pub");
  imp->callback(ctx.action([&ctx, imp_file, imp_name] { import_key(ctx, *imp_file, *imp_name); }));

  auto rm_name = std::make_shared<std::string>();
  auto* rm = grp->add_subcommand("remove", "Delete a stored key (its private key is gone for good)");
  rm->add_option("name", *rm_name, "Key name")->required();
  rm->footer("Examples:\n  impact keys remove old-key");
  rm->callback(ctx.action([&ctx, rm_name] {
    c4gh::remove_key(*rm_name);
    if (!ctx.json()) ctx.term().note("Removed key '" + *rm_name + "'");
  }));
}

}  // namespace impact::cli
