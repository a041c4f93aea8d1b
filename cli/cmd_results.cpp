// impact results ls|download: the run's results in the node's object storage.
#include <unistd.h>

#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/storage.hpp"

namespace impact::cli {
namespace {

struct Options {
  std::string target;
  std::string dest = ".";
  std::vector<std::string> include, exclude;
  std::size_t parallel = 32;
  std::string part_size;
};

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

// Object keys come from the server: never let their control characters reach the terminal.
std::string printable(std::string_view key) {
  std::string out;
  for (char c : key) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

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

// Everything a storage command needs: where, with which keys.
struct Session {
  std::unique_ptr<storage::CredentialSource> creds;
  std::unique_ptr<storage::S3Client> s3;
  storage::Location where;
  std::string presigned;  // set instead of s3 for a presigned URL
};

Session open(Context& ctx, const std::string& target) {
  Session s;
  if (storage::is_presigned_url(target)) {
    s.presigned = target;
    return s;
  }
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  if (!p.storage || p.storage->url.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no object storage", "run: impact profile show");
  const StorageConfig& st = *p.storage;
  if (auto loc = storage::parse_s3_uri(target)) s.where = *loc;
  else s.where = storage::run_location(st, target);
  s.creds = storage::keys_from_environment();
  if (!s.creds && !st.keys_file.empty()) s.creds = storage::keys_from_file(st.keys_file);
  if (!s.creds && !st.sts.empty()) {
    storage::StsOptions o;
    o.sts_url = st.sts;
    auth::Credentials& login = ctx.credentials(p);
    o.web_identity_token = [&login, url = st.sts] { return login.bearer_token(url); };
    o.cache_file = cache_home() / "s3" / (p.name + ".json");
    s.creds = storage::sts_keys(ctx.http_options(), std::move(o));
  }
  if (!s.creds)
    throw Error(ErrorKind::auth_required, "no credentials for the object storage",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.sts in the profile (then: impact login)");
  s.s3 = std::make_unique<storage::S3Client>(st.url, st.region, *s.creds, ctx.http_options());
  return s;
}

// The objects a target names: one object (a key that exists), or everything under a prefix.
std::vector<storage::ObjectInfo> resolve(Session& s, std::string& prefix) {
  if (!s.presigned.empty()) {
    auto o = storage::probe_presigned(s.presigned, s.s3 ? s.s3->options() : http::default_options());
    prefix = o.key;
    return {o};
  }
  prefix = s.where.key;
  if (!prefix.empty() && prefix.back() != '/') {
    try {
      return {s.s3->head(s.where.bucket, prefix)};
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
      prefix += '/';
    }
  }
  auto objects = s.s3->list(s.where.bucket, prefix);
  if (objects.empty())
    throw Error(ErrorKind::not_found, fmt::format("nothing at s3://{}/{}", s.where.bucket, prefix),
                "check the run id (impact run status RUN_ID) or the prefix");
  return objects;
}

void run_ls(Context& ctx, const Options& o) {
  Session s = open(ctx, o.target);
  std::string prefix;
  auto objects = resolve(s, prefix);
  if (ctx.json()) {
    ctx.term().print_json({{"bucket", s.where.bucket}, {"prefix", prefix}, {"objects", objects}});
    return;
  }
  Table t{{"KEY", "SIZE", "LAST MODIFIED", "ETAG"}, {}};
  for (const auto& ob : objects)
    t.rows.push_back({printable(ob.key), ctx.format() == Format::table ? human(static_cast<double>(ob.size)) : std::to_string(ob.size),
                      ob.last_modified, ob.etag});
  ctx.term().print_table(t, ctx.format());
}

// Total bytes, rate, ETA and files on one stderr line, on a TTY only, at most 5 times a second.
class Progress final : public storage::DownloadObserver {
 public:
  explicit Progress(const Terminal& term) : term_(term), start_(std::chrono::steady_clock::now()) {}
  void on_plan(std::size_t files, std::uint64_t bytes) override {
    files_ = files;
    total_ = bytes;
  }
  void on_bytes(std::uint64_t n) override {
    now_ += n;
    draw(false);
  }
  void on_rewind(std::uint64_t n) override { now_ -= std::min(now_, n); }
  void on_file(const storage::FileResult& f) override {
    if (f.status == storage::FileResult::Status::failed) {
      clear();
      term_.error(printable(f.key) + ": " + f.error, f.hint);
    } else {
      ++done_;
    }
    draw(true);
  }
  void clear() {
    if (drawn_) term_.err() << "\r\033[K" << std::flush;
    drawn_ = false;
  }

 private:
  void draw(bool force) {
    if (!term_.err_tty()) return;
    const auto t = std::chrono::steady_clock::now();
    if (!force && t - last_ < std::chrono::milliseconds(200)) return;
    last_ = t;
    const double secs = std::chrono::duration<double>(t - start_).count();
    const double rate = secs > 0 ? static_cast<double>(now_) / secs : 0;
    const std::string eta = rate > 0 && total_ > now_ ? fmt::format("ETA {:.0f} s", static_cast<double>(total_ - now_) / rate) : "";
    term_.err() << "\r\033[K" << fmt::format("{} / {}  {}/s  {}  files {}/{}", human(static_cast<double>(now_)),
                                             human(static_cast<double>(total_)), human(rate), eta, done_, files_)
                << std::flush;
    drawn_ = true;
  }
  const Terminal& term_;
  std::chrono::steady_clock::time_point start_, last_{};
  std::size_t files_ = 0, done_ = 0;
  std::uint64_t total_ = 0, now_ = 0;
  bool drawn_ = false;
};

void run_download(Context& ctx, const Options& o) {
  Session s = open(ctx, o.target);
  std::string prefix;
  auto objects = resolve(s, prefix);
  storage::DownloadOptions d;
  d.dest = o.dest;
  d.include = o.include;
  d.exclude = o.exclude;
  d.parallel = o.parallel;
  if (!o.part_size.empty()) d.part_size = parse_size(o.part_size);
  storage::RequestFactory factory;
  if (s.s3) {
    factory = [&s](const storage::ObjectInfo& ob, auto range) { return s.s3->get_request(s.where.bucket, ob.key, range); };
  } else {
    factory = [&s](const storage::ObjectInfo&, auto range) {
      http::Request r;
      r.url = s.presigned;
      if (range) r.headers.push_back({"Range", fmt::format("bytes={}-{}", range->first, range->second)});
      return r;
    };
  }
  Progress progress(ctx.term());
  http::Options http = ctx.http_options();
  auto summary = storage::download(objects, prefix, factory, http, d, &progress);
  progress.clear();
  const auto ok = summary.count(storage::FileResult::Status::downloaded);
  const auto skipped = summary.count(storage::FileResult::Status::skipped);
  const auto failed = summary.count(storage::FileResult::Status::failed);
  if (ctx.json()) {
    ctx.term().print_json({{"destination", o.dest},
                           {"downloaded", ok},
                           {"skipped", skipped},
                           {"failed", failed},
                           {"bytes", summary.bytes},
                           {"seconds", std::round(summary.seconds * 1000) / 1000},
                           {"files", summary.files}});
  } else {
    const double rate = summary.seconds > 0 ? static_cast<double>(summary.bytes) / summary.seconds : 0;
    ctx.term().out() << fmt::format("downloaded {} file{} ({}) in {:.2f} s ({}/s); skipped {} identical; {} failed\n", ok,
                                    ok == 1 ? "" : "s", human(static_cast<double>(summary.bytes)), summary.seconds,
                                    human(rate), skipped, failed);
  }
  if (failed == 0) return;
  if (ok + skipped > 0) {
    ctx.exit_code = exit_code::partial;
    return;
  }
  const auto& first = *std::find_if(summary.files.begin(), summary.files.end(),
                                    [](const auto& f) { return f.status == storage::FileResult::Status::failed; });
  throw Error(first.error_kind, failed == 1 ? first.error : fmt::format("all {} objects failed; the first: {}", failed, first.error),
              first.hint);
}

}  // namespace

void register_results(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("results", "List and download a run's results from the node's object storage");
  group->require_subcommand(1);
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
  cdl->add_option("--parallel", dl->parallel, "Requests at once (default 32)")->check(CLI::Range(1, 256));
  cdl->add_option("--part-size", dl->part_size, "Split objects larger than this into ranged parts (default: automatic)");
  cdl->footer(
      "Examples:\n  impact results download run-42 -o results/\n"
      "  impact results download s3://results/runs/run-42/ --include '*.vcf.gz' -o out\n"
      "Interrupted downloads resume where they stopped; files already present and identical are skipped.");
  cdl->callback(ctx.action([&ctx, dl] { run_download(ctx, *dl); }));
}

}  // namespace impact::cli
