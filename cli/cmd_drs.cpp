// impact drs info URI...
// impact drs download URI... [-o DIR] [--parallel N]
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "outcome.hpp"
#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"

namespace impact::cli {
namespace {

struct DrsOptions {
  std::vector<std::string> uris;
  std::string dir = ".";
  std::size_t parallel = 4;
  bool allow_unverified = false;
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
  Table t{{"URI", "NAME", "SIZE", "CREATED", "UPDATED", "CHECKSUMS", "ACCESS", "ALIASES"}, {}};
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
  if (ctx.json()) ctx.term().print_json({{"objects", objects}, {"failed", failures}});
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

// The download's events drawn by the terminal's progress line.
class DownloadProgress final : public drs::Progress {
 public:
  explicit DownloadProgress(const Terminal& term) : line_(term.progress({})) {}
  void on_total(std::size_t files, std::uint64_t bytes) override { line_.plan(files, bytes); }
  void on_bytes(std::uint64_t done) override {  // bytes on disk so far, of every file
    if (done > done_) line_.add_bytes(done - done_);
    else line_.rewind(done_ - done);
    done_ = done;
  }
  void on_file_done(const drs::DownloadResult& r) override { line_.item_done(!r.error); }
  void finish() { line_.finish(); }

 private:
  cli::Progress line_;
  std::uint64_t done_ = 0;
};

void download(Context& ctx, const DrsOptions& o) {
  if (o.parallel < 1 || o.parallel > 64) throw Error(ErrorKind::usage, "--parallel must be between 1 and 64");
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  drs::Client client(settings(ctx, p));
  drs::DownloadOptions opt;
  opt.dir = o.dir;
  opt.parallel = o.parallel;
  opt.allow_unverified = o.allow_unverified;
  DownloadProgress progress(ctx.term());
  auto results = drs::download(client, o.uris, opt, &progress);
  progress.finish();

  nlohmann::json files = nlohmann::json::array();
  Table t{{"STATUS", "PATH", "SIZE", "VERIFIED", "URI"}, {}};
  Outcome outcome(ctx, "objects");
  for (const auto& r : results) {
    nlohmann::json j = {{"uri", r.uri}, {"id", r.id}, {"path", r.path.string()}, {"size", r.size},
                        {"status", drs::to_string(r.status)}, {"checksum", r.checksum_type},
                        {"resumed_from", r.resumed_from}};
    if (r.error) {
      auto f = report_failure(outcome, r.uri, r.error,
                              r.no_checksum ? "ask the data provider for a checksum, or pass --allow-unverified to download "
                                              "it checked by size only"
                                            : "");
      j["error"] = f["error"];
      j["kind"] = f["kind"];
      j["hint"] = f["hint"];
    } else {
      outcome.succeeded();
      if (r.checksum_type.empty() && !ctx.json())
        ctx.term().warn(fmt::format("{}: not verified (the DRS object has no checksum impact can check)", r.path.string()));
      t.rows.push_back({std::string(drs::to_string(r.status)), r.path.string(),
                        ctx.format() == Format::table ? human_size(r.size) : std::to_string(r.size),
                        r.checksum_type.empty() ? "no" : r.checksum_type, r.uri});
    }
    files.push_back(std::move(j));
  }
  if (ctx.json()) ctx.term().print_json({{"files", files}});
  else if (!t.rows.empty()) ctx.term().print_table(t, ctx.format());
  outcome.finish();
}

}  // namespace

void register_drs(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<DrsOptions>();
  auto* drs = app.add_subcommand("drs", "Resolve and download GA4GH DRS objects (passport-aware, verified, resumable)");
  drs->require_subcommand(1);

  auto* info_cmd = drs->add_subcommand("info", "Show DRS objects: size, checksums, access methods, times, aliases");
  info_cmd->add_option("uri", o->uris, "drs://HOST/ID or drs://PREFIX:ACCESSION")->required();
  info_cmd->footer("Examples:\n  impact drs info drs://drs.example.org/abc123\n  impact drs info drs://dg.4503:abc123 --json");
  info_cmd->callback(ctx.action([&ctx, o] { info(ctx, *o); }));

  auto* dl = drs->add_subcommand("download", "Download DRS objects, verified against their checksums");
  dl->add_option("uri", o->uris, "drs://HOST/ID or drs://PREFIX:ACCESSION (bundles become folders)")->required();
  dl->add_option("-o,--output", o->dir, "Folder to write into (default: the current folder)");
  dl->add_option("--parallel", o->parallel, "Files transferred at once (default 4)");
  dl->add_flag("--allow-unverified", o->allow_unverified,
               "Also download objects with no checksum impact can verify (checked by size only, with a warning)");
  dl->footer(
      "Each file is written to NAME.impact-part, resumed from there if interrupted, checked against the\n"
      "object's checksum and size, and only then renamed to NAME. An object with no checksum impact can\n"
      "verify is not downloaded unless --allow-unverified is given.\n\n"
      "Examples:\n  impact drs download drs://drs.example.org/abc123 -o data/\n"
      "  impact drs download $(cat uris.txt) --parallel 8");
  dl->callback(ctx.action([&ctx, o] { download(ctx, *o); }));
}

}  // namespace impact::cli
