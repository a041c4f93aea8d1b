// The terminal's progress line fed by the transfer engine's events: one observer for every download.
#pragma once

#include <functional>
#include <utility>

#include "io.hpp"
#include "impact/transfer.hpp"

namespace impact::cli {

class TransferProgress final : public transfer::Observer {
 public:
  // `on_failure` reports a failed item as it happens (the terminal's error() clears the line first).
  using OnFailure = std::function<void(const transfer::Result&)>;
  explicit TransferProgress(const Terminal& term, OnFailure on_failure = {})
      : line_(term.progress({})), on_failure_(std::move(on_failure)) {}
  void on_plan(std::size_t items, std::uint64_t bytes) override { line_.plan(items, bytes); }
  void on_bytes(std::uint64_t n) override { line_.add_bytes(n); }
  void on_rewind(std::uint64_t n) override { line_.rewind(n); }
  void on_item(const transfer::Result& r) override {
    if (r.status == transfer::Result::Status::failed && on_failure_) on_failure_(r);
    if (r.status == transfer::Result::Status::skipped) line_.present(1, r.size);  // on disk from an earlier run
    else line_.item_done(r.status != transfer::Result::Status::failed);
  }
  void finish() { line_.finish(); }

 private:
  Progress line_;
  OnFailure on_failure_;
};

}  // namespace impact::cli
