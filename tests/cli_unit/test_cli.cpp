// The CLI run in-process: impact::cli::run with argv and a Terminal writing into string streams (the test
// double, as gh's iostreams.Test()), each test in its own temporary XDG home. For what needs the binary
// (signals, exit of the process, the federation) see tests/cli/*.test.js.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../unit/temp_dir.hpp"
#include "context.hpp"
#include "outcome.hpp"
#include "impact/version.hpp"

namespace {

using impact::cli::Terminal;

// Sets environment variables (or unsets them: nullopt) for one test and restores them afterwards.
class EnvScope {
 public:
  explicit EnvScope(const std::map<std::string, std::optional<std::string>>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      set(name, value);
    }
  }
  ~EnvScope() {
    for (const auto& [name, value] : saved_) set(name, value);
  }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  static void set(const std::string& name, const std::optional<std::string>& value) {
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

// A temporary home: XDG folders inside it, and none of the variables that would select another
// configuration, profile or token.
class Home {
 public:
  Home()
      : env_({{"HOME", dir_.path().string()},
              {"XDG_CONFIG_HOME", (dir_.path() / "config").string()},
              {"XDG_STATE_HOME", (dir_.path() / "state").string()},
              {"XDG_CACHE_HOME", (dir_.path() / "cache").string()},
              {"IMPACT_CONFIG", std::nullopt},
              {"IMPACT_PROFILE", std::nullopt},
              {"IMPACT_TOKEN", std::nullopt},
              {"NO_COLOR", std::nullopt}}) {}
  std::filesystem::path config_file() const { return dir_.path() / "config" / "impact" / "config.toml"; }

 private:
  impact::test::TempDir dir_;
  EnvScope env_;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

// `impact ARGS...` on a terminal with the given traits (by default: not a TTY, no colour, 80 columns).
Result run_impact(std::vector<std::string> args, Terminal::Traits traits = {}) {
  args.insert(args.begin(), "impact");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  const int code =
      impact::cli::run(static_cast<int>(args.size()), argv.data(), Terminal::with_traits(out, err, traits));
  return {code, out.str(), err.str()};
}

}  // namespace

TEST_CASE("--help-exit-codes prints the table on stdout and exits 0") {
  Home home;
  auto r = run_impact({"--help-exit-codes"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.rfind("Exit codes:\n", 0) == 0);
  CHECK(r.out.find("  2    usage: bad arguments or input (also a search filter that no beacon that answered knows;\n"
                   "       the answers, printed, ignore it)\n") != std::string::npos);
  CHECK(r.out.find("  130  interrupted (Ctrl-C)\n") != std::string::npos);
}

TEST_CASE("a command's --help goes to the terminal's stdout and exits 0") {
  Home home;
  auto r = run_impact({"profile", "add", "--help"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("--registry") != std::string::npos);
  CHECK(r.out.find("Usage: impact profile add") != std::string::npos);
}

TEST_CASE("typos: the word is echoed with the closest command or option, one line, exit 2") {
  Home home;
  SUBCASE("a subcommand") {
    auto r = run_impact({"run", "lst"});
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "impact: unknown command 'lst' for 'impact run'\nhint: did you mean list? (run: impact run --help)\n");
  }
  SUBCASE("a command") {
    auto r = run_impact({"serch", "individuals"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown command 'serch'\nhint: did you mean search? (run: impact --help)\n");
  }
  SUBCASE("a global option") {
    auto r = run_impact({"--jsn", "profile", "list"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown option '--jsn' for 'impact profile list'\n"
                   "hint: did you mean --json? (run: impact profile list --help)\n");
  }
  SUBCASE("an option of the command, with its value after it (CLI11 reported them backwards)") {
    auto r = run_impact({"run", "list", "--stat", "RUNNING"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown option '--stat' for 'impact run list'\n"
                   "hint: did you mean --state? (run: impact run list --help)\n");
  }
  SUBCASE("-o json, as kubectl has it") {
    auto r = run_impact({"profile", "list", "-o", "json"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown option '-o' for 'impact profile list'\n"
                   "hint: choose the output format with --format table|tsv|json, or --json (run: impact profile list --help)\n");
  }
  SUBCASE("an argument a command does not take") {
    auto r = run_impact({"profile", "list", "extra"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unexpected argument 'extra' for 'impact profile list'\nhint: run: impact profile list --help\n");
  }
  SUBCASE("an option without its value") {
    auto r = run_impact({"profile", "add", "x", "--wes"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: option --wes of 'impact profile add' needs a value\nhint: run: impact profile add --help\n");
  }
  SUBCASE("CLI11's checks and conversions, in words") {
    auto f = run_impact({"--format", "xml", "version"});
    CHECK(f.code == 2);
    CHECK(f.err == "impact: --format: 'xml' is not one of table, tsv, json\nhint: run: impact version --help\n");
    auto n = run_impact({"run", "list", "--limit", "abc"});
    CHECK(n.code == 2);
    CHECK(n.err == "impact: --limit: 'abc' is not a number\nhint: run: impact run list --help\n");
    auto sh = run_impact({"completion", "tcsh"});
    CHECK(sh.code == 2);
    CHECK(sh.err == "impact: SHELL: 'tcsh' is not one of bash, zsh, fish\nhint: run: impact completion --help\n");
    auto file = run_impact({"profile", "add", "x", "--client-secret-file", "/nonexistent/secret"});
    CHECK(file.code == 2);
    CHECK(file.err == "impact: --client-secret-file: no such file: /nonexistent/secret\nhint: run: impact profile add --help\n");
  }
  SUBCASE("help of an unknown command") {
    auto r = run_impact({"help", "serch"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown command 'serch'\nhint: did you mean search? (run: impact --help)\n");
  }
}

TEST_CASE("run submit --timeout needs --wait (or --batch), and says so in its help") {
  Home home;
  auto r = run_impact({"run", "submit", "x.cwl", "--timeout", "1h"});
  CHECK(r.code == 2);
  CHECK(r.err == "impact: --timeout needs --wait (or --batch): without it the command does not wait\n"
                 "hint: run: impact run submit --help\n");
  auto t = run_impact({"task", "submit", "--image", "alpine", "--cmd", "true", "--poll-interval", "5s"});
  CHECK(t.code == 2);
  CHECK(t.err.find("impact: --poll-interval needs --wait: without it the command does not wait\n") == 0);
  auto help = run_impact({"run", "submit", "--help"}, {false, false, 200});
  CHECK(help.out.find("With --wait or --batch: stop waiting after this long (exit 8)") != std::string::npos);
}

TEST_CASE("a group alone prints its help (exit 0); impact help CMD is CMD --help") {
  Home home;
  auto bare = run_impact({"run"});
  CHECK(bare.code == 0);
  CHECK(bare.err.empty());
  CHECK(bare.out.find("Usage: impact run") != std::string::npos);
  CHECK(bare.out.find("  submit") != std::string::npos);
  auto help = run_impact({"help", "run"});
  CHECK(help.code == 0);
  CHECK(help.out == bare.out);
  auto sub = run_impact({"help", "run", "submit"});
  CHECK(sub.code == 0);
  CHECK(sub.out == run_impact({"run", "submit", "--help"}).out);
  CHECK(sub.out.find("Usage: impact run submit") != std::string::npos);
  auto top = run_impact({"help"});
  CHECK(top.code == 0);
  CHECK(top.out.find("Usage: impact") != std::string::npos);
}

TEST_CASE("help is wrapped to the terminal and names the global options; a command shows its own examples") {
  Home home;
  for (int width : {60, 80, 120}) {
    auto r = run_impact({"run", "submit", "--help"}, {false, false, width});
    REQUIRE(r.code == 0);
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) CHECK_MESSAGE(impact::cli::display_width(line) <= static_cast<std::size_t>(width), line);
    // No word is split: every word of the unwrapped help is still there.
    CHECK(r.out.find("--timeout") != std::string::npos);
  }
  auto r = run_impact({"profile", "list", "--help"});
  CHECK(r.out.find("Global options (see impact --help):\n  --profile NAME, --json") !=
        std::string::npos);
  CHECK(r.out.find("impact profile list") != std::string::npos);
  CHECK(r.out.find("impact profile add ega") == std::string::npos);  // the group's examples stay on the group's page
}

TEST_CASE("version --json is one JSON object with the version and the libraries") {
  Home home;
  auto r = run_impact({"version", "--json"});
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("version") == impact::version_string);
  CHECK_FALSE(j.at("curl").get<std::string>().empty());
  CHECK_FALSE(j.at("tls").get<std::string>().empty());
  CHECK(j.contains("build_type"));
  // The global --json before the command means the same.
  CHECK(nlohmann::json::parse(run_impact({"--json", "version"}).out) == j);
}

TEST_CASE("profile add, list and show in a temporary home") {
  Home home;
  auto r = run_impact({"profile", "add", "node1", "--wes", "https://wes.example.org/ga4gh/wes/v1", "--beacon",
                   "eu=https://eu.example.org/beacon/api"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.empty());
  CHECK(r.err.find("Saved profile 'node1' with 2 service(s) to " + home.config_file().string() + " (default)") !=
        std::string::npos);
  CHECK(std::filesystem::exists(home.config_file()));
  REQUIRE(run_impact({"profile", "add", "node2", "--issuer", "https://login.example.org/realms/x"}).code == 0);

  SUBCASE("list --json marks the default") {
    auto list = run_impact({"profile", "list", "--json"});
    REQUIRE(list.code == 0);
    const auto j = nlohmann::json::parse(list.out).at("profiles");  // a listing is an object, like every other
    REQUIRE(j.size() == 2);
    CHECK(j[0].at("name") == "node1");
    CHECK(j[0].at("default") == true);
    CHECK(j[1].at("name") == "node2");
    CHECK(j[1].at("default") == false);
  }
  SUBCASE("list: tab-separated lines without a header when stdout is not a terminal") {
    auto list = run_impact({"profile", "list"});
    REQUIRE(list.code == 0);
    CHECK(list.out ==
          "node1\t*\t\t1\t0\tyes\t-\n"
          "node2\t\thttps://login.example.org/realms/x\t0\t0\t-\t-\n");
  }
  SUBCASE("list: an aligned table with a bold header on a colour terminal; the issuer URL whole though wider") {
    auto list = run_impact({"profile", "list"}, {.tty = true, .color = true, .width = 60});
    REQUIRE(list.code == 0);
    CHECK(list.out.rfind("\033[1mNAME", 0) == 0);
    std::istringstream lines(list.out);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) ++n;
    CHECK(n == 3);
    CHECK(list.out.find("https://login.example.org/realms/x  0") != std::string::npos);  // a URL is never cut
    CHECK(list.out.find("…") == std::string::npos);
    // --no-color wins over the terminal.
    CHECK(run_impact({"--no-color", "profile", "list"}, {.tty = true, .color = true, .width = 60}).out.find('\033') ==
          std::string::npos);
  }
  SUBCASE("show: one profile, by name or the default") {
    auto shown = run_impact({"profile", "show", "node2", "--json"});
    REQUIRE(shown.code == 0);
    const auto j = nlohmann::json::parse(shown.out);
    CHECK(j.at("issuer") == "https://login.example.org/realms/x");
    CHECK(j.at("client_id") == "impact-cli");
    CHECK(j.at("default") == false);
    CHECK(nlohmann::json::parse(run_impact({"profile", "show", "--json"}).out).at("name") == "node1");
    CHECK(run_impact({"profile", "show"}).out ==
          "name\tnode1\nbeacon.eu\thttps://eu.example.org/beacon/api\nwes\thttps://wes.example.org/ga4gh/wes/v1\n");
  }
  SUBCASE("show of a profile that does not exist: exit 1 with a hint") {
    auto missing = run_impact({"profile", "show", "nope"});
    CHECK(missing.code == 1);
    CHECK(missing.out.empty());
    CHECK(missing.err == "impact: no profile named 'nope'\nhint: run: impact profile list\n");
  }
}

TEST_CASE("usage errors exit 2 with one line and a hint naming the command's help") {
  Home home;
  SUBCASE("a missing argument") {
    auto r = run_impact({"profile", "add"});
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("impact: ", 0) == 0);
    CHECK(r.err.find("impact: missing NAME for 'impact profile add'\n") == 0);
    CHECK(r.err.find("\nhint: run: impact profile add --help\n") != std::string::npos);
  }
  SUBCASE("an unknown command") {
    auto r = run_impact({"frobnicate"});
    CHECK(r.code == 2);
    CHECK(r.err == "impact: unknown command 'frobnicate'\nhint: run: impact --help\n");
  }
  SUBCASE("a profile without services, refused before anything is written") {
    auto r = run_impact({"profile", "add", "empty"});
    CHECK(r.code == 2);
    CHECK(r.err.find("impact: the profile would have no services\n") == 0);
    CHECK_FALSE(std::filesystem::exists(home.config_file()));
  }
}

TEST_CASE("typed flags: a duration without a unit is refused before anything runs (exit 2), help says DURATION/SIZE") {
  Home home;
  for (const auto& args : std::vector<std::vector<std::string>>{{"auth", "status", "--min-valid", "72"},
                                                                {"token", "--min-valid", "72"}}) {
    auto r = run_impact(args);
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("impact: --min-valid: invalid duration '72': no unit; write 72s, 72m, 72h or 72d\n", 0) == 0);
  }
  auto slow = run_impact({"run", "wait", "x", "--poll-interval", "2h"});
  CHECK(slow.code == 2);
  CHECK(slow.err.rfind("impact: --poll-interval: 2h is more than the maximum, 1h\n", 0) == 0);
  auto size = run_impact({"results", "download", "run-1", "--part-size", "64MB"});
  CHECK(size.code == 2);
  CHECK(size.err.find("invalid size '64MB'") != std::string::npos);
  // The same flag, the same limits: --timeout of search and of run wait.
  CHECK(run_impact({"search", "individuals", "--timeout", "0s"}).err.rfind("impact: --timeout: 0s is less than the minimum, 1s\n", 0) == 0);
  CHECK(run_impact({"run", "wait", "x", "--timeout", "0s"}).err.rfind("impact: --timeout: 0s is less than the minimum, 1s\n", 0) == 0);

  const auto help = [](std::vector<std::string> args) {
    args.push_back("--help");
    return run_impact(args).out;
  };
  CHECK(help({"auth", "status"}).find("--min-valid DURATION") != std::string::npos);
  CHECK(help({"run", "wait"}).find("--poll-interval DURATION") != std::string::npos);
  CHECK(help({"run", "wait"}).find("--timeout DURATION") != std::string::npos);
  CHECK(help({"search", "individuals"}).find("--timeout DURATION") != std::string::npos);
  CHECK(help({"results", "download"}).find("--part-size SIZE") != std::string::npos);
}

TEST_CASE("the CLI words the library's remedies: commands and flags, with --profile when one was given") {
  Home home;
  REQUIRE(run_impact({"profile", "add", "node1", "--issuer", "https://login.example.org/realms/x"}).code == 0);
  REQUIRE(run_impact({"profile", "add", "node2", "--issuer", "https://login.example.org/realms/y"}).code == 0);
  SUBCASE("not logged in: the default profile's hint names no profile") {
    auto r = run_impact({"token"});
    CHECK(r.code == 4);
    CHECK(r.err == "impact: not logged in to profile 'node1'\nhint: run: impact login\n");
  }
  SUBCASE("not logged in to the profile chosen with --profile: the hint keeps it") {
    auto r = run_impact({"--profile", "node2", "token"});
    CHECK(r.code == 4);
    CHECK(r.err == "impact: not logged in to profile 'node2'\nhint: run: impact --profile node2 login\n");
  }
  SUBCASE("a library hint of facts comes first, then the remedy's words") {
    std::ostringstream out, err;
    impact::cli::Context ctx(Terminal::with_traits(out, err, {}));
    impact::Error e = impact::Error(impact::ErrorKind::not_found, "nothing to download for run r-1")
                          .with_remedy(impact::Remedy::run_wait)
                          .with_fact("run_id", "r-1")
                          .with_fact("state", "RUNNING");
    CHECK(ctx.hint_for(e) == "the run is RUNNING: wait for it (impact run wait r-1)");
    ctx.globals.profile = "node2";
    CHECK(ctx.hint_for(e) == "the run is RUNNING: wait for it (impact --profile node2 run wait r-1)");
    e.with_hint("nothing is under the result prefix");
    CHECK(ctx.hint_for(e) == "nothing is under the result prefix; the run is RUNNING: wait for it (impact --profile node2 run wait r-1)");
    CHECK(ctx.hint_for(impact::Error(impact::ErrorKind::generic, "x", "only facts")) == "only facts");
    impact::Error lost = impact::Error(impact::ErrorKind::network, "the answer was lost")
                             .with_remedy(impact::Remedy::task_list_tag)
                             .with_fact("tag", "impact_request_id")
                             .with_fact("value", "abc");
    CHECK(ctx.hint_for(lost) == "the task may exist: look for it with: impact --profile node2 task list --tag impact_request_id=abc");
  }
}

TEST_CASE("many items, one exit rule: 0, 6 when some failed, the first error's code when all did") {
  std::ostringstream out, err;
  impact::cli::Context ctx(Terminal::with_traits(out, err, {}));
  const impact::Error denied(impact::ErrorKind::forbidden, "access denied", "ask for access");
  const impact::Error gone(impact::ErrorKind::not_found, "no such object");
  SUBCASE("nothing failed") {
    impact::cli::Outcome o(ctx, "objects");
    o.succeeded(3);
    o.finish();
    CHECK(ctx.exit_code == 0);
    CHECK(err.str().empty());
  }
  SUBCASE("some failed: 6, each failure reported once with its label, and its --json record") {
    impact::cli::Outcome o(ctx, "objects");
    o.succeeded();
    const auto rec = o.failed({{"uri", "drs://x/1"}}, denied, "drs://x/1");
    o.finish();
    CHECK(ctx.exit_code == 6);
    CHECK(err.str() == "impact: drs://x/1: access denied\nhint: ask for access\n");
    CHECK(rec == nlohmann::json{{"uri", "drs://x/1"}, {"error", "access denied"}, {"kind", "forbidden"}, {"hint", "ask for access"}});
  }
  SUBCASE("all failed: the first failure's code, and a closing line that names it") {
    impact::cli::Outcome o(ctx, "objects");
    o.failed({}, denied, "a");
    o.failed({}, gone, "b");
    o.finish();
    CHECK(ctx.exit_code == 5);
    CHECK(err.str().find("impact: all 2 objects failed; the first: access denied\nhint: ask for access\n") != std::string::npos);
  }
  SUBCASE("all failed, one of them without an error (a run that had ended): 6") {
    impact::cli::Outcome o(ctx, "runs");
    o.failed({}, gone, "r1");
    const auto rec = o.not_done({{"run_id", "r2"}}, "the run ended before the cancel took effect", "r2");
    o.finish();
    CHECK(ctx.exit_code == 6);
    CHECK(rec.at("kind") == "partial");
  }
  SUBCASE("with --json nothing is printed per item; when all failed, one closing line") {
    ctx.globals.json = true;
    impact::cli::Outcome o(ctx, "beacons");
    o.failed({{"name", "b1"}}, gone, "b1");
    o.finish();
    CHECK(ctx.exit_code == 1);
    CHECK(err.str() == "impact: no such object\n");
  }
}

TEST_CASE("a query the Beacon rules refuse is worded in the command's flags, before any configuration is read") {
  Home home;
  auto r = run_impact({"search", "variants", "--start", "43045711"});
  CHECK(r.code == 2);
  CHECK(r.err == "impact: --start needs --chrom\nhint: e.g. --chrom 17 with --start 43045711\n");
  auto lengths = run_impact({"search", "variants", "--gene", "BRCA1", "--min-length", "5", "--max-length", "2"});
  CHECK(lengths.code == 2);
  CHECK(lengths.err == "impact: --min-length is greater than --max-length\n");
  auto filter = run_impact({"search", "individuals", "--filter", ""});
  CHECK(filter.code == 2);
  CHECK(filter.err == "impact: an empty --filter term\nhint: e.g. HP:0001250\n");
}

// `run` registers only the group of the command argv names (start-up time); every command listed by
// --help must still be found that way, with its own help, and global options before it must not be taken
// for the command.
TEST_CASE("each command of --help is found when argv names it, after global options too") {
  Home home;
  const auto all = run_impact({"--help"});
  REQUIRE(all.code == 0);
  const auto from = all.out.find("Subcommands:\n");
  REQUIRE(from != std::string::npos);
  std::istringstream lines(all.out.substr(from + 13));
  std::vector<std::string> commands;
  for (std::string line; std::getline(lines, line) && line.rfind("  ", 0) == 0;) {
    if (line[2] == ' ') continue;  // a description wrapped to the width
    std::istringstream words(line);
    std::string name;
    words >> name;
    commands.push_back(name);
  }
  CHECK(commands.size() >= 15);
  for (const auto& name : commands) {
    CAPTURE(name);
    const auto r = run_impact({name, "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("Usage: impact " + name) != std::string::npos);
    const auto g = run_impact({"--profile", "version", "--format", "tsv", "--no-color", name, "--help"});
    CHECK(g.code == 0);
    CHECK(g.out.find("Usage: impact " + name) != std::string::npos);
  }
  // The hidden command of the completion scripts has a group of its own.
  const auto c = run_impact({"__complete", "profile"});
  CHECK(c.code == 0);
  CHECK(c.err.empty());
}
