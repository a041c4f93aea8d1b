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

// The run ids listed before the submission of `row`, kept beside the ledger: one file, as one submission
// is in flight at a time.
void save_snapshot(const std::filesystem::path& file, std::size_t row, const RunSnapshot& snap) {
  write_file_atomic(file, nlohmann::json({{"row", row}, {"listed", snap.listed}, {"ids", snap.ids}}).dump());
}

std::optional<RunSnapshot> load_snapshot(const std::filesystem::path& file, std::size_t row) {
  if (!std::filesystem::exists(file)) return std::nullopt;
  auto j = nlohmann::json::parse(read_file(file), nullptr, false);
  if (!j.is_object() || j.value("row", std::size_t{0}) != row || !j.value("listed", false) || !j.contains("ids") ||
      !j["ids"].is_array())
    return std::nullopt;  // another row's, or no list was read then: every run is a candidate
  RunSnapshot snap;
  snap.listed = true;
  for (const auto& id : j["ids"])
    if (id.is_string()) snap.ids.insert(id.get<std::string>());
  return snap;
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
  const std::filesystem::path snapshot_file = ledger.string() + ".before";
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
      if (r.run_id.empty() || stops_wait(r.state)) continue;
      const State now = client.status(r.run_id);
      if (now != r.state) {
        r.state = now;
        changed = true;
        if (observer) observer->on_state(r.row, r.run_id, now);
      }
      if (!stops_wait(now)) ++in_flight;
    }
    for (auto& r : result.rows) {
      if (in_flight >= spec.max_in_flight) break;
      if (!r.run_id.empty()) continue;
      bool recovered = false;
      if (r.attempted) {  // an earlier process started this submission: its run may exist
        auto before = load_snapshot(snapshot_file, r.row);
        auto l = client.find_by_request_id(r.request_id, before ? &*before : nullptr);
        if (l.outcome == Lookup::undecided)
          throw Error(ErrorKind::generic,
                      fmt::format("row {}: an earlier submission was interrupted and impact cannot tell whether its "
                                  "run was created: {}",
                                  r.row, l.why),
                      "run the batch again once the server's run list can be read")
              .with_remedy(Remedy::run_list_tag)
              .with_fact("tag", kRequestIdTag)
              .with_fact("value", r.request_id);
        if (l.outcome == Lookup::found) {
          r.run_id = l.run_id;
          recovered = true;
        }
      }
      if (r.run_id.empty()) {
        // The ids listed before the POST go to disk first, so that a process killed during it lets the
        // next one search only the runs made since.
        const RunSnapshot before = client.snapshot();
        save_snapshot(snapshot_file, r.row, before);
        r.attempted = true;
        save();
        r.run_id = client.submit(request_for(r), nullptr, &before);
      }
      save();
      std::filesystem::remove(snapshot_file);  // the answer is recorded: no submission in flight
      changed = true;
      ++in_flight;
      if (observer) observer->on_submitted(r.row, r.run_id, recovered);
    }
    if (changed) save();
    if (std::all_of(result.rows.begin(), result.rows.end(),
                    [](const BatchRow& r) { return !r.run_id.empty() && stops_wait(r.state); }))
      return result;
    if (!pacer.pause(changed)) {
      result.timed_out = true;
      return result;
    }
  }
}

}  // namespace impact::wes
