#include "outcome.hpp"

#include <fmt/format.h>

namespace impact::cli {

nlohmann::json Outcome::failed(nlohmann::json record, const Error& e, const std::string& label, const std::string& hint) {
  ++failed_;
  const std::string h = hint.empty() ? ctx_.hint_for(e) : hint;
  if (!first_) {
    first_ = e;
    first_hint_ = h;
  }
  if (!ctx_.json()) ctx_.term().error(label.empty() ? std::string(e.what()) : label + ": " + e.what(), h);
  if (!record.is_object()) record = nlohmann::json::object();
  record["error"] = e.what();
  record["kind"] = to_string(e.kind());
  record["hint"] = h;
  return record;
}

nlohmann::json Outcome::not_done(nlohmann::json record, const std::string& why, const std::string& label) {
  ++failed_;
  only_errors_ = false;
  if (!ctx_.json()) ctx_.term().error(label.empty() ? why : label + ": " + why);
  if (!record.is_object()) record = nlohmann::json::object();
  record["error"] = why;
  record["kind"] = to_string(ErrorKind::partial);
  record["hint"] = "";
  return record;
}

void Outcome::finish() {
  if (failed_ == 0) return;
  if (ok_ > 0 || !only_errors_ || !first_) {
    ctx_.exit_code = exit_code::partial;
    return;
  }
  ctx_.exit_code = exit_code_for(first_->kind());
  if (failed_ > 1) {
    ctx_.term().error(fmt::format("all {} {} failed; the first: {}", failed_, noun_, first_->what()), first_hint_);
  } else if (ctx_.json()) {
    ctx_.term().error(first_->what(), first_hint_);
  }
}

}  // namespace impact::cli
