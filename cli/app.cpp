#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "help.hpp"
#include "jq.hpp"
#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/session.hpp"

namespace impact::cli {

void VerboseObserver::on_exchange(const http::Exchange& ex) {
  auto& err = term_.err();
  std::string status = ex.status ? std::to_string(ex.status) : "---";
  err << term_.err_style("*", Terminal::Style::dim) << ' ' << ex.method << ' ' << ex.url << ' ' << status << ' '
      << fmt::format("{:.0f}ms", ex.seconds * 1000);
  if (ex.attempt > 1) err << " (attempt " << ex.attempt << ")";
  if (!ex.error.empty()) err << " error: " << ex.error;
  err << '\n';
  if (!headers_) return;
  for (const auto& h : ex.request_headers) err << "> " << h.name << ": " << h.value << '\n';
  for (const auto& h : ex.response_headers) err << "< " << h.name << ": " << h.value << '\n';
}

Format Context::format() const {
  if (globals.json || !globals.json_fields.empty() || !globals.jq.empty() || globals.format == "json") return Format::json;
  if (globals.format == "tsv") return Format::tsv;
  if (globals.format == "table") return Format::table;
  return term_.out_tty() ? Format::table : Format::tsv;
}

void Context::apply_output_options() {
  if (globals.no_color) term_.disable_color();
  term_.set_wide(globals.wide);
  term_.set_tsv_header(globals.header);
  const bool json = globals.json || !globals.json_fields.empty() || !globals.jq.empty();
  // gh refuses flags that ask for two things at once (cmdutil.MutuallyExclusive); so do we, rather than
  // pick one silently.
  if (json && !globals.format.empty() && globals.format != "json")
    throw Error(ErrorKind::usage,
                "--" + std::string(globals.jq.empty() ? "json" : "jq") + " and --format " + globals.format +
                    " ask for two output formats",
                "use one of them: --json (or --format json) for JSON, --format " + globals.format + " for " +
                    (globals.format == "tsv" ? "tab-separated lines" : "the table"));
  std::vector<std::string> fields;
  for (std::size_t start = 0; start < globals.json_fields.size();) {
    std::size_t comma = globals.json_fields.find(',', start);
    if (comma == std::string::npos) comma = globals.json_fields.size();
    if (comma > start) fields.push_back(globals.json_fields.substr(start, comma - start));
    start = comma + 1;
  }
  std::shared_ptr<JqProgram> jq;
  if (!globals.jq.empty()) jq = std::make_shared<JqProgram>(globals.jq);
  term_.set_json_filter(std::move(fields), std::move(jq));
}

std::filesystem::path Context::config_path() const {
  return globals.config.empty() ? Config::default_path() : std::filesystem::path(globals.config);
}

Config Context::load_config(bool to_create) const {
  const auto path = config_path();
  const char* env = std::getenv("IMPACT_CONFIG");
  const bool named = !globals.config.empty() || (env && *env);
  std::error_code ec;
  if (named && !to_create && !std::filesystem::exists(path, ec))
    throw Error(ErrorKind::config, "the configuration file " + path.string() + " does not exist",
                "check the path given to " + std::string(globals.config.empty() ? "$IMPACT_CONFIG" : "--config") +
                    ", or create the file with: impact --config " + path.string() + " profile add NAME ...");
  Config c = Config::load(path);
  for (const auto& w : c.warnings()) term_.warn(w);
  return c;
}

const Profile& Context::profile(const Config& config) const {
  const Profile& p = config.select(globals.profile.empty() ? std::nullopt : std::optional<std::string>(globals.profile));
  active_profile_ = p.name;
  profile_cacert_ = p.cacert;  // the command has read the configuration: no need to read it again for this
  return p;
}

// The CA bundle of the profile in use ("" when none, or when no profile can be chosen: the command says why
// soon enough). Read once per command, and not at all once the command has chosen its profile.
const std::string& Context::profile_cacert() const {
  if (!profile_cacert_) {
    profile_cacert_.emplace();
    try {
      const Config c = Config::load(config_path());
      *profile_cacert_ = profile(c).cacert;
    } catch (const Error&) {
    }
  }
  return *profile_cacert_;
}

http::Options Context::http_options() { return http_options_with(profile_cacert()); }

http::Options Context::http_options(const Profile& p) { return http_options_with(p.cacert); }

http::Options Context::http_options_with(const std::string& profile_ca) {
  http::Options o = http::default_options();
  // --cacert, else the profile's cacert, else SSL_CERT_FILE / CURL_CA_BUNDLE, else the system's store.
  if (!globals.cacert.empty()) o.ca_file = globals.cacert;
  else if (!profile_ca.empty()) o.ca_file = profile_ca;
  if (globals.verbose > 0 || globals.debug) {
    if (!observer_) observer_.emplace(term_, globals.debug);
    o.observer = &*observer_;
    o.debug = globals.debug;
  }
  return o;
}

auth::Credentials& Context::credentials(const Profile& profile) {
  if (!credentials_) credentials_ = auth::from_environment(profile);
  if (!credentials_) credentials_ = std::make_unique<auth::Session>(profile, http_options(profile));
  return *credentials_;
}

auth::Credentials* Context::login_if_any(const Profile& profile) {
  try {
    auth::Credentials& c = credentials(profile);
    return c.has_token() ? &c : nullptr;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::auth_required) throw;
    return nullptr;
  }
}

namespace {

constexpr const char* kOverview = R"(impact: work with a GA4GH federated biomedical cloud from the command line.

The usual journey:
  impact profile add NODE --registry URL   configure a federation node from its service registry
  impact login                             log in with your institution (device flow)
  impact search individuals --filter HP:0001250
                                           ask every beacon of the node
  impact drs download drs://HOST/ID        fetch the data you are entitled to, verified
  impact decrypt FILE.c4gh -o FILE         read Crypt4GH-encrypted data with your key (impact keys)
  impact run submit WORKFLOW --wait        run an analysis in the secure environment
  impact results download RUN_ID           bring the non-sensitive results home

Check your setup with: impact doctor
Every command: impact help COMMAND (or impact COMMAND --help). Exit codes: impact --help-exit-codes.
)";

constexpr const char* kExitCodes = R"(Exit codes:
  0    success
  1    error (network, server, protocol, local files, configuration)
  2    usage: bad arguments or input (also a search filter that no beacon that answered knows;
       the answers, printed, ignore it)
  4    authentication needed or expired (run: impact login)
  5    permission denied (403, no visa for the data, or a Crypt4GH file not encrypted for your key)
  6    partial success: some beacons, objects or runs failed, the rest done
  8    still pending: a wait timed out while the work goes on (or a DRS object is not ready)
  9    run wait: a run is in a state outside the WES specification that names no error;
       impact stopped waiting, as it cannot tell whether that state ever changes
  10   run wait: a run ended in EXECUTOR_ERROR (a task of the workflow failed)
  11   run wait: a run ended in SYSTEM_ERROR (the engine or the service failed)
  12   run wait: a run ended CANCELED
  13   run wait: a run ended PREEMPTED
  14   run wait: a run ended in a state outside the WES specification that names an error
       (*_ERROR, such as UPLOADER_ERROR)
  130  interrupted (Ctrl-C)
With several runs, `run wait` exits with the highest of these codes; a timeout counts as 8, so a
failed run outranks one still running.
)";

extern "C" void on_sigint(int) { request_cancel(); }

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the process at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// The command line as it could be typed again: each argument quoted for a POSIX shell where it needs it.
// Empty when too long to be a useful hint.
std::string command_line(int argc, char** argv) {
  std::string line = "impact";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                         "-_./:=@%+,") == std::string_view::npos;
    line += ' ';
    if (plain) {
      line += a;
      continue;
    }
    line += '\'';
    for (char c : a) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line.size() <= 300 ? line : std::string();
}

// The top-level commands, in the order of `impact --help`: name, the summary that help lists, and the function
// that registers the command with its flags and subcommands.
struct Command {
  std::string_view name;
  const char* summary;
  void (*add)(CLI::App&, Context&);
};
const Command kCommands[] = {
    {"profile", "Manage profiles: the services of each federation node you use", register_profile},
    {"login", "Log in with the device flow (or a CI client's credentials)", register_login},
    {"logout", "Revoke the tokens (RFC 7009) and forget them", register_logout},
    {"token", "Print a valid access token, refreshing it if needed", register_token},
    {"auth", "Inspect the login state", register_auth},
    {"passport", "List the visas of your GA4GH Passport, verified", register_passport},
    {"search", "Ask every Beacon of the profile at once and merge the answers", register_search},
    {"beacon", "The profile's Beacon v2 services: what they are and which filters they know", register_beacon},
    {"drs", "Resolve and download GA4GH DRS objects (passport-aware, verified, resumable)", register_drs},
    {"run", "Submit, follow and manage workflow runs (GA4GH WES)", register_run},
    {"results", "List and download a run's results from the node's object storage", register_results},
    {"workflow", "Find and fetch registered workflows (GA4GH TRS registries)", register_workflow},
    {"task", "Run and manage single containerised tasks (GA4GH TES)", register_task},
    {"keys", "Manage Crypt4GH keys (to receive and decrypt controlled data)", register_keys},
    {"encrypt", "Encrypt a file with Crypt4GH for one or more recipients", register_encrypt},
    {"decrypt", "Decrypt a Crypt4GH file (edit lists, several readers)", register_decrypt},
    {"archive", "Controlled data from a GDI / Federated EGA archive (NeIC SDA download API)", register_archive},
    {"htsget", "Fetch slices of indexed BAM/CRAM/VCF/BCF files (GA4GH htsget 1.3)", register_htsget},
    {"service-info", "Show what each configured service says of itself (GA4GH service-info)", register_service_info},
    {"doctor", "Check each service of the profile: reachability (DNS, TCP, TLS), service-info, clock skew",
     register_doctor},
    {"version", "Print impact's version and the versions of the libraries it uses", register_version},
    {"completion", "Print the shell completion script for bash, zsh or fish", register_completion},
    {"__complete", "", register_complete},  // for the completion scripts, not for people: hidden
};

// The command word of argv: the first argument that is neither an option nor a global option's value; "--"
// when that separator comes first (no command is named; CLI11 makes of it what it always did).
std::string_view command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") return a;
    if (a.empty() || a[0] != '-') return a;
    if (a == "--profile" || a == "--format" || a == "--config" || a == "--cacert" || a == "--jq") ++i;  // its value follows
  }
  return {};
}

// Building CLI11's tree of every command and flag costs more than running `impact token` itself. So only
// what argv needs is registered: the command it names, with its flags and subcommands; with no command at all
// (--version, --help, the overview), none: the top-level help lists the commands from kCommands. The whole
// tree only for `completion`, which walks it, and for a word that names no command (its error suggests the
// nearest).
void register_commands(CLI::App& app, Context& ctx, int argc, char** argv) {
  const std::string_view word = command_word(argc, argv);
  if (word.empty()) return;
  for (const auto& c : kCommands) {
    if (c.name == word && c.name != "completion") {
      c.add(app, ctx);
      return;
    }
  }
  for (const auto& c : kCommands) c.add(app, ctx);
}

std::vector<CommandSummary> command_summaries() {
  std::vector<CommandSummary> out;
  for (const auto& c : kCommands) out.push_back({c.name, c.summary});
  return out;
}

// A word that reads as --json's FIELDS: names of letters, digits and _, separated by commas.
bool field_list(std::string_view w) {
  if (w.empty() || w.front() == ',' || w.back() == ',') return false;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const char c = w[i];
    const bool name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9');
    if (!name && !(c == ',' && w[i - 1] != ',')) return false;
  }
  return true;
}

// --json=FIELDS: only with the '=' (the word after a plain --json is never taken: it may be an id, as in
// `impact task get --json ID`, that reads like a field name). The fields are taken out of argv, so CLI11 sees a
// plain --json flag.
std::vector<std::string> take_json_fields(int argc, char** argv, std::string& fields) {
  std::vector<std::string> out;
  bool rest = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i == 0 || rest) {
      out.emplace_back(a);
      continue;
    }
    if (a == "--") rest = true;
    if (a.rfind("--json=", 0) == 0) {
      fields = std::string(a.substr(7));
      if (!field_list(fields))
        throw Error(ErrorKind::usage, "--json=" + fields + ": not a list of field names",
                    "name the fields with commas between them, e.g. --json=run_id,state");
      out.emplace_back("--json");
      continue;
    }
    out.emplace_back(a);
    if ((a == "--profile" || a == "--format" || a == "--config" || a == "--cacert" || a == "--jq") && i + 1 < argc)
      out.emplace_back(argv[++i]);  // a global option's value is never FIELDS
  }
  return out;
}

}  // namespace

CLI::App* add_command(CLI::App& app, std::string_view name) {
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    auto* cmd = app.add_subcommand(std::string(name), c.summary);
    if (!*c.summary) cmd->group("");  // hidden
    return cmd;
  }
  throw std::logic_error("add_command: no command " + std::string(name));
}

int run(int argc, char** argv) {
  install_signal_handlers();
  return run(argc, argv, Terminal::from_environment(std::cout, std::cerr));
}

int run(int argc, char** argv, Terminal terminal) {
  terminal.set_command_line(command_line(argc, argv));
  // `impact help run submit` is `impact run submit --help` (as gh and kubectl have it).
  std::vector<std::string> help_args;
  std::vector<char*> help_argv;
  const bool help_mode = command_word(argc, argv) == "help";
  if (help_mode) {
    bool dropped = false;
    for (int i = 0; i < argc; ++i) {
      if (!dropped && i > 0 && std::string_view(argv[i]) == "help") {
        dropped = true;
        continue;
      }
      help_args.emplace_back(argv[i]);
    }
    help_args.emplace_back("--help");
    for (auto& a : help_args) help_argv.push_back(a.data());
    argc = static_cast<int>(help_argv.size());
    argv = help_argv.data();
  }
  Context ctx(std::move(terminal));
  std::vector<std::string> args;
  try {
    args = take_json_fields(argc, argv, ctx.globals.json_fields);
  } catch (const Error& e) {
    ctx.term().error(e.what(), e.hint());
    return exit_code::usage;
  }
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  arg_ptrs.push_back(nullptr);
  argc = static_cast<int>(args.size());
  argv = arg_ptrs.data();

  CLI::App app{"impact: a command-line client for GA4GH federated biomedical clouds", "impact"};
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.set_help_all_flag("", "");
  bool exit_codes = false;
  bool show_version = false;
  auto& g = ctx.globals;
  app.add_option("--profile", g.profile, "Profile to use (default: $IMPACT_PROFILE, then the default profile)")
      ->group("Global options");
  app.add_flag("--json", g.json,
               "Print JSON (impact-json(7)); --json=FIELDS: only those fields, e.g. --json=run_id,state")
      ->group("Global options");
  app.add_option("--jq", g.jq, "Filter the JSON through a jq program (implies --json), e.g. --jq '.runs[].run_id'")
      ->type_name("EXPR")
      ->group("Global options");
  app.add_flag("--wide", g.wide, "Never shorten table cells (ids are never shortened in any case)")
      ->group("Global options");
  app.add_flag("--header", g.header, "Start TSV output with a line of column names")->group("Global options");
  app.add_option("--format", g.format, "Output format")
      ->check(CLI::IsMember({"table", "tsv", "json"}))
      ->group("Global options");
  app.add_flag("-v,--verbose", g.verbose, "Print one line per HTTP request on stderr")->group("Global options");
  app.add_flag("--debug", g.debug, "Also print HTTP headers (secrets redacted)")->group("Global options");
  app.add_flag("--no-color", g.no_color, "Never colour the output (also: NO_COLOR)")->group("Global options");
  app.add_option("--config", g.config, "Configuration file (default: $IMPACT_CONFIG, then XDG)")->group("Global options");
  app.add_option("--cacert", g.cacert, "CA bundle for TLS (default: $SSL_CERT_FILE, then the system store)")
      ->check(CLI::ExistingFile)
      ->group("Global options");
  app.add_flag("--version", show_version, "Print the version and exit")->group("Global options");
  app.add_flag("--help-exit-codes", exit_codes, "Print the table of exit codes")->group("Global options");

  app.formatter(help_formatter(ctx.term().width(), command_summaries()));
  register_commands(app, ctx, argc, argv);

  auto& term = ctx.term();
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      if (help_mode && !app.remaining(true).empty()) {  // impact help NOSUCH
        const auto p = describe_parse_error(app, CLI::ExtrasError(app.remaining(true)));
        term.error(p.message, p.hint);
        return exit_code::usage;
      }
      app.exit(e, term.out(), term.err());
      return exit_code::ok;
    } catch (const CLI::CallForAllHelp& e) {
      app.exit(e, term.out(), term.err());
      return exit_code::ok;
    } catch (const CLI::ParseError& e) {
      // CLI11's own words ("The following arguments were not expected: ...") never reach the user.
      const auto p = describe_parse_error(app, e);
      if (p.help) {  // a group alone (`impact run`): its help, as gh and kubectl do
        term.out() << p.help->help(p.help->get_parent() ? command_path(*p.help->get_parent()) : "");
        return exit_code::ok;
      }
      term.error(p.message, p.hint);
      return exit_code::usage;
    }
    if (g.no_color) term.disable_color();
    if (show_version) {
      print_version(ctx, false);
      return exit_code::ok;
    }
    if (exit_codes) {
      term.out() << kExitCodes;
      return exit_code::ok;
    }
    if (app.get_subcommands().empty()) {
      term.out() << kOverview;
      return exit_code::ok;
    }
    return ctx.exit_code;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) {
      term.error("interrupted", term.interrupt_hint());
      return exit_code::interrupted;
    }
    term.error(e.what(), ctx.hint_for(e));
    return exit_code_for(e.kind());
  } catch (const std::exception& e) {
    term.error(std::string("unexpected error: ") + e.what(), "this is a bug in impact; please report it");
    return exit_code::error;
  }
}

}  // namespace impact::cli
