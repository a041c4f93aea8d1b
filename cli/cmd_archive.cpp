// impact archive datasets | files DATASET [--prefix P] | download DATASET [PATH|--prefix P]... [-o DIR]
//   [--keep-encrypted] [--parallel N] [--key NAME|FILE]: the download API of a NeIC Sensitive Data Archive
//   (GDI / Federated EGA nodes), files decrypted on the fly with the user's Crypt4GH key.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "outcome.hpp"
#include "passphrase.hpp"
#include "transfer_progress.hpp"
#include "impact/archive.hpp"
#include "impact/credentials.hpp"
#include "impact/error.hpp"

namespace impact::cli {
namespace {

struct ArchiveOptions {
  std::string dataset, prefix, dest = ".", key, part_size;
  std::vector<std::string> paths, prefixes;
  std::size_t parallel = archive::DownloadOptions{}.parallel;
  bool keep_encrypted = false;
};

struct ArchiveSession {
  Config config;
  http::Client http;
  std::unique_ptr<archive::Client> client;
};

// The profile's archive, with the user's token when the profile has a login; asked for on every request, so
// a long download gets it refreshed.
std::unique_ptr<ArchiveSession> connect(Context& ctx) {
  auto s = std::make_unique<ArchiveSession>(ArchiveSession{ctx.load_config(), ctx.client(), nullptr});
  const Profile& p = ctx.profile(s->config);
  if (p.archive.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no archive (SDA download service)",
                "run: impact profile set " + p.name + " --archive URL");
  const std::string url = p.archive;
  archive::TokenFn token;
  if (auth::Credentials* creds = ctx.login_if_any(p))
    token = [creds, url](std::chrono::seconds min_valid) { return creds->bearer_token(url, min_valid); };
  s->client = std::make_unique<archive::Client>(s->http, url, std::move(token));
  return s;
}

void datasets(Context& ctx) {
  auto s = connect(ctx);
  const auto list = s->client->datasets();
  if (ctx.json()) {
    ctx.term().print_json({{"api", archive::to_string(s->client->api())}, {"datasets", list}});
    return;
  }
  if (list.empty()) {
    ctx.term().note("the archive grants you no dataset (see: impact passport)");
    return;
  }
  Table t{{"DATASET"}, {}};
  for (const auto& d : list) t.rows.push_back({d});
  ctx.term().print_table(t, ctx.format());
}

std::string checksum_text(const archive::File& f) {
  return f.checksums.empty() ? std::string("-") : f.checksums.front().type + ":" + f.checksums.front().value;
}

void files(Context& ctx, const ArchiveOptions& o) {
  auto s = connect(ctx);
  const auto list = s->client->files(o.dataset, o.prefix);
  if (ctx.json()) {
    ctx.term().print_json({{"dataset", o.dataset}, {"files", list}});
    return;
  }
  if (list.empty()) {
    ctx.term().note(o.prefix.empty() ? "the dataset has no files" : "no file of the dataset is under " + o.prefix);
    return;
  }
  const bool tty = ctx.format() == Format::table;
  Table t{{"PATH", "SIZE", "CHECKSUM", "FILE_ID"}, {}};
  for (const auto& f : list)
    t.rows.push_back({f.path, tty ? human_bytes(static_cast<double>(f.decrypted_size)) : std::to_string(f.decrypted_size),
                      checksum_text(f), f.id});
  ctx.term().print_table(t, ctx.format());
}

void download(Context& ctx, const ArchiveOptions& o) {
  auto s = connect(ctx);
  archive::Selection sel{o.paths, o.prefixes};
  const auto chosen = s->client->select(o.dataset, sel);
  if (chosen.empty()) {
    if (ctx.json()) ctx.term().print_json({{"destination", o.dest}, {"dataset", o.dataset}, {"files", nlohmann::json::array()}});
    else ctx.term().note("the dataset has no files");
    return;
  }
  const std::string key_name = o.key.empty() ? default_key_name() : o.key;
  const crypt4gh::KeyPair key = crypt4gh::load_private_key(key_name, passphrase_source("Crypt4GH key '" + key_name + "'"));
  archive::DownloadOptions opt;
  opt.dest = o.dest;
  opt.parallel = o.parallel;
  opt.keep_encrypted = o.keep_encrypted;
  if (!o.part_size.empty()) opt.part_size = parse_size(o.part_size);
  TransferProgress progress(ctx.term());
  auto results = archive::download(*s->client, o.dataset, chosen, key, opt, &progress);
  progress.finish();

  nlohmann::json out = nlohmann::json::array();
  Table t{{"STATUS", "PATH", "SIZE", "VERIFIED"}, {}};
  Outcome outcome(ctx, "files");
  for (const auto& r : results) {
    nlohmann::json j = r;
    const std::string shown = (std::filesystem::path(o.dest) / r.path).string();
    if (r.status == transfer::Result::Status::failed) {
      const std::string what = r.error.find(r.id) == std::string::npos ? r.id + ": " + r.error : r.error;
      auto f = outcome.failed({{"path", r.path}, {"fileId", r.file_id}}, Error(r.error_kind, what, r.hint));
      j["error"] = f["error"];
      j["kind"] = f["kind"];
      j["hint"] = f["hint"];
    } else {
      outcome.succeeded();
      t.rows.push_back({std::string(transfer::to_string(r.status)), shown,
                        ctx.format() == Format::table ? human_bytes(static_cast<double>(r.size)) : std::to_string(r.size),
                        r.verified});
    }
    out.push_back(std::move(j));
  }
  if (ctx.json()) ctx.term().print_json({{"destination", o.dest}, {"dataset", o.dataset}, {"encrypted", o.keep_encrypted}, {"files", out}});
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

}  // namespace

void register_archive(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ArchiveOptions>();
  auto* cmd = add_command(app, "archive");
  cmd->require_subcommand(1);
  cmd->footer("Examples:\n  impact archive datasets\n  impact archive files EGAD00001000001 --prefix samples/\n"
              "  impact archive download EGAD00001000001 --prefix samples/ -o data/");

  auto* ds = cmd->add_subcommand("datasets", "List the datasets your passport grants");
  ds->footer("Examples:\n  impact archive datasets\n  impact archive datasets --json");
  ds->callback(ctx.action([&ctx] { datasets(ctx); }));

  auto* fl = cmd->add_subcommand("files", "List the files of a dataset: path, plaintext size, checksum, file id");
  fl->add_option("dataset", o->dataset, "Dataset id (see: impact archive datasets)")->required();
  fl->add_option("--prefix", o->prefix, "Only files whose path starts with this (samples/ for a folder)");
  fl->footer("Examples:\n  impact archive files EGAD00001000001\n  impact archive files EGAD00001000001 --prefix samples/ --json");
  fl->callback(ctx.action([&ctx, o] { files(ctx, *o); }));

  auto* dl = cmd->add_subcommand("download", "Download files of a dataset, decrypted with your Crypt4GH key and verified");
  dl->add_option("dataset", o->dataset, "Dataset id")->required();
  dl->add_option("path", o->paths, "Files by their path in the dataset (default: all of them)");
  dl->add_option("--prefix", o->prefixes, "Also every file under this path prefix (repeatable)");
  dl->add_option("-o,--output", o->dest, "Folder to write into (default: the current folder)");
  dl->add_option("-k,--key", o->key, "Private key: a stored key's NAME or a key FILE (default: the only, or 'default')");
  dl->add_flag("--keep-encrypted", o->keep_encrypted,
               "Write the Crypt4GH files as the archive serves them (re-encrypted for your key), checked by size");
  dl->add_option("--parallel", o->parallel, "Requests at once (default 16; at most 8 parts of one file)")
      ->check(CLI::Range(std::size_t{1}, transfer::kMaxParallel));
  size_flag(dl->add_option("--part-size", o->part_size,
                           "Split files larger than this into ranged parts, from 1M to 5G (default: automatic)"),
            flag_range::part_size);
  dl->footer(
      "The archive re-encrypts each file's header for your public key; impact fetches it once, then the\n"
      "encrypted segments in parallel ranged requests, decrypts them on the fly into NAME.impact-part\n"
      "(recorded in NAME.impact-state, resumed from there after an interruption), checks the plaintext\n"
      "checksum the archive lists, and only then renames it to NAME below -o DIR. A passphrase comes from\n"
      "IMPACT_C4GH_PASSPHRASE or a prompt on the terminal.\n\n"
      "Examples:\n  impact archive download EGAD00001000001 -o data/\n"
      "  impact archive download EGAD00001000001 samples/s1.vcf --prefix reads/ -o data/\n"
      "  impact archive download EGAD00001000001 --keep-encrypted -o encrypted/");
  dl->callback(ctx.action([&ctx, o] { download(ctx, *o); }));
}

}  // namespace impact::cli
