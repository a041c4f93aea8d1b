// impact drs info URI...
// impact drs download URI... [-o DIR] [--parallel N]
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "outcome.hpp"
#include "passphrase.hpp"
#include "transfer_progress.hpp"
#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"

namespace impact::cli {
namespace {

struct DrsOptions {
  std::vector<std::string> uris;
  std::string dest = ".";
  std::size_t parallel = drs::DownloadOptions{}.parallel;
  std::string part_size;
  bool allow_unverified = false;
  bool decrypt = false;
  std::string key;
};

drs::Settings settings(Context& ctx, const Profile& p) {
  drs::Settings s;
  s.http = ctx.http_options();
  s.profile = p;
  try {
    s.credentials = &ctx.credentials(p);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::auth_required) throw;  // not logged in: public objects still work
  }
  s.cache_dir = cache_home();
  return s;
}

std::string human_size(std::uint64_t n) { return human_bytes(static_cast<double>(n)); }

// One failure as JSON and on stderr (when not --json); `hint` replaces the error's own when set.
nlohmann::json report_failure(Outcome& outcome, const std::string& uri, std::exception_ptr ep, const std::string& hint = {}) {
  try {
    std::rethrow_exception(ep);
  } catch (const Error& e) {
    return outcome.failed({{"uri", uri}}, e, {}, hint);
  }
}

void info(Context& ctx, const DrsOptions& o) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  drs::Client client(settings(ctx, p));
  std::vector<drs::Location> locs;
  Outcome outcome(ctx, "objects");
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& u : o.uris) {
    try {
      locs.push_back(client.locate(drs::parse_uri(u)));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      failures.push_back(outcome.failed({{"uri", u}}, e));
    }
  }
  auto fetched = client.objects(locs, false);
  nlohmann::json objects = nlohmann::json::array();
  Table t{{"URI", "NAME", "SIZE", "CREATED", "UPDATED", "CHECKSUMS", "ACCESS", "ALIASES"}, {}, {1}};
  for (const auto& f : fetched) {
    if (f.error) {
      failures.push_back(report_failure(outcome, f.where.uri, f.error));
      continue;
    }
    outcome.succeeded();
    const drs::Object& obj = *f.object;
    nlohmann::json j = obj;
    j["uri"] = f.where.uri;
    objects.push_back(std::move(j));
    std::vector<std::string> sums, access;
    for (const auto& c : obj.checksums) sums.push_back(c.type + ":" + c.checksum);
    for (const auto& m : obj.access_methods) access.push_back(m.type + (m.available ? "" : "(unavailable)"));
    if (obj.bundle) access.push_back(fmt::format("bundle of {}", obj.contents.size()));
    const bool tty = ctx.format() == Format::table;
    t.rows.push_back({f.where.uri, obj.name, tty ? human_size(obj.size) : std::to_string(obj.size), obj.created_time,
                      obj.updated_time, fmt::format("{}", fmt::join(sums, ",")), fmt::format("{}", fmt::join(access, ",")),
                      fmt::format("{}", fmt::join(obj.aliases, ","))});
  }
  if (ctx.json()) ctx.term().print_json({{"objects", objects}, {"failed", failures}}, false, "objects");
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

void download(Context& ctx, const DrsOptions& o) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  drs::Client client(settings(ctx, p));
  drs::DownloadOptions opt;
  opt.dest = o.dest;
  opt.parallel = o.parallel;
  if (!o.part_size.empty()) opt.part_size = parse_size(o.part_size);
  opt.allow_unverified = o.allow_unverified;
  std::optional<crypt4gh::KeyPair> key;
  if (o.decrypt || !o.key.empty()) {
    const std::string name = o.key.empty() ? default_key_name() : o.key;
    key = crypt4gh::load_private_key(name, passphrase_source("Crypt4GH key '" + name + "'"));
    opt.decrypt_with = &*key;
  }
  TransferProgress progress(ctx.term());
  auto results = drs::download(client, o.uris, opt, &progress);
  progress.finish();

  nlohmann::json files = nlohmann::json::array();
  Table t{{"STATUS", "PATH", "SIZE", "VERIFIED", "URI"}, {}};
  Outcome outcome(ctx, "objects");
  for (const auto& r : results) {
    nlohmann::json j = r;
    const std::string shown = (std::filesystem::path(o.dest) / r.path).string();
    if (r.status == transfer::Result::Status::failed) {
      const std::string hint = r.no_checksum ? "ask the data provider for a checksum, or pass --allow-unverified to download "
                                               "it checked by size only"
                                             : r.hint;
      // Errors of the transfer itself do not say which object they are about.
      const std::string what = r.error.find(r.id) == std::string::npos ? r.id + ": " + r.error : r.error;
      auto f = outcome.failed({{"uri", r.id}}, Error(r.error_kind, what, hint), {}, hint);
      j["error"] = f["error"];
      j["kind"] = f["kind"];
      j["hint"] = f["hint"];
    } else {
      outcome.succeeded();
      if (r.verified == "size" && !ctx.json())
        ctx.term().warn(fmt::format("{}: not verified (the DRS object has no checksum impact can check)", shown));
      t.rows.push_back({std::string(transfer::to_string(r.status)), shown,
                        ctx.format() == Format::table ? human_size(r.size) : std::to_string(r.size), r.verified, r.id});
    }
    files.push_back(std::move(j));
  }
  if (ctx.json()) ctx.term().print_json({{"destination", o.dest}, {"files", files}}, false, "files");
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

}  // namespace

void register_drs(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<DrsOptions>();
  auto* drs = add_command(app, "drs");
  drs->require_subcommand(1);
  drs->footer("Examples:\n  impact drs info drs://drs.example.org/abc123\n  impact drs download drs://drs.example.org/abc123 -o data/");

  auto* info_cmd = drs->add_subcommand("info", "Show DRS objects: size, checksums, access methods, times, aliases");
  info_cmd->add_option("uri", o->uris, "drs://HOST/ID or drs://PREFIX:ACCESSION")->required();
  info_cmd->footer("Examples:\n  impact drs info drs://drs.example.org/abc123\n  impact drs info drs://dg.4503:abc123 --json");
  info_cmd->callback(ctx.action([&ctx, o] { info(ctx, *o); }));

  auto* dl = drs->add_subcommand("download", "Download DRS objects, verified against their checksums");
  dl->add_option("uri", o->uris, "drs://HOST/ID or drs://PREFIX:ACCESSION (bundles become folders)")->required();
  dl->add_option("-o,--output", o->dest, "Folder to write into (default: the current folder)");
  dl->add_option("--parallel", o->parallel, "Requests at once (default 64; at most 8 parts of one object)")
      ->check(CLI::Range(std::size_t{1}, transfer::kMaxParallel));
  size_flag(dl->add_option("--part-size", o->part_size,
                           "Split objects larger than this into ranged parts, from 1M to 5G (default: automatic)"),
            flag_range::part_size);
  dl->add_flag("--decrypt", o->decrypt,
               "Write Crypt4GH objects decrypted with your key (name without .c4gh), segments checked one by one");
  dl->add_option("-k,--key", o->key, "Private key for --decrypt: a stored key's NAME or a key FILE (default: the only, or 'default')");
  dl->add_flag("--allow-unverified", o->allow_unverified,
               "Also download objects with no checksum impact can verify (checked by size only, with a warning)");
  dl->footer(
      "Each file is written in place to NAME.impact-part (large ones in ranged parts, recorded in\n"
      "NAME.impact-state), resumed from there if interrupted, checked against the object's checksum and\n"
      "size, and only then renamed to NAME; a file already there and identical is skipped. An object with\n"
      "no checksum impact can verify is not downloaded unless --allow-unverified is given. An object whose\n"
      "name cannot be written safely (.., /, control characters) is refused.\n\n"
      "Examples:\n  impact drs download drs://drs.example.org/abc123 -o data/\n"
      "  impact drs download $(cat uris.txt) --parallel 8\n"
      "  impact drs download drs://drs.example.org/abc123 --decrypt --key mykey");
  dl->callback(ctx.action([&ctx, o] { download(ctx, *o); }));
}

}  // namespace impact::cli
