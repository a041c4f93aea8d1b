// impact completion bash|zsh|fish — shell completion scripts generated from the command tree itself, so
// every command and flag the binary has is completed. `impact __complete KIND` lists dynamic values
// (profiles, beacons) for the scripts. completions/ holds the generated scripts; a test keeps them in
// step with the binary.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/run_ids_cache.hpp"
#include "impact/wes.hpp"

namespace impact::cli {
namespace {

struct Flag {
  std::vector<std::string> names;  // "--profile", "-v"
  bool takes_value = false;
  std::string kind;                // what its value is: file, dir, profile, beacon, format, value
  std::string description;
};

struct Command {
  std::string path;  // "" for the root, "run submit"
  std::vector<std::pair<std::string, std::string>> subcommands;  // name, description
  std::vector<Flag> flags;
  std::string positional;  // kind of the positional arguments, if any
};

// What the values of a flag are, by name; flags not listed that take a value complete nothing.
const std::map<std::string, std::string> kFlagKinds = {
    {"--profile", "profile"}, {"--format", "word:table tsv json"}, {"--config", "file"},
    {"--cacert", "file"},     {"--client-secret-file", "file"},   {"--params", "file"},
    {"--attach", "file"},     {"--batch", "file"},                {"-o", "dir"},
    {"--output", "dir"},      {"--beacon", "beacon"},              {"--granularity", "word:boolean count record"},
    {"--state", "word:QUEUED INITIALIZING RUNNING PAUSED COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELED CANCELING PREEMPTED"},
    {"--type", "word:CWL WDL NFL SMK"},
};

// What the positional arguments of a command are.
const std::map<std::string, std::string> kPositionalKinds = {
    {"profile use", "profile"},   {"profile show", "profile"}, {"profile remove", "profile"},
    {"service-info", "word:wes drs beacon storage"},
    {"run show", "run"},          {"run logs", "run"},         {"run cancel", "run"},
    {"run wait", "run"},          {"run submit", "file"},      {"results ls", "run"},
    {"results download", "run"},  {"beacon info", "beacon"},   {"beacon filters", "beacon"},
    {"completion", "word:bash zsh fish"},
};

void collect(const CLI::App& app, const std::string& path, std::vector<Command>& out) {
  Command c;
  c.path = path;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
    c.subcommands.emplace_back(sub->get_name(), sub->get_description());
  for (const CLI::Option* o : app.get_options([](const CLI::Option* opt) { return opt->nonpositional(); })) {
    Flag f;
    for (const auto& s : o->get_snames()) f.names.push_back("-" + s);
    for (const auto& l : o->get_lnames()) f.names.push_back("--" + l);
    if (f.names.empty()) continue;
    f.takes_value = o->get_expected_max() != 0;  // flags (on/off, counted) expect no value
    f.description = o->get_description();
    if (f.takes_value) {
      f.kind = "value";
      for (const auto& n : f.names)
        if (auto k = kFlagKinds.find(n); k != kFlagKinds.end()) f.kind = k->second;
    }
    c.flags.push_back(std::move(f));
  }
  if (auto k = kPositionalKinds.find(path); k != kPositionalKinds.end()) c.positional = k->second;
  out.push_back(c);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
    collect(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::string quote(std::string_view s) {  // single-quoted for sh, zsh and fish
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string fish_quote(std::string_view s) {  // fish: backslash escapes inside single quotes
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "'";
}

std::string first_line(std::string s) {
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

// Shell functions shared by bash and zsh: the command tree as case tables.
std::string tables(const std::vector<Command>& cmds) {
  std::ostringstream o;
  o << "_impact_subs() {\n  case \"$1\" in\n";
  for (const auto& c : cmds) {
    if (c.subcommands.empty()) continue;
    std::string words;
    for (const auto& [n, d] : c.subcommands) words += (words.empty() ? "" : " ") + n;
    o << "    " << quote(c.path) << ") echo " << quote(words) << " ;;\n";
  }
  o << "  esac\n}\n_impact_flags() {\n  case \"$1\" in\n";
  for (const auto& c : cmds) {
    std::string words;
    for (const auto& f : c.flags)
      for (const auto& n : f.names) words += (words.empty() ? "" : " ") + n;
    if (!words.empty()) o << "    " << quote(c.path) << ") echo " << quote(words) << " ;;\n";
  }
  o << "  esac\n}\n_impact_flag_kind() {\n  case \"$1\" in\n";
  std::map<std::string, std::string> kinds;
  for (const auto& c : cmds)
    for (const auto& f : c.flags)
      if (f.takes_value)
        for (const auto& n : f.names) kinds[n] = f.kind;
  for (const auto& [n, k] : kinds) o << "    " << quote(n) << ") echo " << quote(k) << " ;;\n";
  o << "  esac\n}\n_impact_positional_kind() {\n  case \"$1\" in\n";
  for (const auto& c : cmds)
    if (!c.positional.empty()) o << "    " << quote(c.path) << ") echo " << quote(c.positional) << " ;;\n";
  o << "  esac\n}\n";
  // The command path of the words typed so far: subcommand names, skipping flags and their values.
  o << R"SH(_impact_path() {
  local p="" w skip=0 subs
  for w in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$w" in
      --*=*) ;;
      -*) [ -n "$(_impact_flag_kind "$w")" ] && skip=1 ;;
      *) [ -z "$p" ] && [ "$w" = help ] && continue  # impact help CMD...: completed as CMD...
         subs=" $(_impact_subs "$p") "
         case "$subs" in *" $w "*) p="${p:+$p }$w" ;; esac ;;
    esac
  done
  echo "$p"
}
# The value of --profile among the words typed so far, so that run ids and beacons come from that profile.
_impact_profile_of() {
  local w next=0
  for w in "$@"; do
    if [ "$next" = 1 ]; then echo "$w"; return; fi
    case "$w" in --profile) next=1 ;; --profile=*) echo "${w#--profile=}"; return ;; esac
  done
}
_impact_dynamic() {
  case "$1" in
    profile) impact __complete profile 2>/dev/null ;;
    beacon|run) impact ${2:+"--profile=$2"} __complete "$1" 2>/dev/null ;;
    word:*) echo "${1#word:}" ;;
  esac
}
)SH";
  return o.str();
}

std::string bash_script(const std::vector<Command>& cmds) {
  return "# bash completion for impact. Generated by `impact completion bash`; do not edit.\n" + tables(cmds) + R"SH(_impact() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmdpath kind
  cmdpath=$(_impact_path "${COMP_WORDS[@]:1:COMP_CWORD-1}")
  kind=""
  case "$prev" in -*) kind=$(_impact_flag_kind "$prev") ;; esac
  if [ -z "$kind" ]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "$(_impact_flags "$cmdpath") $(_impact_flags "")" -- "$cur"))
      return
    fi
    local subs
    subs=$(_impact_subs "$cmdpath")
    if [ -n "$subs" ]; then
      COMPREPLY=($(compgen -W "$subs" -- "$cur"))
      return
    fi
    kind=$(_impact_positional_kind "$cmdpath")
  fi
  case "$kind" in
    file) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
    dir) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null ;;
    ""|value) COMPREPLY=() ;;
    *) COMPREPLY=($(compgen -W "$(_impact_dynamic "$kind" "$(_impact_profile_of "${COMP_WORDS[@]:1:COMP_CWORD-1}")")" -- "$cur")) ;;
  esac
}
complete -F _impact impact
)SH";
}

std::string zsh_script(const std::vector<Command>& cmds) {
  std::ostringstream o;
  o << "#compdef impact\n# zsh completion for impact. Generated by `impact completion zsh`; do not edit.\n"
    << tables(cmds) << "_impact_described() {\n  case \"$1\" in\n";
  for (const auto& c : cmds) {
    if (c.subcommands.empty()) continue;
    o << "    " << quote(c.path) << ") reply=(";
    for (const auto& [n, d] : c.subcommands) o << " " << quote(n + ":" + first_line(d));
    o << " ) ;;\n";
  }
  o << "    *) reply=() ;;\n  esac\n}\n";
  o << R"SH(_impact() {
  local cur=${words[CURRENT]} prev=${words[CURRENT-1]} cmdpath kind
  local -a reply
  cmdpath=$(_impact_path "${(@)words[2,CURRENT-1]}")
  kind=""
  case "$prev" in -*) kind=$(_impact_flag_kind "$prev") ;; esac
  if [[ -z "$kind" ]]; then
    if [[ "$cur" == -* ]]; then
      compadd -- ${=$(_impact_flags "$cmdpath")} ${=$(_impact_flags "")}
      return
    fi
    _impact_described "$cmdpath"
    if (( ${#reply} )); then
      _describe -t commands 'impact command' reply
      return
    fi
    kind=$(_impact_positional_kind "$cmdpath")
  fi
  case "$kind" in
    file) _files ;;
    dir) _files -/ ;;
    ""|value) ;;
    *) compadd -- ${=$(_impact_dynamic "$kind" "$(_impact_profile_of "${(@)words[2,CURRENT-1]}")")} ;;
  esac
}
if [[ "$funcstack[1]" = "_impact" ]]; then _impact "$@"; else compdef _impact impact; fi
)SH";
  return o.str();
}

std::string fish_script(const std::vector<Command>& cmds) {
  std::ostringstream o;
  o << "# fish completion for impact. Generated by `impact completion fish`; do not edit.\n";
  o << "function __impact_subs\n    switch $argv[1]\n";
  for (const auto& c : cmds) {
    if (c.subcommands.empty()) continue;
    o << "        case " << fish_quote(c.path) << "\n            echo";
    for (const auto& [n, d] : c.subcommands) o << " " << n;
    o << "\n";
  }
  o << "    end\nend\nfunction __impact_takes_value\n    switch $argv[1]\n        case";
  std::set<std::string> valued;
  for (const auto& c : cmds)
    for (const auto& f : c.flags)
      if (f.takes_value)
        for (const auto& n : f.names) valued.insert(n);
  for (const auto& n : valued) o << " " << fish_quote(n);
  o << R"SH(
            return 0
    end
    return 1
end
function __impact_path
    set -l p ''
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '--*=*'
            case '-*'
                __impact_takes_value $w; and set skip 1
            case '*'
                if test -z "$p" -a "$w" = help  # impact help CMD...: completed as CMD...
                    continue
                end
                if contains -- $w (string split ' ' -- (__impact_subs "$p"))
                    set p (string trim -- "$p $w")
                end
        end
    end
    echo $p
end
function __impact_at
    test (__impact_path) = "$argv[1]"
end
function __impact_profile_arg
    set -l words (commandline -opc)
    for i in (seq (count $words))
        switch $words[$i]
            case '--profile=*'
                echo -- $words[$i]
                return
            case --profile
                set -l j (math $i + 1)
                test $j -le (count $words); and echo -- --profile=$words[$j]
                return
        end
    end
end
complete -c impact -f
)SH";
  auto dynamic = [](const std::string& kind) -> std::string {
    if (kind == "file") return " -F";
    if (kind == "dir") return " -a '(__fish_complete_directories)'";
    if (kind == "profile") return " -a '(impact __complete profile 2>/dev/null)'";
    if (kind == "beacon" || kind == "run")
        return " -a '(impact (__impact_profile_arg) __complete " + kind + " 2>/dev/null)'";
    if (kind.rfind("word:", 0) == 0) return " -a " + fish_quote(kind.substr(5));
    return "";
  };
  for (const auto& c : cmds) {
    std::string cond = " -n " + fish_quote("__impact_at " + fish_quote(c.path));
    for (const auto& [n, d] : c.subcommands)
      o << "complete -c impact" << cond << " -a " << fish_quote(n) << " -d " << fish_quote(first_line(d)) << "\n";
    if (!c.positional.empty() && c.subcommands.empty()) o << "complete -c impact" << cond << dynamic(c.positional) << "\n";
    for (const auto& f : c.flags) {
      o << "complete -c impact";
      if (!c.path.empty()) o << cond;  // the root's (global) flags apply everywhere
      for (const auto& n : f.names) o << (n.rfind("--", 0) == 0 ? " -l " + n.substr(2) : " -s " + n.substr(1));
      if (f.takes_value) o << (f.kind == "file" ? " -r" : " -x") << dynamic(f.kind);  // -x: no file names
      o << " -d " << fish_quote(first_line(f.description)) << "\n";
    }
  }
  return o.str();
}

// The profile's run ids, from the short-lived cache when it is fresh (impact/run_ids_cache.hpp), else listed
// (ids only, in the server's order: the shell sorts them) and cached.
void complete_run_ids(Context& ctx, const Profile& p) {
  if (p.wes.empty()) return;
  auto ids = wes::cached_run_ids(p.name, p.wes);
  if (!ids) {
    http::Client http = ctx.client();
    wes::TokenFn token;
    if (auth::Credentials* creds = ctx.login_if_any(p)) token = [creds, url = p.wes] { return creds->bearer_token(url); };
    wes::Client client(http, p.wes, std::move(token));
    ids.emplace();
    // An id a shell would split or show oddly (blanks, control characters) is left out.
    const auto plain = [](const std::string& id) {
      return !id.empty() && std::all_of(id.begin(), id.end(), [](unsigned char c) { return c > 0x20 && c != 0x7f; });
    };
    const bool ended = client.list([&](const wes::RunSummary& r) {
      if (plain(r.run_id)) ids->push_back(r.run_id);
      return true;
    });
    if (!ended) return;  // the page bound, not the list's end: not offered, not cached
    wes::cache_run_ids(p.name, p.wes, *ids);
  }
  std::string out;
  for (const auto& id : *ids) (out += id) += '\n';
  ctx.term().out() << out;
}

void complete_values(Context& ctx, const std::string& kind) {
  Config config = ctx.load_config();
  if (kind == "profile") {
    for (const auto& [name, p] : config.profiles()) ctx.term().out() << name << '\n';
  } else if (kind == "beacon") {
    for (const auto& [name, url] : ctx.profile(config).beacons) ctx.term().out() << name << '\n';
  } else if (kind == "run") {
    complete_run_ids(ctx, ctx.profile(config));
  }
}

}  // namespace

std::string completion_script(const CLI::App& root, const std::string& shell) {
  std::vector<Command> cmds;
  collect(root, "", cmds);
  // `impact help CMD...` is read before CLI11 sees it (cli/app.cpp): offered among the commands.
  cmds.front().subcommands.emplace_back("help", "Help about a command: impact help run submit");
  if (shell == "bash") return bash_script(cmds);
  if (shell == "zsh") return zsh_script(cmds);
  if (shell == "fish") return fish_script(cmds);
  throw Error(ErrorKind::usage, fmt::format("no completion for the shell '{}'", shell), "use bash, zsh or fish");
}

void register_completion(CLI::App& app, Context& ctx) {
  auto shell = std::make_shared<std::string>();
  auto* cmd = add_command(app, "completion");
  cmd->add_option("shell", *shell, "bash, zsh or fish")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->footer("Examples:\n  source <(impact completion bash)\n  impact completion zsh > \"${fpath[1]}/_impact\"\n"
              "  impact completion fish > ~/.config/fish/completions/impact.fish");
  cmd->callback(ctx.action([&ctx, &app, shell] { ctx.term().out() << completion_script(app, *shell); }));
}

void register_complete(CLI::App& app, Context& ctx) {
  auto kind = std::make_shared<std::string>();
  auto* hidden = add_command(app, "__complete");  // for the scripts, not for people
  hidden->add_option("kind", *kind)->required()->check(CLI::IsMember({"profile", "beacon", "run"}));
  hidden->callback(ctx.action([&ctx, kind] { complete_values(ctx, *kind); }));
}

}  // namespace impact::cli
