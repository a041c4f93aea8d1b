#include "help.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "io.hpp"

namespace impact::cli {
namespace {

constexpr std::size_t kNameColumn = 30;  // CLI11's column of descriptions (Formatter::get_column_width)

// Splits at spaces outside single and double quotes (a shell word may hold spaces).
std::vector<std::string> shell_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ' ') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::size_t leading_spaces(std::string_view s) {
  const auto i = s.find_first_not_of(' ');
  return i == std::string_view::npos ? s.size() : i;
}

// Where a line's description starts: after the first run of two or more spaces that follows its first word
// ("  --json        Print JSON"), when that is left of the middle of the line; else its indentation.
std::size_t hanging_indent(std::string_view line, std::size_t width) {
  const std::size_t lead = leading_spaces(line);
  // An option whose name fills CLI11's name column exactly: one space, then the description.
  if (lead == 2 && line.size() > kNameColumn && line[kNameColumn - 1] == ' ' && line[kNameColumn] != ' ') return kNameColumn;
  const auto gap = line.find("  ", lead);
  if (gap == std::string_view::npos) return lead;
  const auto text = line.find_first_not_of(' ', gap);
  if (text == std::string_view::npos || text > width / 2) return lead;
  return text;
}

// Lays `words` out in lines of at most `width` columns (a word longer than that stays whole): the first line
// starts with `first`, the others with `indent` spaces; `joiner` ends every line but the last.
void lay_out(const std::vector<std::string>& words, const std::string& first, std::size_t indent, std::string_view joiner,
             std::size_t width, std::string& out) {
  std::string current = first;
  std::size_t used = display_width(current);
  bool line_start = true;
  for (const auto& w : words) {
    const std::size_t ww = display_width(w);
    if (!line_start && used + 1 + ww + joiner.size() > width) {
      out.append(current).append(joiner) += '\n';
      current.assign(indent, ' ');
      used = indent;
      line_start = true;
    }
    if (!line_start) {
      current += ' ';
      ++used;
    }
    current += w;
    used += ww;
    line_start = false;
  }
  out.append(current) += '\n';
}

// The words of `s`: its runs of characters other than spaces and tabs.
std::vector<std::string> words_of(std::string_view s) {
  std::vector<std::string> words;
  for (std::size_t i = 0; i < s.size();) {
    const auto start = s.find_first_not_of(" \t", i);
    if (start == std::string_view::npos) break;
    auto end = s.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = s.size();
    words.emplace_back(s.substr(start, end - start));
    i = end;
  }
  return words;
}

void wrap_words(std::string_view line, std::size_t width, std::string& out) {
  const std::size_t indent = hanging_indent(line, width);
  const std::vector<std::string> words = words_of(line.substr(indent));
  lay_out(words, std::string(line.substr(0, indent)), indent, "", width, out);
}

// An example command too long for the line goes on over several lines joined with " \", as a shell reads it.
void wrap_example(std::string_view line, std::size_t width, std::string& out) {
  const std::size_t lead = leading_spaces(line);
  lay_out(shell_words(line.substr(lead)), std::string(lead, ' '), lead + 4, " \\", width, out);
}

// The global options, in one line for the pages of subcommands.
std::string global_options(const CLI::App& root, std::size_t width) {
  static const std::map<std::string, std::string> kValue = {
      {"--profile", "NAME"}, {"--format", "table|tsv|json"}, {"--config", "FILE"}, {"--cacert", "FILE"}, {"--jq", "EXPR"}};
  std::vector<std::string> items;
  for (const CLI::Option* o : root.get_options([](const CLI::Option* opt) { return opt->nonpositional(); })) {
    if (o->get_group() != "Global options") continue;
    const auto& l = o->get_lnames();
    if (l.empty() || l.front() == "version" || l.front() == "help-exit-codes") continue;
    std::string n = o->get_snames().empty() ? "--" + l.front() : "-" + o->get_snames().front() + "/--" + l.front();
    if (o->get_expected_max() != 0) {
      const auto v = kValue.find("--" + l.front());
      n += " " + (v != kValue.end() ? v->second : std::string("VALUE"));
    }
    items.push_back(std::move(n));
  }
  // Wrapped here, between options: a name never parts from its value.
  std::string out = "  ";
  std::size_t used = 2;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string piece = items[i] + (i + 1 < items.size() ? "," : "");
    if (i > 0) {
      const bool room = used + 1 + piece.size() <= width;
      out += room ? " " : "\n  ";
      used = room ? used + 1 : 2;
    }
    out += piece;
    used += piece.size();
  }
  return out;
}

class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter(int width, std::vector<CommandSummary> commands)
      : width_(static_cast<std::size_t>(std::max(width, 40))), commands_(std::move(commands)) {}

  // The top-level help without its commands registered: the list of commands, as CLI11 would print them.
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage = CLI::Formatter::make_usage(app, std::move(name));
    if (!listed(app) || usage.empty() || usage.back() != '\n') return usage;
    usage.pop_back();
    return usage + " [SUBCOMMAND]\n";
  }

  std::string make_subcommands(const CLI::App* app, CLI::AppFormatMode mode) const override {
    if (!listed(app)) return CLI::Formatter::make_subcommands(app, mode);
    std::ostringstream out;
    out << "\nSubcommands:\n";
    for (const auto& c : commands_)
      if (!c.summary.empty()) CLI::detail::format_help(out, std::string(c.name), std::string(c.summary), column_width_);
    return out.str();
  }

  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    std::string text = CLI::Formatter::make_help(app, std::move(name), mode);
    return mode == CLI::AppFormatMode::Sub ? text : wrap_help(text, width_);
  }

  std::string make_footer(const CLI::App* app) const override {
    const CLI::App* parent = app->get_parent();
    if (!parent) return CLI::Formatter::make_footer(app);
    const CLI::App* root = parent;
    while (root->get_parent()) root = root->get_parent();
    std::string out = "Global options (see impact --help):\n" + global_options(*root, width_) + "\n";
    // CLI11 copies a group's footer into the subcommands added after it: only a command's own is shown.
    const std::string& footer = app->get_footer();
    if (!footer.empty() && footer != parent->get_footer()) out += "\n" + footer + "\n";
    return out;
  }

 private:
  bool listed(const CLI::App* app) const {
    return !commands_.empty() && app->get_parent() == nullptr && app->get_subcommands({}).empty();
  }

  std::size_t width_;
  std::vector<CommandSummary> commands_;
};

// Optimal string alignment distance (Levenshtein with transpositions).
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string_view undashed(std::string_view s) {
  while (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return s;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); })) {
    names.push_back(sub->get_name());
    for (const auto& a : sub->get_aliases()) names.push_back(a);
  }
  return names;
}

// The option names of a command and of the commands above it (whose options it accepts too).
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a = &app; a; a = a->get_parent())
    for (const CLI::Option* o : a->get_options([](const CLI::Option* opt) { return opt->nonpositional(); })) {
      for (const auto& s : o->get_snames()) names.push_back("-" + s);
      for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    }
  return names;
}

std::string or_list(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < 3; ++i) s += (i == 0 ? "" : i + 1 == std::min<std::size_t>(v.size(), 3) ? " or " : ", ") + v[i];
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::shared_ptr<CLI::Formatter> help_formatter(int width, std::vector<CommandSummary> commands) {
  return std::make_shared<HelpFormatter>(width, std::move(commands));
}

std::string wrap_help(std::string_view text, std::size_t width) {
  std::string out;  // not a string stream: each would cost a locale look-up, a real share of `impact --help`
  bool examples = false;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    const bool last = nl == std::string_view::npos;
    const std::string_view line = text.substr(start, last ? std::string_view::npos : nl - start);
    start = last ? text.size() : nl + 1;
    if (line.empty()) examples = false;
    if (display_width(line) <= width) {
      out += line;
      if (!last) out += '\n';
    } else {
      if (examples && leading_spaces(line) > 0) wrap_example(line, width, out);
      else wrap_words(line, width, out);
      if (last) {
        out.pop_back();
        return out;
      }
    }
    if (line.size() >= 9 && line.substr(line.size() - 9) == "Examples:") examples = true;
  }
  return out;
}

std::vector<std::string> close_matches(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string_view w = undashed(word);
  std::vector<std::pair<std::size_t, std::string>> found;
  if (w.empty()) return {};
  const std::size_t most = w.size() >= 5 ? 2 : 1;
  for (const auto& c : candidates) {
    const std::string_view u = undashed(c);
    if (u.size() < 2 || word.size() - w.size() != c.size() - u.size()) continue;  // "-o" is never "--json"
    const bool prefix = w.size() >= 2 && u.substr(0, w.size()) == w;
    const std::size_t d = distance(w, u);
    if ((w.size() >= 3 && d <= most) || prefix)
      if (std::none_of(found.begin(), found.end(), [&](const auto& f) { return f.second == c; }))
        found.emplace_back(prefix ? 0 : d, c);
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

const CLI::App& deepest_command(const CLI::App& root) {
  const CLI::App* cur = &root;
  for (auto subs = cur->get_subcommands(); !subs.empty(); subs = cur->get_subcommands()) cur = subs.front();
  return *cur;
}

std::string command_path(const CLI::App& app) {
  std::string path;
  for (const CLI::App* a = &app; a; a = a->get_parent())
    path = a->get_parent() ? " " + a->get_name() + path : "impact" + path;
  return path;
}

UsageProblem describe_parse_error(const CLI::App& root, const CLI::ParseError& e) {
  const CLI::App& cur = deepest_command(root);
  const std::string path = command_path(cur);
  const std::string see = "run: " + path + " --help";
  const std::string what = e.what();
  const bool extras = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
  const bool no_subcommand = dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.rfind("A subcommand", 0) == 0;
  if (extras || no_subcommand) {
    const auto rest = root.remaining(true);
    for (const auto& x : rest) {
      if (x.size() < 2 || x[0] != '-' || x == "--") continue;
      const std::string name = x.substr(0, x.find('='));
      UsageProblem p{fmt::format("unknown option '{}' for '{}'", name, path), see};
      if (const auto m = close_matches(name, option_names(cur)); !m.empty()) p.hint = "did you mean " + or_list(m) + "? (" + see + ")";
      else if (name == "-o" || name == "--output")
        p.hint = "choose the output format with --format table|tsv|json, or --json (" + see + ")";
      return p;
    }
    const bool group = !subcommand_names(cur).empty();
    for (const auto& x : rest) {
      if (x.empty() || x[0] == '-') continue;
      UsageProblem p{group ? fmt::format("unknown command '{}' for '{}'", x, path)
                           : fmt::format("unexpected argument '{}' for '{}'", x, path),
                     see};
      if (&cur == &root) p.message = fmt::format("unknown command '{}'", x);
      if (group)
        if (const auto m = close_matches(x, subcommand_names(cur)); !m.empty()) p.hint = "did you mean " + or_list(m) + "? (" + see + ")";
      return p;
    }
    if (no_subcommand) return {"", "", &cur};
    return {fmt::format("unexpected arguments for '{}'", path), see};
  }
  static const std::regex kMissingValue(R"(^(\S+): \d+ required (\S+) missing$)");
  static const std::regex kRequired(R"(^(\S+) is required$)");
  std::smatch m;
  if (std::regex_match(what, m, kMissingValue)) return {fmt::format("option {} of '{}' needs a value", m[1].str(), path), see};
  if (std::regex_match(what, m, kRequired)) {
    const std::string n = m[1].str();
    return {n[0] == '-' ? fmt::format("missing the option {} for '{}'", n, path) : fmt::format("missing {} for '{}'", upper(n), path), see};
  }
  // CLI11's checks and conversions, in words.
  static const std::regex kNotIn(R"(^(\S+): (.*) not in \{(.*)\}$)");
  static const std::regex kConvert(R"(^Could not convert: (\S+) = (.*)$)");
  auto named = [](const std::string& n) { return n[0] == '-' ? n : upper(n); };
  if (std::regex_match(what, m, kNotIn)) {
    std::string choices = m[3].str();
    for (std::size_t i = 0; (i = choices.find(',', i)) != std::string::npos; i += 2) choices.replace(i, 1, ", ");
    return {fmt::format("{}: '{}' is not one of {}", named(m[1].str()), m[2].str(), choices), see};
  }
  if (std::regex_match(what, m, kConvert)) return {fmt::format("{}: '{}' is not a number", named(m[1].str()), m[2].str()), see};
  std::string text = what;
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"File does not exist: ", "no such file: "},
                                 {"Directory does not exist: ", "no such folder: "}, {"Path does not exist: ", "no such file or folder: "}})
    if (auto at = text.find(from); at != std::string::npos) text.replace(at, from.size(), to);
  return {text, see};
}

}  // namespace impact::cli
