// impact results ls|download: the run's results in the node's object storage.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "context.hpp"
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

// Many files in flight need more than the soft limit of open files many systems start with (1024): raise it
// to the hard limit, as Go programs (rclone among them) do at start-up. The download keeps its transfers
// (a connection and a file each) under the limit either way.
void raise_open_files_limit() {
  struct rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);  // best effort
}

// Everything a storage command needs: where, with which keys.
struct Session {
  std::unique_ptr<storage::CredentialSource> creds;
  std::unique_ptr<storage::S3Client> s3;
  storage::Location where;  // for a run id: the template's prefix (bucket empty when there is none)
  std::string presigned;    // set instead of s3 for a presigned URL
  std::map<std::string, std::string> presigned_urls;  // a run's presigned outputs: object key -> URL
  std::string run_id;       // set when the target is a run id
  std::string wes, endpoint, bucket;  // the profile's WES, storage URL and results bucket
  Profile profile;
};

Session open(Context& ctx, const std::string& target) {
  Session s;
  if (storage::is_presigned_url(target)) {
    s.presigned = target;
    return s;
  }
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  if ((!p.storage || p.storage->url.empty()) && !p.wes.empty() && !storage::parse_s3_uri(target)) {
    // A run id with no storage profile: only its presigned outputs can be fetched (no keys needed).
    storage::check_run_id(target);
    s.run_id = target;
    s.wes = p.wes;
    s.profile = p;
    return s;
  }
  if (!p.storage || p.storage->url.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no object storage", "run: impact profile show");
  const StorageConfig& st = *p.storage;
  if (auto loc = storage::parse_s3_uri(target)) {
    s.where = *loc;
  } else {
    storage::check_run_id(target);
    s.run_id = target;
    if (!st.result_prefix.empty() && (!st.bucket.empty() || p.wes.empty())) s.where = storage::run_location(st, target);
  }
  s.wes = p.wes;
  s.endpoint = st.url;
  s.bucket = st.bucket;
  s.profile = p;
  s.creds = storage::keys_from_environment();
  if (!s.creds && !st.keys_file.empty()) s.creds = storage::keys_from_file(st.keys_file);
  if (!s.creds && !st.sts.empty()) {
    storage::StsOptions o;
    o.sts_url = st.sts;
    o.web_identity_token = [&ctx, p, url = st.sts] { return ctx.credentials(p).bearer_token(url); };
    o.cache_file = cache_home() / "s3" / (p.name + ".json");
    s.creds = storage::sts_keys(ctx.http_options(), std::move(o));
  }
  if (!s.creds)
    throw Error(ErrorKind::auth_required, "no credentials for the object storage",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.sts in the profile (then: impact login)");
  s.s3 = std::make_unique<storage::S3Client>(st.url, st.region, *s.creds, ctx.http_options());
  return s;
}

// What a target names: the objects, the prefix their local names are relative to, and for a run whose
// outputs were searched, the outputs left out.
struct Resolved {
  std::string prefix;
  std::vector<storage::ObjectInfo> objects;
  bool from_outputs = false;
  std::vector<storage::SkippedOutput> skipped;
};

// A run's outputs in WES (GET /runs/{id}): the objects they name in the storage.
Resolved resolve_run_outputs(Context& ctx, Session& s) {
  http::Client http = ctx.client();
  auth::Credentials& login = ctx.credentials(s.profile);
  wes::Client client(http, s.wes, [&login, url = s.wes] { return login.bearer_token(url); });
  const wes::RunLog run = client.get(s.run_id);
  auto found = storage::find_output_objects(run.outputs, s.endpoint);
  if (!found.presigned.empty() && (found.objects.empty() || !s.s3)) {
    // Presigned URLs (WESkit's outputs.S3): fetched as they are, with no keys and no token.
    for (const auto& o : found.objects)
      found.skipped.push_back({o.url, "in the object storage, which the profile does not name"});
    auto pre = storage::resolve_presigned(found.presigned, ctx.http_options(), found.skipped);
    s.presigned_urls = std::move(pre.urls);
    s.where = {};
    return {pre.prefix, std::move(pre.objects), true, std::move(found.skipped)};
  }
  for (const auto& url : found.presigned)
    found.skipped.push_back({url, "a presigned URL beside outputs in the storage: download it alone with: impact results download URL"});
  if (!s.s3)
    throw Error(ErrorKind::config,
                fmt::format("profile '{}' has no object storage, and run {} has no presigned outputs", s.profile.name, s.run_id),
                "see the run's outputs: impact run show " + s.run_id);
  auto res = storage::resolve_outputs(*s.s3, found, s.bucket);
  Resolved r{res.prefix, std::move(res.objects), true, std::move(found.skipped)};
  if (r.objects.empty()) {
    std::string hint = fmt::format("see the run's outputs: impact run show {}", s.run_id);
    if (!wes::is_terminal(run.state))
      hint = fmt::format("the run is {}: wait for it (impact run wait {})", wes::to_string(run.state), s.run_id);
    throw Error(ErrorKind::not_found,
                fmt::format("nothing to download for run {}: {}its outputs name no object in the storage{}", s.run_id,
                            s.where.bucket.empty() ? "" : fmt::format("nothing under s3://{}/{}, and ", s.where.bucket, s.where.key),
                            r.skipped.empty() ? "" : fmt::format(" ({} elsewhere)", r.skipped.size())),
                hint);
  }
  s.where = {res.bucket, r.prefix};
  return r;
}

// The objects a target names: one object (a key that exists), everything under a prefix, or a run's
// results (the profile's result_prefix when anything is there, else the run's WES outputs).
Resolved resolve(Context& ctx, Session& s) {
  Resolved r;
  if (!s.presigned.empty()) {
    auto o = storage::probe_presigned(s.presigned, s.s3 ? s.s3->options() : http::default_options());
    r.prefix = o.key;
    r.objects = {o};
    return r;
  }
  if (!s.run_id.empty() && s.where.bucket.empty()) {
    if (s.wes.empty())
      throw Error(ErrorKind::config,
                  "cannot find the results of run " + s.run_id + ": the profile has no storage.result_prefix and no WES service",
                  "set storage.result_prefix in the profile, or give s3://BUCKET/PREFIX");
    return resolve_run_outputs(ctx, s);
  }
  r.prefix = s.where.key;
  if (!r.prefix.empty() && r.prefix.back() != '/') {
    try {
      r.objects = {s.s3->head(s.where.bucket, r.prefix)};
      return r;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
      r.prefix += '/';
    }
  }
  r.objects = s.s3->list(s.where.bucket, r.prefix);
  if (r.objects.empty() && !s.run_id.empty() && !s.wes.empty()) return resolve_run_outputs(ctx, s);
  if (r.objects.empty())
    throw Error(ErrorKind::not_found, fmt::format("nothing at s3://{}/{}", s.where.bucket, r.prefix),
                "check the run id (impact run status RUN_ID) or the prefix");
  return r;
}

// Outputs of the run that are not in the storage: named on stderr (they are not an error).
void warn_skipped(Context& ctx, const Resolved& r) {
  for (const auto& sk : r.skipped) ctx.term().warn(fmt::format("not fetched: {}: {}", printable(redact_url(sk.url)), sk.reason));
}

nlohmann::json skipped_json(const Resolved& r) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& sk : r.skipped) out.push_back({{"url", redact_url(sk.url)}, {"reason", sk.reason}});
  return out;
}

void run_ls(Context& ctx, const Options& o) {
  Session s = open(ctx, o.target);
  const Resolved r = resolve(ctx, s);
  if (ctx.json()) {
    nlohmann::json j{{"bucket", s.where.bucket}, {"prefix", r.prefix}, {"objects", r.objects}};
    if (r.from_outputs) j["skipped_outputs"] = skipped_json(r);
    ctx.term().print_json(j);
    return;
  }
  warn_skipped(ctx, r);
  Table t{{"KEY", "SIZE", "LAST MODIFIED", "ETAG"}, {}};
  for (const auto& ob : r.objects)
    t.rows.push_back({printable(ob.key), ctx.format() == Format::table ? human(static_cast<double>(ob.size)) : std::to_string(ob.size),
                      ob.last_modified, ob.etag});
  ctx.term().print_table(t, ctx.format());
}

// Total bytes, rate, ETA and files on one stderr line, on a TTY only, at most 5 times a second.
class Progress final : public transfer::Observer {
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
  void on_item(const transfer::Result& f) override {
    if (f.status == transfer::Result::Status::failed) {
      clear();
      term_.error(printable(f.id) + ": " + f.error, f.hint);
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
  const Resolved res = resolve(ctx, s);
  storage::DownloadOptions d;
  d.dest = o.dest;
  d.include = o.include;
  d.exclude = o.exclude;
  d.parallel = o.parallel;
  if (!o.part_size.empty()) d.part_size = parse_size(o.part_size);
  storage::RequestFactory factory;
  if (s.s3 && s.presigned_urls.empty()) {
    factory = [&s](const storage::ObjectInfo& ob, auto range) { return s.s3->get_request(s.where.bucket, ob.key, range); };
    d.full_checksum = [&s](storage::ObjectInfo& ob) { ob.checksums = s.s3->head(s.where.bucket, ob.key).checksums; };
  } else {
    factory = [&s](const storage::ObjectInfo& ob, auto range) {
      http::Request r;  // no Authorization: a presigned URL carries its own signature
      r.url = s.presigned.empty() ? s.presigned_urls.at(ob.key) : s.presigned;
      if (range) r.headers.push_back({"Range", fmt::format("bytes={}-{}", range->first, range->second)});
      return r;
    };
  }
  Progress progress(ctx.term());
  http::Options http = ctx.http_options();
  if (!ctx.json()) warn_skipped(ctx, res);
  raise_open_files_limit();
  auto summary = storage::download(res.objects, res.prefix, factory, http, d, &progress);
  progress.clear();
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
    if (res.from_outputs) j["skipped_outputs"] = skipped_json(res);
    ctx.term().print_json(j);
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
  cdl->add_option("--parallel", dl->parallel, "Requests at once (default 64; at most 8 parts of one object)")->check(CLI::Range(1, 256));
  cdl->add_option("--part-size", dl->part_size, "Split objects larger than this into ranged parts (default: automatic)");
  cdl->footer(
      "Examples:\n  impact results download run-42 -o results/\n"
      "  impact results download s3://results/runs/run-42/ --include '*.vcf.gz' -o out\n"
      "Interrupted downloads resume where they stopped; files already present and identical are skipped.");
  cdl->callback(ctx.action([&ctx, dl] { run_download(ctx, *dl); }));
}

}  // namespace impact::cli
