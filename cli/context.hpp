// What every command gets: the global options, the terminal, and the library's settings built from them.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>


#include "impact/config.hpp"
#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/http.hpp"
#include "io.hpp"

// CLI11 itself only where commands are built (it costs every file that includes it a static initialisation
// at each start): here, its App is named only.
namespace CLI {
class App;
}  // namespace CLI

namespace impact::cli {

struct Globals {
  std::string profile;
  std::string format;   // table | tsv | json; empty = table on a TTY, tsv otherwise
  bool json = false;
  std::string json_fields;  // --json FIELDS (comma-separated; taken from argv before parsing, see app.cpp)
  std::string jq;           // --jq EXPR
  bool wide = false;        // --wide
  bool header = false;      // --header
  int verbose = 0;
  bool debug = false;
  bool no_color = false;
  std::string config;
  std::string cacert;
};

// Prints one line per HTTP exchange on stderr for -v, and the headers too for --debug. Every field it
// gets has already been redacted by the HTTP layer.
class VerboseObserver : public http::Observer {
 public:
  explicit VerboseObserver(const Terminal& term, bool headers) : term_(term), headers_(headers) {}
  void on_exchange(const http::Exchange& ex) override;

 private:
  const Terminal& term_;
  bool headers_;
};

class Context {
 public:
  explicit Context(Terminal term) : term_(std::move(term)) {}

  Globals globals;
  int exit_code = 0;  // a command that succeeds partly sets this instead of throwing
  const Terminal& term() const noexcept { return term_; }
  Terminal& term() noexcept { return term_; }

  Format format() const;           // from --json / --format and the TTY
  bool json() const { return format() == Format::json; }
  std::filesystem::path config_path() const;
  // Prints the file's warnings once. A file named by --config or $IMPACT_CONFIG must exist, unless
  // `to_create` (the command writes the file: profile add); the default file may be missing (no profiles).
  Config load_config(bool to_create = false) const;
  const Profile& profile(const Config& config) const;
  http::Options http_options();    // --cacert (else the profile's cacert), -v/--debug observer, user agent
  http::Options http_options(const Profile& p);  // the same for requests of profile `p`, not the one in use
  // The CA bundle that requests use when --cacert is not given, instead of the selected profile's (profile
  // add: the new profile's own, or none).
  void set_profile_cacert(std::string file) { profile_cacert_ = std::move(file); }
  http::Client client() { return http::Client(http_options()); }
  // The credentials for this profile: IMPACT_TOKEN when set, else the profile's login session. Built on
  // first use and kept for the life of the command.
  auth::Credentials& credentials(const Profile& profile);
  // The one rule for services that also answer anonymously (Beacon, WES): the profile's credentials when
  // it has a login (IMPACT_TOKEN, or a stored session, even an expired one that can be refreshed), else
  // nullptr: ask without a token.
  auth::Credentials* login_if_any(const Profile& profile);

  // The hint to show for `e`: its own, then the CLI's words for its remedy (the commands and flags to
  // use, with --profile NAME when the user gave one). See cli/hints.cpp.
  std::string hint_for(const Error& e) const;
  std::string hint_for(const std::string& hint, Remedy remedy, const std::map<std::string, std::string>& facts = {}) const;
  // "impact", or "impact --profile NAME" when the user chose the profile that way: how hints start a command.
  std::string impact_command() const;
  // The words for a service's refusal of a token that a new login would not fix ("" when it would).
  std::string refused_token_words(const Error& e) const;

  // Wraps a command's body so that the global options (colour) apply before it runs.
  template <class F>
  std::function<void()> action(F f) {
    return [this, f] {
      apply_output_options();
      f();
    };
  }
  // Colour, --wide, --header, --json FIELDS and --jq onto the terminal; Error(usage) for output flags that
  // contradict each other (--json with --format tsv).
  void apply_output_options();

 private:
  Terminal term_;
  std::optional<VerboseObserver> observer_;
  std::unique_ptr<auth::Credentials> credentials_;
  mutable std::string active_profile_;  // the profile chosen by profile(): hints look at its login
  mutable std::optional<std::string> profile_cacert_;
  const std::string& profile_cacert() const;
  http::Options http_options_with(const std::string& profile_ca);
};

// One registration function per top-level command, in the file of its group. Each starts with
// add_command(app, NAME), which adds the command with its one-line summary (kept in app.cpp's table of
// commands, which `impact --help` lists without registering the commands themselves).
CLI::App* add_command(CLI::App& app, std::string_view name);
void register_profile(CLI::App& app, Context& ctx);
void register_login(CLI::App& app, Context& ctx);
void register_logout(CLI::App& app, Context& ctx);
void register_token(CLI::App& app, Context& ctx);
void register_auth(CLI::App& app, Context& ctx);
void register_passport(CLI::App& app, Context& ctx);
void register_service_info(CLI::App& app, Context& ctx);
void register_doctor(CLI::App& app, Context& ctx);
void register_drs(CLI::App& app, Context& ctx);
void register_version(CLI::App& app, Context& ctx);
void register_search(CLI::App& app, Context& ctx);  // and register_beacon: `impact search`, `impact beacon`
void register_beacon(CLI::App& app, Context& ctx);
void register_completion(CLI::App& app, Context& ctx);  // `completion` reads the whole tree
void register_complete(CLI::App& app, Context& ctx);    // `__complete`, for the completion scripts
std::string completion_script(const CLI::App& root, const std::string& shell);
void register_run(CLI::App& app, Context& ctx);
void register_results(CLI::App& app, Context& ctx);
void register_workflow(CLI::App& app, Context& ctx);  // impact workflow: GA4GH TRS
void register_task(CLI::App& app, Context& ctx);  // TES tasks
void register_keys(CLI::App& app, Context& ctx);   // impact keys
void register_encrypt(CLI::App& app, Context& ctx);  // impact encrypt, impact decrypt: Crypt4GH
void register_decrypt(CLI::App& app, Context& ctx);
void register_archive(CLI::App& app, Context& ctx);  // impact archive: the SDA download API
void register_htsget(CLI::App& app, Context& ctx);  // impact htsget: GA4GH htsget
// `impact version` (loaded: the libraries in use, loading them) and `impact --version` (built against).
void print_version(Context& ctx, bool loaded);

// The program: parses, dispatches, maps errors to exit codes. Returns the exit code. The first form is
// main()'s: it installs the Ctrl-C handlers and reads the terminal from the environment; the second runs
// the same program on a terminal of the caller's (tests/cli_unit runs commands in-process with it).
int run(int argc, char** argv);
int run(int argc, char** argv, Terminal terminal);

// A --part-size value: a size of at least 1 MiB ("64M", "1G"); Error(usage) otherwise.
std::uint64_t parse_size(const std::string& s);

}  // namespace impact::cli
