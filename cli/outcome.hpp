// The one rule for a command that acts on many items (objects, beacons, runs, services): each failure is
// reported once, when it is known (a line on stderr, or a record in the command's --json "failed"
// list), and the exit code follows from the counts.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "context.hpp"
#include "impact/error.hpp"

namespace impact::cli {

class Outcome {
 public:
  // `noun` names the items in the closing line ("objects", "beacons", "runs", "services").
  Outcome(Context& ctx, std::string noun) : ctx_(ctx), noun_(std::move(noun)) {}

  void succeeded(std::size_t n = 1) { ok_ += n; }
  // A failed item: prints "LABEL: message" and the hint on stderr (not with --json) and returns its
  // --json record: `record` (what names the item) with "error", "kind" and "hint" added. `hint`, when
  // set, replaces the error's own (the CLI's advice for a fact of the item).
  nlohmann::json failed(nlohmann::json record, const Error& e, const std::string& label = {}, const std::string& hint = {});
  // An item not done although nothing went wrong (a run that had ended before the cancel): kind "partial".
  nlohmann::json not_done(nlohmann::json record, const std::string& why, const std::string& label = {});

  std::size_t ok() const noexcept { return ok_; }
  std::size_t failures() const noexcept { return failed_; }

  // Exit 0 when nothing failed; 6 when some items failed and others succeeded, or when a failure was no
  // error; when every item failed with an error, the first error's own exit code (1, 4, 5, ...), and
  // (with more than one, or with --json, where none was printed) a closing line that names it.
  void finish();

 private:
  Context& ctx_;
  std::string noun_;
  std::size_t ok_ = 0, failed_ = 0;
  bool only_errors_ = true;
  std::optional<Error> first_;
  std::string first_hint_;
};

}  // namespace impact::cli
