// impact results ls|download: the run's results in the node's object storage.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "outcome.hpp"
#include "transfer_progress.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/storage.hpp"
#include "impact/wes.hpp"

namespace impact::cli {

std::uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end ? std::string(end) : std::string();
  double mult = 1;
  if (unit == "K" || unit == "KiB" || unit == "k") mult = 1024;
  else if (unit == "M" || unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty()) mult = -1;
  if (!(v > 0) || mult < 0 || v * mult < 1 << 20)
    throw Error(ErrorKind::usage, "--part-size '" + s + "' is not a size of at least 1M", "write it like 64M or 1G");
  return static_cast<std::uint64_t>(v * mult);
}

namespace {

struct Options {
  std::string target;
  std::string dest = ".";
  std::vector<std::string> include, exclude;
  std::size_t parallel = storage::DownloadOptions{}.parallel;
  std::string part_size;
};

std::string human(double bytes) { return human_bytes(bytes); }

// Object keys come from the server: never let their control characters reach the terminal.
std::string printable(std::string_view key) {
  std::string out;
  for (char c : key) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

// Many files in flight need more than the soft limit of open files many systems start with (1024): raise it
// to the hard limit, as Go programs (rclone among them) do at start-up. The download keeps its transfers
// (a connection and a file each) under the limit either way.
void raise_open_files_limit() {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);  // best effort
}

// What a target names and how to fetch it, resolved by the library once: a presigned URL needs no profile.
storage::Resolution resolve(Context& ctx, const std::string& target) {
  storage::ResolveInput in;
  in.target = target;
  in.http = ctx.http_options();
  std::optional<Config> config;
  if (!storage::is_presigned_url(target)) {
    config = ctx.load_config();
    in.profile = &ctx.profile(*config);
    in.login = &ctx.credentials(*in.profile);
  }
  return storage::resolve(in);
}

// Why an output was left out, and the command that downloads it on its own when there is one.
std::string skipped_reason(const Context& ctx, const storage::SkippedOutput& sk) {
  if (sk.alone.empty()) return sk.reason;
  const std::string impact = ctx.globals.profile.empty() ? "impact" : "impact --profile " + ctx.globals.profile;
  return fmt::format("{}: download it with: {} results download {}", sk.reason, impact, redact_url(sk.alone));
}

// Outputs of the run that are not in the storage: named on stderr (they are not an error).
void warn_skipped(Context& ctx, const storage::Resolution& r) {
  for (const auto& sk : r.skipped)
    ctx.term().warn(fmt::format("not fetched: {}: {}", printable(redact_url(sk.url)), printable(skipped_reason(ctx, sk))));
}

nlohmann::json skipped_json(const Context& ctx, const storage::Resolution& r) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& sk : r.skipped) out.push_back({{"url", redact_url(sk.url)}, {"reason", skipped_reason(ctx, sk)}});
  return out;
}

void run_ls(Context& ctx, const Options& o) {
  storage::Resolution r = resolve(ctx, o.target);
  storage::read_all(r);
  if (ctx.json()) {
    nlohmann::json j{{"bucket", r.bucket}, {"prefix", r.prefix}, {"objects", r.objects}};
    if (r.from_outputs) j["skipped_outputs"] = skipped_json(ctx, r);
    ctx.term().print_json(j, false, "objects");
    return;
  }
  warn_skipped(ctx, r);
  Table t{{"KEY", "SIZE", "LAST MODIFIED", "ETAG"}, {}};
  for (const auto& ob : r.objects)
    t.rows.push_back({printable(ob.key), ctx.format() == Format::table ? human(static_cast<double>(ob.size)) : std::to_string(ob.size),
                      ob.last_modified, ob.etag});
  ctx.term().print_table(t, ctx.format());
}

void run_download(Context& ctx, const Options& o) {
  storage::Resolution res = resolve(ctx, o.target);
  storage::DownloadOptions d;
  d.dest = o.dest;
  d.include = o.include;
  d.exclude = o.exclude;
  d.parallel = o.parallel;
  if (!o.part_size.empty()) d.part_size = parse_size(o.part_size);
  d.full_checksum = res.full_checksum;
  // The listing is pulled page by page as the transfers go. Only --json names every file in its report, so
  // only then are the results kept (a few hundred bytes each); the text summary needs just the counts.
  d.keep_files = ctx.json();
  Outcome outcome(ctx, "objects");
  TransferProgress progress(ctx.term(), [&outcome](const transfer::Result& f) {
    outcome.failed({{"key", f.id}}, Error(f.error_kind, f.error, f.hint), printable(f.id));
  });
  http::Options http = ctx.http_options();
  if (!ctx.json()) warn_skipped(ctx, res);
  raise_open_files_limit();
  auto summary = storage::download(storage::pages_of(res), res.prefix, res.make_request, http, d, &progress);
  progress.finish();
  const auto ok = summary.count(storage::FileResult::Status::downloaded);
  const auto skipped = summary.count(storage::FileResult::Status::skipped);
  const auto failed = summary.count(storage::FileResult::Status::failed);
  if (ctx.json()) {
    nlohmann::json j{{"destination", o.dest},
                     {"downloaded", ok},
                     {"skipped", skipped},
                     {"failed", failed},
                     {"bytes", summary.bytes},
                     {"seconds", std::round(summary.seconds * 1000) / 1000},
                     {"files", summary.files}};
    if (res.from_outputs) j["skipped_outputs"] = skipped_json(ctx, res);
    ctx.term().print_json(j, false, "files");
  } else {
    const double rate = summary.seconds > 0 ? static_cast<double>(summary.bytes) / summary.seconds : 0;
    ctx.term().out() << fmt::format("downloaded {} file{} ({}) in {:.2f} s ({}/s); skipped {} identical; {} failed\n", ok,
                                    ok == 1 ? "" : "s", human(static_cast<double>(summary.bytes)), summary.seconds,
                                    human(rate), skipped, failed);
  }
  outcome.succeeded(ok + skipped);
  outcome.finish();
}

}  // namespace

void register_results(CLI::App& app, Context& ctx) {
  auto* group = add_command(app, "results");
  group->require_subcommand(1);
  group->footer("Examples:\n  impact results ls RUN_ID\n  impact results download RUN_ID -o results/");
  const char* target_help = "RUN_ID, s3://BUCKET/PREFIX, s3://BUCKET/KEY or a presigned https URL";

  auto ls = std::make_shared<Options>();
  auto* cls = group->add_subcommand("ls", "List the objects of a run or under an S3 prefix");
  cls->add_option("target", ls->target, target_help)->required();
  cls->footer("Examples:\n  impact results ls run-42\n  impact results ls s3://results/runs/run-42/ --json");
  cls->callback(ctx.action([&ctx, ls] { run_ls(ctx, *ls); }));

  auto dl = std::make_shared<Options>();
  auto* cdl = group->add_subcommand("download", "Download a run's results: parallel, resumable, verified");
  cdl->add_option("target", dl->target, target_help)->required();
  cdl->add_option("-o,--output", dl->dest, "Destination folder (default: the current folder)");
  cdl->add_option("--include", dl->include, "Only paths matching this glob (repeatable)");
  cdl->add_option("--exclude", dl->exclude, "Skip paths matching this glob (repeatable)");
  cdl->add_option("--parallel", dl->parallel, "Requests at once (default 64; at most 8 parts of one object)")->check(CLI::Range(1, 256));
  size_flag(cdl->add_option("--part-size", dl->part_size,
                            "Split objects larger than this into ranged parts, from 1M to 5G (default: automatic)"),
            flag_range::part_size);
  cdl->footer(
      "Examples:\n  impact results download run-42 -o results/\n"
      "  impact results download s3://results/runs/run-42/ --include '*.vcf.gz' -o out\n"
      "Interrupted downloads resume where they stopped; files already present and identical are skipped.");
  cdl->callback(ctx.action([&ctx, dl] { run_download(ctx, *dl); }));
}

}  // namespace impact::cli
