// impact search variants|individuals|biosamples|datasets|cohorts|runs|analyses: ask every beacon at once.
#include <algorithm>
#include <map>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "beacon_common.hpp"
#include "outcome.hpp"
#include "impact/error.hpp"

namespace impact::cli {
namespace {

using nlohmann::json;

struct SearchOpts {
  std::string entry;
  std::vector<std::string> filters;
  bool no_descendants = false;
  std::string granularity;  // empty: the spec's default (record for datasets/cohorts, else boolean)
  int limit = 10;
  int skip = 0;
  BeaconSelection sel;
  beacon::VariantQuery variant;
  std::optional<std::int64_t> min_length, max_length;
};

std::string record_id(const json& r) {
  for (const char* k : {"id", "variantInternalId"})
    if (r.contains(k) && r[k].is_string()) return r[k].get<std::string>();
  return {};
}

std::string record_detail(const json& r) {
  if (r.contains("identifiers") && r["identifiers"].is_object() && r["identifiers"].contains("genomicHGVSId"))
    return r["identifiers"]["genomicHGVSId"].get<std::string>();
  if (r.contains("name") && r["name"].is_string()) return r["name"].get<std::string>();
  if (r.contains("sex") && r["sex"].is_object() && r["sex"].contains("label")) return "sex: " + r["sex"]["label"].get<std::string>();
  return {};
}

std::string summary_note(const beacon::BeaconResult& b, beacon::Granularity requested) {
  std::vector<std::string> notes;
  if (b.answer.granularity != requested)
    notes.push_back(fmt::format("{} granted (asked {})", beacon::to_string(b.answer.granularity), beacon::to_string(requested)));
  if (!b.answer.unknown_filters.empty()) {
    std::string ids;
    for (const auto& f : b.answer.unknown_filters) ids += (ids.empty() ? "" : ",") + f;
    notes.push_back("unknown filters: " + ids);
  }
  if (b.method == "GET") notes.push_back("GET only");
  std::string s;
  for (const auto& n : notes) s += (s.empty() ? "" : "; ") + n;
  return s;
}

void report(Context& ctx, const beacon::SearchResult& res, Outcome& outcome) {
  const auto requested = res.query.granularity;
  for (const auto& b : res.beacons) {
    if (b.answered) outcome.succeeded();
    if (b.error) outcome.failed({}, *b.error, b.name);  // the --json record is the beacon's own (res)
    if (ctx.json()) continue;
    if (!b.supported) ctx.term().note(fmt::format("{}: does not offer {} (per its /map)", b.name, res.query.entry));
    for (const auto& f : b.answer.unknown_filters)
      ctx.term().warn(fmt::format("{}: filter '{}' is unknown to this beacon; its answer ignores it", b.name, f));
    for (const auto& p : b.answer.ignored_parameters)
      ctx.term().warn(fmt::format("{}: the beacon did not echo '{}'; it may have ignored it", b.name, p));
  }
  if (ctx.json()) {
    ctx.term().print_json(res, false, "beacons");
    return;
  }
  if (requested == beacon::Granularity::record) {
    Table t{{"BEACON", "ID", "DETAIL"}, {}, {2}};
    for (const auto& b : res.beacons) {
      if (!b.answered) continue;
      for (const auto& r : b.answer.records) t.rows.push_back({b.name, record_id(r), record_detail(r)});
      const auto note = summary_note(b, requested);
      ctx.term().note(fmt::format("{}: exists {}, count {}{}", b.name, b.answer.exists ? "yes" : "no",
                                  b.answer.count ? std::to_string(*b.answer.count) : "-", note.empty() ? "" : "; " + note));
    }
    ctx.term().print_table(t, ctx.format());
    return;
  }
  Table t{{"BEACON", "ANSWERED", "EXISTS", "COUNT", "GRANULARITY", "NOTE"}, {}, {5}};
  for (const auto& b : res.beacons) {
    if (!b.answered) {
      t.rows.push_back({b.name, "no", "-", "-", "-", b.supported ? "failed: see above" : "entry type not offered"});
      continue;
    }
    t.rows.push_back({b.name, "yes", b.answer.exists ? "yes" : "no", b.answer.count ? std::to_string(*b.answer.count) : "-",
                      std::string(beacon::to_string(b.answer.granularity)), summary_note(b, requested)});
  }
  ctx.term().print_table(t, ctx.format());
}

// The library's query errors name the Beacon parameters in backquotes (`referenceName`); the user gave
// them as flags (--chrom).
std::string with_flags(std::string text) {
  static const std::map<std::string, std::string> kFlags = {
      {"referenceName", "--chrom"}, {"start", "--start"},       {"end", "--end"},
      {"referenceBases", "--ref"},  {"alternateBases", "--alt"}, {"variantType", "--type"},
      {"geneId", "--gene"},         {"assemblyId", "--assembly"}, {"variantMinLength", "--min-length"},
      {"variantMaxLength", "--max-length"}, {"filters", "--filter"}};
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto open = text.find('`', i);
    const auto close = open == std::string::npos ? std::string::npos : text.find('`', open + 1);
    if (close == std::string::npos) break;
    const auto it = kFlags.find(text.substr(open + 1, close - open - 1));
    out += text.substr(i, open - i) + (it != kFlags.end() ? it->second : text.substr(open, close - open + 1));
    i = close + 1;
  }
  return out + text.substr(std::min(i, text.size()));
}

// Runs `f`, and words a usage error of the query in the command's flags.
template <class F>
void in_flags(F f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::usage) throw;
    Error worded(e.kind(), with_flags(e.what()), with_flags(e.hint()));
    throw worded.with_remedy(e.remedy());
  }
}

void run(Context& ctx, const SearchOpts& o) {
  beacon::Query q;
  q.entry = std::string(beacon::entry_type(o.entry).path);
  for (const auto& f : o.filters) in_flags([&] { q.filters.push_back(beacon::parse_filter(f, !o.no_descendants)); });
  const bool collection = q.entry == "datasets" || q.entry == "cohorts";
  if (o.granularity.empty()) {
    q.granularity = collection ? beacon::Granularity::record : beacon::Granularity::boolean;
  } else {
    q.granularity = *beacon::parse_granularity(o.granularity);
  }
  if (o.limit < 0 || o.skip < 0) throw Error(ErrorKind::usage, "--limit and --skip must not be negative", "--limit 0 asks for all");
  q.limit = o.limit;
  q.skip = o.skip;
  q.variant = o.variant;
  q.variant.min_length = o.min_length;
  q.variant.max_length = o.max_length;
  in_flags([&] { q.variant.validate(); });  // before any request, so a bad query costs nothing

  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  auto targets = beacon_targets(ctx, p, o.sel);
  auto res = beacon::search(targets, q, beacon_settings(ctx, o.sel));
  Outcome outcome(ctx, "beacons");
  report(ctx, res, outcome);
  outcome.finish();
  const bool none_offers = std::none_of(res.beacons.begin(), res.beacons.end(), [](const auto& b) { return b.supported; });
  if (outcome.failures() == 0 && outcome.ok() == 0 && none_offers)
    throw Error(ErrorKind::not_found, fmt::format("no beacon offers {}", q.entry), "run: impact beacon info");
  // A filter that every beacon that answered ignores makes every answer one to another question: not a
  // success (a shell that cut `age:>:P40Y` at the '>' leaves the filter `age:`).
  std::vector<std::string> ignored;
  for (const auto& f : q.filters) {
    std::size_t answered = 0, unknown = 0;
    for (const auto& b : res.beacons) {
      if (!b.answered) continue;
      ++answered;
      const auto& u = b.answer.unknown_filters;
      if (std::find(u.begin(), u.end(), f.id) != u.end()) ++unknown;
    }
    if (answered > 0 && unknown == answered) ignored.push_back(f.id);
  }
  if (!ignored.empty()) {
    std::string ids;
    for (const auto& id : ignored) ids += (ids.empty() ? "'" : ", '") + id + "'";
    throw Error(ErrorKind::usage,
                fmt::format("no beacon that answered knows the filter{} {}: the answers ignore {}", ignored.size() > 1 ? "s" : "",
                            ids, ignored.size() > 1 ? "them" : "it"),
                "list the filters a beacon knows: impact beacon filters NAME; quote a filter with > or < in it: --filter 'age:>:P40Y'");
  }
}

void add_common(CLI::App* cmd, SearchOpts& o) {
  cmd->add_option("--filter", o.filters,
                  "Filter: an ontology term (HP:0001250), a custom term (sampleOrigin:blood) or ID:OP:VALUE "
                  "('age:>:P40Y', quoted for the shell); repeatable, all must match");
  cmd->add_flag("--no-descendants", o.no_descendants, "Match ontology terms exactly, not their descendant terms");
  cmd->add_option("--granularity", o.granularity, "boolean, count or record (beacons may grant less)")
      ->check(CLI::IsMember({"boolean", "count", "record"}));
  cmd->add_option("--limit", o.limit, "Records per beacon (0 = as many as the beacon allows)")->capture_default_str();
  cmd->add_option("--skip", o.skip, "Pages of --limit records to skip")->capture_default_str();
  add_beacon_options(cmd, o.sel);
}

void add_variant_options(CLI::App* cmd, SearchOpts& o) {
  auto& v = o.variant;
  cmd->add_option("--chrom", v.reference_name, "Reference name: 17, chr17 or NC_000017.11");
  cmd->add_option("--start", v.start, "0-based start; twice for a bracket query")->allow_extra_args(false);
  cmd->add_option("--end", v.end, "0-based exclusive end (a range query); twice for a bracket query")->allow_extra_args(false);
  cmd->add_option("--ref", v.reference_bases, "Reference bases");
  cmd->add_option("--alt", v.alternate_bases, "Alternate bases (N matches any base)");
  cmd->add_option("--assembly", v.assembly_id, "Assembly, e.g. GRCh38");
  cmd->add_option("--type", v.variant_type, "Variant type, e.g. SNP, INS, DEL");
  cmd->add_option("--min-length", o.min_length, "Shortest variant length in bases");
  cmd->add_option("--max-length", o.max_length, "Longest variant length in bases");
  cmd->add_option("--gene", v.gene_id, "Gene id (HGNC symbol, e.g. BRCA1)");
}

}  // namespace

void register_search(CLI::App& app, Context& ctx) {
  auto* grp = add_command(app, "search");
  grp->require_subcommand(1);
  grp->footer(
      "Exit code 6 when some beacons failed or timed out (the others' answers are printed).\n"
      "Examples:\n"
      "  impact search individuals --filter HP:0001250 --granularity count\n"
      "  impact search variants --chrom 17 --start 43045711 --ref A --alt G --assembly GRCh38\n"
      "  impact search biosamples --filter 'age:>:P40Y' --beacon public --json");
  const std::vector<std::pair<const char*, const char*>> entries = {
      {"variants", "Genomic variants (g_variants) by position, bases, length or gene"},
      {"individuals", "Individuals matching the filters (phenotypes, diseases, sex, age, ...)"},
      {"biosamples", "Biosamples matching the filters (tissue, sample type, collection, ...)"},
      {"datasets", "Datasets the beacons hold, optionally filtered"},
      {"cohorts", "Cohorts the beacons hold, optionally filtered"},
      {"runs", "Sequencing runs matching the filters (platform, library, ...)"},
      {"analyses", "Analyses (pipelines run on the data) matching the filters"},
  };
  // Examples for each entry type, shown in its own --help.
  const std::map<std::string, std::string> examples = {
      {"variants", "  impact search variants --chrom 17 --start 43045711 --ref A --alt G --assembly GRCh38\n"
                   "  impact search variants --chrom 2 --start 166036277 --granularity record --json"},
      {"individuals", "  impact search individuals --filter HP:0001250 --granularity count\n"
                      "  impact search individuals --filter 'age:>:P40Y' --beacon controlled"},
      {"biosamples", "  impact search biosamples --filter UBERON:0000178\n  impact search biosamples --granularity count --json"},
      {"datasets", "  impact search datasets\n  impact search datasets --granularity record --json"},
      {"cohorts", "  impact search cohorts\n  impact search cohorts --beacon public --json"},
      {"runs", "  impact search runs --granularity count\n  impact search runs --limit 10 --skip 10"},
      {"analyses", "  impact search analyses --granularity count\n  impact search analyses --json"},
  };
  for (const auto& [name, help] : entries) {
    auto o = std::make_shared<SearchOpts>();
    o->entry = name;
    auto* cmd = grp->add_subcommand(name, help);
    cmd->footer("Exit code 6 when some beacons failed or timed out (the others' answers are printed).\nExamples:\n" +
                examples.at(name));
    add_common(cmd, *o);
    if (o->entry == "variants") add_variant_options(cmd, *o);
    cmd->callback(ctx.action([&ctx, o] { run(ctx, *o); }));
  }
}

}  // namespace impact::cli
