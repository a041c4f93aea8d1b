// Help that fits and teaches, and command-line mistakes told in one line: the help formatter (wrapped to the
// terminal, the global options named on every command's page, only a command's own examples), "did you
// mean", and CLI11's parse errors reworded in the words of the command line the user typed.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace impact::cli {

// A top-level command as `impact --help` lists it.
struct CommandSummary {
  std::string_view name;
  std::string_view summary;
};

// The formatter every command's help goes through; `width` is the terminal's (80 in a pipe). `commands`: what
// the top-level help lists when no command is registered (`impact --help` builds none of them: start-up).
std::shared_ptr<CLI::Formatter> help_formatter(int width, std::vector<CommandSummary> commands = {});

// Wraps help text to `width` columns at spaces: a long description continues under its own column, a long
// example line (under "Examples:") continues after a " \" so that it still pastes as one command. Words
// longer than a line are left whole.
std::string wrap_help(std::string_view text, std::size_t width);

// The candidates close to `word` (edit distance, or `word` a prefix of at least 2 characters), closest first.
std::vector<std::string> close_matches(std::string_view word, const std::vector<std::string>& candidates);

// What went wrong on the command line, in one line, with a hint; `help` set when the right answer is the
// help of a command (a group typed alone: `impact run`), which is printed with exit code 0.
struct UsageProblem {
  std::string message;
  std::string hint;
  const CLI::App* help = nullptr;
};
UsageProblem describe_parse_error(const CLI::App& root, const CLI::ParseError& e);

// The command path of the deepest subcommand parsed so far ("impact run list").
const CLI::App& deepest_command(const CLI::App& root);
std::string command_path(const CLI::App& app);

}  // namespace impact::cli
