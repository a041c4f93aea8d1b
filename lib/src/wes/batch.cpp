// Batches: one run per sample-sheet row, at most N active, with a ledger written before each submission.
#include <algorithm>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/wes.hpp"
#include "json_fields.hpp"
#include "text.hpp"
#include "wes/pacer.hpp"

namespace impact::wes {
namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> cells;
  std::size_t start = 0;
  while (true) {
    auto tab = line.find('\t', start);
    cells.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return cells;
    start = tab + 1;
  }
}

nlohmann::json cell_value(std::string_view cell) {
  auto j = impact::detail::parse_json(cell);
  if (!j.is_discarded() && (j.is_structured() || j.is_number() || j.is_boolean())) return j;
  return std::string(cell);
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<BatchRow> load_ledger(const std::filesystem::path& ledger, std::size_t rows) {
  std::vector<BatchRow> out;
  if (!std::filesystem::exists(ledger)) {
    for (std::size_t i = 1; i <= rows; ++i) out.push_back({i, new_request_id(), {}, State::unknown, false});
    return out;
  }
  auto j = impact::detail::parse_json(read_file(ledger));
  const std::string hint = "remove it to start the batch afresh: rm " + ledger.string();
  if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array())
    throw Error(ErrorKind::io, "the batch ledger " + ledger.string() + " is damaged", hint);
  for (const auto& r : j["rows"])
    out.push_back({r.value("row", std::size_t{0}), r.value("request_id", ""), r.value("run_id", ""),
                   parse_state(r.value("state", "")), r.value("attempted", false)});
  if (out.size() != rows)
    throw Error(ErrorKind::usage,
                fmt::format("the sheet has {} rows but its ledger records {}: the sheet changed", rows, out.size()), hint);
  return out;
}

}  // namespace

void to_json(nlohmann::json& j, const BatchRow& r) {
  j = {{"row", r.row}, {"request_id", r.request_id}, {"run_id", r.run_id}, {"state", to_string(r.state)},
       {"attempted", r.attempted}};
}

std::vector<nlohmann::json> parse_sheet(std::string_view tsv) {
  std::vector<nlohmann::json> rows;
  std::vector<std::string> header;
  std::size_t lineno = 0;
  while (!tsv.empty()) {
    auto nl = tsv.find('\n');
    std::string_view line = tsv.substr(0, nl);
    tsv = nl == std::string_view::npos ? std::string_view() : tsv.substr(nl + 1);
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (text::trim(line).empty() || line.front() == '#') continue;
    auto cells = split_tabs(line);
    if (header.empty()) {
      for (auto c : cells) {
        auto name = std::string(text::trim(c));
        if (name.empty()) throw Error(ErrorKind::usage, fmt::format("sample sheet line {}: an empty column name", lineno));
        header.push_back(name);
      }
      continue;
    }
    if (cells.size() != header.size())
      throw Error(ErrorKind::usage, fmt::format("sample sheet line {}: {} cells for {} columns", lineno, cells.size(),
                                                header.size()),
                  "separate cells with one tab each");
    auto row = nlohmann::json::object();
    for (std::size_t i = 0; i < cells.size(); ++i) row[header[i]] = cell_value(cells[i]);
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw Error(ErrorKind::usage, "the sample sheet has no rows", "line 1 names the parameters; one run per further line");
  return rows;
}

std::filesystem::path ledger_path(const std::filesystem::path& dir, std::string_view sheet, std::string_view workflow,
                                  std::string_view wes_url) {
  const auto key = fmt::format("{}\n{}\n{}", sheet, workflow, wes_url);
  return dir / fmt::format("{:016x}.json", fnv1a(key));
}

int BatchResult::exit_code() const {
  if (timed_out) return exit_code::pending;
  bool all = std::all_of(rows.begin(), rows.end(), [](const BatchRow& r) { return r.state == State::complete; });
  return all ? exit_code::ok : exit_code::partial;
}

BatchResult run_batch(Client& client, const BatchSpec& spec, const std::filesystem::path& ledger,
                      BatchObserver* observer) {
  BatchResult result;
  result.rows = load_ledger(ledger, spec.rows.size());
  const std::string batch_id = ledger.stem().string();
  ensure_private_dir(ledger.parent_path());
  auto save = [&] {
    write_file_atomic(ledger, nlohmann::json({{"batch", batch_id}, {"rows", result.rows}}).dump(1));
  };
  save();
  auto request_for = [&](const BatchRow& r) {
    RunRequest rq = spec.base;
    for (const auto& [k, v] : spec.rows[r.row - 1].items()) rq.params[k] = v;
    rq.tags["impact_batch"] = batch_id;
    rq.tags["impact_row"] = std::to_string(r.row);
    rq.tags[std::string(kRequestIdTag)] = r.request_id;
    return rq;
  };
  detail::Pacer pacer(spec.wait);
  while (true) {
    bool changed = false;
    std::size_t in_flight = 0;
    for (auto& r : result.rows) {
      if (r.run_id.empty() || is_terminal(r.state)) continue;
      const State now = client.status(r.run_id);
      if (now != r.state) {
        r.state = now;
        changed = true;
        if (observer) observer->on_state(r.row, r.run_id, now);
      }
      if (!is_terminal(now)) ++in_flight;
    }
    for (auto& r : result.rows) {
      if (in_flight >= spec.max_in_flight) break;
      if (!r.run_id.empty()) continue;
      bool recovered = false;
      if (r.attempted) {  // an earlier process started this submission: its run may exist
        if (auto found = client.find_by_request_id(r.request_id)) {
          r.run_id = *found;
          recovered = true;
        }
      }
      if (r.run_id.empty()) {
        r.attempted = true;
        save();
        r.run_id = client.submit(request_for(r));
      }
      save();
      changed = true;
      ++in_flight;
      if (observer) observer->on_submitted(r.row, r.run_id, recovered);
    }
    if (changed) save();
    if (std::all_of(result.rows.begin(), result.rows.end(),
                    [](const BatchRow& r) { return !r.run_id.empty() && is_terminal(r.state); }))
      return result;
    if (!pacer.pause(changed)) {
      result.timed_out = true;
      return result;
    }
  }
}

}  // namespace impact::wes
