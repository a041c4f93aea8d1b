// impact workflow search [TEXT] [--type T] [--class C] [--trs NAME]... [--limit N]
// impact workflow show ID[:VERSION] | files ID:VERSION [--type T] | fetch ID:VERSION [--type T] -o DIR
// GA4GH TRS 2.x registries: the profile's (`--trs NAME=URL`, or discovered through the service registry).
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/error.hpp"
#include "impact/trs.hpp"
#include "impact/url.hpp"
#include "workflow.hpp"

namespace impact::cli {
namespace {

struct WorkflowFlags {
  std::string text, type, tool_class, ref, dir;
  std::vector<std::string> trs;
  std::size_t limit = 200;
};

std::string join(const std::vector<std::string>& v, std::string_view sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}

std::string checksums_text(const std::vector<trs::Checksum>& sums) {
  std::vector<std::string> parts;
  for (const auto& c : sums) parts.push_back(c.type + ":" + c.checksum);
  return join(parts);
}

// `cell` cut on a code point boundary to at most `room` columns, an ellipsis marking the cut.
std::string cut_to(const std::string& cell, std::size_t room) {
  if (display_width(cell) <= room) return cell;
  std::string out;
  std::size_t n = 0;
  for (std::size_t i = 0; i < cell.size() && n + 1 < room;) {
    const auto c = static_cast<unsigned char>(cell[i]);
    const std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    out.append(cell, i, len);
    i += len;
    ++n;
  }
  return out + "…";
}

// A table whose free-text columns (names, descriptions, authors) may be cut to fit the terminal; ids never are.
void print_fitting(Context& ctx, Table t, std::vector<std::size_t> free_text) {
  t.free_text = std::move(free_text);
  ctx.term().print_table(t, ctx.format());
}

// An HTTP client for registry calls: each answer must be complete within a minute (a registry that trickles
// cannot hold a listing for the client's default five).
http::Client trs_http(Context& ctx) {
  auto o = ctx.http_options();
  o.api_deadline_ms = std::min<long>(o.api_deadline_ms > 0 ? o.api_deadline_ms : 60'000, 60'000);
  return http::Client(o);
}

// The registries to ask: those named with --trs (a profile name, or a URL), else all of the profile's.
std::vector<trs::Registry> registries(Context& ctx, const std::vector<std::string>& wanted) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  std::vector<trs::Registry> out;
  if (wanted.empty()) {
    for (const auto& [n, u] : p.trs) out.push_back({n, u});
    if (out.empty())
      throw Error(ErrorKind::config, "profile '" + p.name + "' has no TRS registry",
                  "add one: impact profile add " + p.name + " --force ... --trs NAME=URL (or --registry URL), "
                  "or name one here: --trs https://workflowhub.eu/ga4gh/trs/v2");
    return out;
  }
  for (const auto& w : wanted) {
    if (w.find("://") != std::string::npos) {
      require_allowed_url(w, "--trs");
      out.push_back({w, w});
      continue;
    }
    auto it = p.trs.find(w);
    if (it == p.trs.end()) {
      std::vector<std::string> names;
      for (const auto& [n, u] : p.trs) names.push_back(n);
      throw Error(ErrorKind::usage, fmt::format("profile '{}' has no TRS registry named '{}'", p.name, w),
                  names.empty() ? "give a URL: --trs https://HOST/ga4gh/trs/v2"
                                : "the profile's registries: " + join(names, ", "));
    }
    out.push_back({it->first, it->second});
  }
  return out;
}

// Runs `f` on each registry in turn until one knows the tool: a 404 moves on to the next.
template <class F>
auto first_knowing(Context& ctx, http::Client& http, const std::vector<std::string>& wanted, const std::string& id, F f) {
  const auto regs = registries(ctx, wanted);
  std::vector<std::string> tried;
  for (const auto& r : regs) {
    trs::Client client(http, r);
    try {
      return f(client);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found || regs.size() == 1) throw;
      tried.push_back(r.name);
    }
  }
  throw Error(ErrorKind::not_found, fmt::format("no TRS registry of the profile knows '{}' (asked: {})", id, join(tried, ", ")),
              "search for it: impact workflow search TEXT");
}

void search(Context& ctx, const WorkflowFlags& f) {
  if (f.limit < 1 || f.limit > 10000) throw Error(ErrorKind::usage, "--limit must be between 1 and 10000");
  auto http = trs_http(ctx);
  trs::Query q;
  if (!f.type.empty()) q.descriptor_type = trs::normalize_type(f.type);
  q.tool_class = f.tool_class;
  q.max_items = f.limit;
  q.max_pages = std::max<std::size_t>(20, f.limit / 100 + 1);
  nlohmann::json tools = nlohmann::json::array(), failed = nlohmann::json::array();
  Table t{{"REGISTRY", "ID", "NAME", "TYPES", "VERSIONS", "DESCRIPTION"}, {}};
  std::size_t ok = 0;
  const auto regs = registries(ctx, f.trs);
  std::optional<Error> last;
  for (const auto& r : regs) {
    trs::Client client(http, r);
    try {
      // TRS has no full-text search: TEXT is looked for in names, then in descriptions.
      std::vector<trs::SearchResult> parts;
      if (f.text.empty()) {
        parts.push_back(client.search(q));
      } else {
        trs::Query by_name = q, by_description = q;
        by_name.name = f.text;
        by_description.description = f.text;
        parts.push_back(client.search(by_name));
        parts.push_back(client.search(by_description));
      }
      std::set<std::string> seen;
      std::size_t shown = 0;
      bool truncated = false;
      for (auto& part : parts) {
        truncated = truncated || part.truncated;
        for (auto& tool : part.tools) {
          if (!seen.insert(tool.id).second || shown >= f.limit) continue;
          ++shown;
          std::vector<std::string> versions;
          for (const auto& v : tool.versions) versions.push_back(v.name.empty() ? v.id : v.name);
          t.rows.push_back({r.name, tool.id, tool.name, join(tool.descriptor_types()), join(versions), tool.description});
          nlohmann::json j = tool;
          j["registry"] = r.name;
          tools.push_back(std::move(j));
        }
      }
      if (truncated && !ctx.json())
        ctx.term().note(fmt::format("{}: more tools than listed (stopped after {} tools or pages); narrow the search "
                                    "or raise --limit", r.name, f.limit));
      ++ok;
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      if (!ctx.json()) ctx.term().error(fmt::format("{}: {}", r.name, e.what()), e.hint());
      failed.push_back({{"registry", r.name}, {"error", e.what()}, {"kind", to_string(e.kind())}});
      last = e;
    }
  }
  if (ctx.json()) ctx.term().print_json({{"tools", tools}, {"failed", failed}}, false, "tools");
  else if (!t.rows.empty()) print_fitting(ctx, std::move(t), {2, 5});
  else if (ok > 0) ctx.term().note("no workflows found");
  if (ok == 0 && last) ctx.exit_code = exit_code_for(last->kind());
  else if (!failed.empty()) ctx.exit_code = exit_code::partial;
}

// The descriptor type to use for a version: --type, else its only one.
std::string pick_type(const trs::ToolVersion& v, const std::string& wanted, const std::string& ref) {
  if (!wanted.empty()) return trs::normalize_type(wanted);
  if (v.descriptor_types.size() == 1) return trs::normalize_type(v.descriptor_types.front());
  if (v.descriptor_types.empty())
    throw Error(ErrorKind::usage, fmt::format("the registry names no descriptor type for '{}'", ref), "give --type CWL|WDL|NFL|SMK");
  throw Error(ErrorKind::usage, fmt::format("'{}' has several descriptor types: {}", ref, join(v.descriptor_types, ", ")),
              "choose one with --type");
}

trs::Ref versioned(const std::string& text) {
  auto r = trs::parse_ref(text);
  if (r.version.empty())
    throw Error(ErrorKind::usage, fmt::format("'{}' names no version", text),
                "give ID:VERSION; the versions: impact workflow show " + r.id);
  return r;
}

void show(Context& ctx, const WorkflowFlags& f) {
  const auto ref = trs::parse_ref(f.ref);
  auto http = trs_http(ctx);
  struct Shown {
    std::string registry;
    trs::Tool tool;
    std::vector<std::pair<std::string, std::optional<std::vector<trs::ToolFile>>>> files;  // per type
  };
  Shown s = first_knowing(ctx, http, f.trs, ref.id, [&](trs::Client& c) {
    Shown out{c.registry().name, c.tool(ref.id), {}};
    if (!ref.version.empty()) {
      const auto v = c.version(ref.id, ref.version);
      for (const auto& type : v.descriptor_types) {
        std::string t;
        try {
          t = trs::normalize_type(type);
        } catch (const Error&) {
          continue;  // a type impact does not know is shown, not listed
        }
        out.files.emplace_back(t, c.files(ref.id, ref.version, t));
      }
      // only the version asked for
      std::vector<trs::ToolVersion> keep;
      for (const auto& x : out.tool.versions)
        if (x.name == ref.version || x.id == ref.version) keep.push_back(x);
      if (keep.empty()) keep.push_back(v);
      out.tool.versions = keep;
    }
    return out;
  });
  if (ctx.json()) {
    nlohmann::json j = s.tool;
    j["registry"] = s.registry;
    if (!ref.version.empty()) {
      j["files"] = nlohmann::json::object();
      for (const auto& [type, files] : s.files) j["files"][type] = files ? nlohmann::json(*files) : nlohmann::json(nullptr);
    }
    ctx.term().print_json(j);
    return;
  }
  const auto& tool = s.tool;
  Table kv{{"KEY", "VALUE"}, {}};
  auto row = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) kv.rows.push_back({k, v});
  };
  row("registry", s.registry);
  row("id", tool.id);
  row("name", tool.name);
  row("class", tool.tool_class);
  row("organization", tool.organization);
  row("authors", join(tool.authors(), ", "));
  row("types", join(tool.descriptor_types()));
  row("url", tool.url);
  row("description", tool.description);
  // Only the description gives way (on a terminal, without --wide); an id or URL is never cut.
  if (ctx.term().cuts()) {
    const auto room = static_cast<std::size_t>(std::max(ctx.term().width() - 14, 8));
    for (auto& r : kv.rows)
      if (r[0] == "description") r[1] = cut_to(visible(r[1]), room);
  }
  ctx.term().print_table(kv, ctx.format());
  ctx.term().out() << '\n';
  Table vt{{"VERSION", "TYPES", "PRODUCTION", "AUTHORS"}, {}};
  for (const auto& v : tool.versions)
    vt.rows.push_back({v.name.empty() ? v.id : v.name, join(v.descriptor_types),
                       v.is_production ? (*v.is_production ? "yes" : "no") : "", join(v.authors, ", ")});
  print_fitting(ctx, std::move(vt), {3});
  if (ref.version.empty()) return;
  Table ft{{"TYPE", "PATH", "FILE_TYPE", "CHECKSUM"}, {}};
  for (const auto& [type, files] : s.files) {
    if (!files) {
      ft.rows.push_back({type, "", "(the registry does not list files)", ""});
      continue;
    }
    for (const auto& file : *files) ft.rows.push_back({type, file.path, file.file_type, checksums_text(file.checksums)});
  }
  ctx.term().out() << '\n';
  ctx.term().print_table(ft, ctx.format());
}

void files(Context& ctx, const WorkflowFlags& f) {
  const auto ref = versioned(f.ref);
  auto http = trs_http(ctx);
  struct Listed {
    std::string registry, type;
    std::optional<std::vector<trs::ToolFile>> files;
    trs::FileWrapper primary;
  };
  Listed l = first_knowing(ctx, http, f.trs, ref.id, [&](trs::Client& c) {
    Listed out{c.registry().name, "", std::nullopt, {}};
    out.type = f.type.empty() ? pick_type(c.version(ref.id, ref.version), f.type, f.ref) : trs::normalize_type(f.type);
    out.files = c.files(ref.id, ref.version, out.type);
    if (!out.files) out.primary = c.descriptor(ref.id, ref.version, out.type);  // tells "no /files" from "no version"
    return out;
  });
  std::vector<trs::ToolFile> list;
  if (l.files) list = *l.files;
  else list.push_back({"(primary descriptor)", "PRIMARY_DESCRIPTOR", l.primary.checksums});
  if (ctx.json()) {
    ctx.term().print_json({{"registry", l.registry}, {"id", ref.id}, {"version", ref.version}, {"type", l.type},
                           {"listed", l.files.has_value()}, {"files", list}}, false, "files");
    return;
  }
  if (!l.files) ctx.term().note(l.registry + " does not list files (/files): only the primary descriptor is known");
  Table t{{"PATH", "FILE_TYPE", "CHECKSUM"}, {}};
  for (const auto& x : list) t.rows.push_back({x.path, x.file_type, checksums_text(x.checksums)});
  ctx.term().print_table(t, ctx.format());
}

void fetch(Context& ctx, const WorkflowFlags& f) {
  const auto ref = versioned(f.ref);
  if (f.dir.empty()) throw Error(ErrorKind::usage, "give the folder to write into: -o DIR");
  auto http = trs_http(ctx);
  std::string registry;
  const trs::Fetched got = first_knowing(ctx, http, f.trs, ref.id, [&](trs::Client& c) {
    const std::string type = f.type.empty() ? pick_type(c.version(ref.id, ref.version), f.type, f.ref) : trs::normalize_type(f.type);
    registry = c.registry().name;
    return trs::fetch(c, ref.id, ref.version, type, f.dir);
  });
  if (ctx.json()) {
    nlohmann::json j = got;
    j["registry"] = registry;
    j["dir"] = f.dir;
    ctx.term().print_json(j);
    return;
  }
  for (const auto& n : got.notes) ctx.term().warn(n);
  Table t{{"PATH", "FILE_TYPE", "SIZE", "VERIFIED"}, {}};
  for (const auto& x : got.files)
    t.rows.push_back({x.path, x.file_type, std::to_string(x.size), x.verified.empty() ? "no checksum" : x.verified});
  ctx.term().print_table(t, ctx.format());
  if (ctx.term().err_tty())
    ctx.term().note(fmt::format("{} file(s) in {}; the workflow: {}", got.files.size(), f.dir,
                                (std::filesystem::path(f.dir) / got.primary).string()));
}

}  // namespace

TrsFetched fetch_trs_workflow(Context& ctx, const std::string& ref_text, const std::string& type,
                              const std::vector<std::string>& wanted, const std::filesystem::path& dir) {
  const auto ref = versioned(ref_text);
  auto http = trs_http(ctx);
  return first_knowing(ctx, http, wanted, ref.id, [&](trs::Client& c) {
    TrsFetched out;
    out.registry = c.registry();
    const std::string t = type.empty() ? pick_type(c.version(ref.id, ref.version), type, ref_text) : trs::normalize_type(type);
    out.fetched = trs::fetch(c, ref.id, ref.version, t, dir);
    return out;
  });
}

void register_workflow(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<WorkflowFlags>();
  auto* wf = add_command(app, "workflow");
  wf->require_subcommand(1);
  wf->footer("Examples:\n  impact workflow search variants --type CWL\n  impact workflow show 2\n"
             "  impact workflow fetch '#workflow/github.com/org/repo:main' -o wf/");

  auto* s = wf->add_subcommand("search", "List the registries' workflows, or those whose name or description holds TEXT");
  s->add_option("text", f->text, "Text to look for in names and descriptions");
  s->add_option("--type", f->type, "Only this descriptor type (CWL, WDL, NFL, SMK, GALAXY)");
  s->add_option("--class", f->tool_class, "Only this tool class (e.g. Workflow, CommandLineTool)");
  s->add_option("--trs", f->trs, "Only this registry of the profile, or a registry URL (repeatable)");
  s->add_option("--limit", f->limit, "At most this many workflows per registry")->capture_default_str();
  s->footer("TEXT is looked for in names, then in descriptions (TRS has no full-text search). Listings follow\n"
            "the registry's next_page links, bounded by --limit, 20 pages and 60 seconds.\n\n"
            "Examples:\n  impact workflow search variants --type CWL\n  impact workflow search --trs workflowhub --json");
  s->callback(ctx.action([&ctx, f] { search(ctx, *f); }));

  auto* sh = wf->add_subcommand("show", "Show a workflow: versions, types, authors; with :VERSION also its files and checksums");
  sh->add_option("id", f->ref, "ID or ID:VERSION (ids as the registry gives them, e.g. #workflow/github.com/org/repo)")->required();
  sh->add_option("--trs", f->trs, "The registry (a name of the profile, or a URL)");
  sh->footer("Examples:\n  impact workflow show 2\n  impact workflow show '#workflow/github.com/org/repo:main' --json");
  sh->callback(ctx.action([&ctx, f] { show(ctx, *f); }));

  auto* fl = wf->add_subcommand("files", "List the files of a workflow version (paths relative to its descriptor)");
  fl->add_option("id", f->ref, "ID:VERSION")->required();
  fl->add_option("--type", f->type, "Descriptor type (default: the version's only one)");
  fl->add_option("--trs", f->trs, "The registry (a name of the profile, or a URL)");
  fl->footer("Examples:\n  impact workflow files 2:1\n  impact workflow files '#workflow/github.com/org/repo:main' --type WDL");
  fl->callback(ctx.action([&ctx, f] { files(ctx, *f); }));

  auto* fe = wf->add_subcommand("fetch", "Write a workflow version's descriptor and its files into a folder, verified");
  fe->add_option("id", f->ref, "ID:VERSION")->required();
  fe->add_option("--type", f->type, "Descriptor type (default: the version's only one)");
  fe->add_option("-o,--output", f->dir, "Folder to write into (created; nothing is written outside it)")->required();
  fe->add_option("--trs", f->trs, "The registry (a name of the profile, or a URL)");
  fe->footer("Each file keeps its path below the folder, is checked against the registry's checksum where it gives\n"
             "one, and is written to NAME.impact-part first, then renamed. A path that would leave the folder, or\n"
             "a link in it, is refused.\n\nExamples:\n  impact workflow fetch 2:1 -o count-variants/\n"
             "  impact workflow fetch '#workflow/github.com/org/repo:main' --type CWL -o wf/");
  fe->callback(ctx.action([&ctx, f] { fetch(ctx, *f); }));
}

}  // namespace impact::cli
