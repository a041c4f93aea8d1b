// The WES model: states and exit codes, the dialects of run logs, the multipart request, validation
// against service-info, polling back-off and sample sheets.
#include <doctest/doctest.h>

#include <fstream>

#include "impact/error.hpp"
#include "impact/wes.hpp"
#include "temp_dir.hpp"

using namespace impact;
using namespace impact::wes;
using nlohmann::json;

namespace {
ServiceInfo info_with(json extra) {
  ServiceInfo s;
  s.type = {"org.ga4gh", "wes", "1.1.0"};
  s.extra = std::move(extra);
  return s;
}

ServiceInfo cwl_service() {
  return info_with({{"workflow_type_versions", {{"CWL", {{"workflow_type_version", {"v1.0", "v1.2"}}}}}},
                    {"workflow_engine_versions", {{"cwltool", {{"workflow_engine_version", {"3.1"}}}}}},
                    {"supported_filesystem_protocols", {"file", "https"}}});
}

std::string usage_message(const RunRequest& r, const ServiceInfo& s) {
  try {
    validate(r, s);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    return e.what();
  }
  return {};
}
}  // namespace

TEST_CASE("states: names, terminal states and the exit code of each") {
  CHECK(parse_state("EXECUTOR_ERROR") == State::executor_error);
  CHECK(parse_state("running") == State::running);
  CHECK(parse_state("CANCELLED") == State::canceled);
  CHECK(parse_state("") == State::unknown);
  CHECK(parse_state("UNKNOWN") == State::unknown);
  CHECK(to_string(State::canceling) == "CANCELING");
  CHECK(is_terminal(State::complete));
  CHECK(is_terminal(State::preempted));
  CHECK_FALSE(is_terminal(State::canceling));
  CHECK_FALSE(is_terminal(State::paused));
  CHECK(exit_code_for(State::complete) == 0);
  CHECK(exit_code_for(State::executor_error) == exit_code::run_executor_error);
  CHECK(exit_code_for(State::system_error) == exit_code::run_system_error);
  CHECK(exit_code_for(State::canceled) == exit_code::run_canceled);
  CHECK(exit_code_for(State::preempted) == exit_code::run_preempted);
  WaitResult w{{{"a", State::complete}, {"b", State::system_error}, {"c", State::canceled}}, false, 0};
  CHECK(w.exit_code() == exit_code::run_canceled);  // the highest of the runs
  w.timed_out = true;
  CHECK(w.exit_code() == exit_code::run_canceled);  // a failure outranks the timeout
  WaitResult pending{{{"a", State::complete}, {"b", State::running}}, true, 0};
  CHECK(pending.exit_code() == exit_code::pending);
  WaitResult failed_and_running{{{"a", State::executor_error}, {"b", State::running}}, true, 0};
  CHECK(failed_and_running.exit_code() == exit_code::run_executor_error);
}

TEST_CASE("states outside the spec are kept verbatim; *_ERROR is a failure, anything else stops a wait") {
  const State up = parse_state("UPLOADER_ERROR");
  CHECK(up.code() == State::other_error);
  CHECK(to_string(up) == "UPLOADER_ERROR");
  CHECK(is_terminal(up));
  CHECK(exit_code_for(up) == exit_code::run_other_error);
  CHECK(exit_code::run_other_error == 14);
  const State del = parse_state("DELETING");
  CHECK(del.code() == State::other);
  CHECK(to_string(del) == "DELETING");
  CHECK_FALSE(is_terminal(del));
  CHECK(stops_wait(del));
  CHECK(exit_code_for(del) == exit_code::run_other_state);
  CHECK(parse_state("DELETING") == del);
  CHECK_FALSE(parse_state("DELETED") == del);
  CHECK_FALSE(stops_wait(State::running));
  // Whatever a server sends, what is shown is one bounded, printable word.
  const State odd = parse_state(std::string("BAD\x1b[31m") + std::string(100, 'X'));
  CHECK(to_string(odd).size() == 64);
  CHECK(to_string(odd).find('\x1b') == std::string_view::npos);
  // Summaries and run logs keep the name; --json shows it.
  auto s = parse_summary(json{{"run_id", "r"}, {"state", "UPLOADER_ERROR"}});
  CHECK(json(s)["state"] == "UPLOADER_ERROR");
  CHECK(to_string(parse_run_log(json{{"run_id", "r"}, {"state", "UPLOADER_ERROR"}}).state) == "UPLOADER_ERROR");
  WaitResult w{{{"a", State::executor_error}, {"b", up}, {"c", del}}, false, 0};
  CHECK(w.exit_code() == exit_code::run_other_error);
}

TEST_CASE("times: zone-less ones are taken as UTC, offsets applied, anything else kept") {
  CHECK(normalize_time("2026-12-04T16:07:47") == "2026-12-04T16:07:47Z");
  CHECK(normalize_time("2023-05-04T12:34:56.123456") == "2023-05-04T12:34:56.123456Z");
  CHECK(normalize_time("2026-12-04T16:07:47Z") == "2026-12-04T16:07:47Z");
  CHECK(normalize_time("2026-12-04T01:07:47+02:00") == "2026-12-03T23:07:47Z");
  CHECK(normalize_time("2026-12-04 16:07:47-01:30") == "2026-12-04T17:37:47Z");
  CHECK(normalize_time("") == "");
  CHECK(normalize_time("yesterday") == "yesterday");
  CHECK(normalize_time("2026-13-04T16:07:47") == "2026-13-04T16:07:47");
  auto s = parse_summary(json{{"run_id", "r"}, {"state", "RUNNING"}, {"start_time", "2026-12-04T16:07:47"}});
  CHECK(s.start_time == "2026-12-04T16:07:47Z");
  auto l = parse_log(json{{"start_time", "2024-04-08T05:40:48"}, {"end_time", nullptr}});
  CHECK(l.start_time == "2024-04-08T05:40:48Z");
}

TEST_CASE("--json of a run summary leaves out empty fields") {
  auto s = parse_summary(json{{"run_id", "r"}, {"state", "QUEUED"}, {"start_time", ""}});
  const json j = s;
  CHECK_FALSE(j.contains("start_time"));
  CHECK_FALSE(j.contains("end_time"));
  CHECK(j["tags"].is_object());
  CHECK_FALSE(s.tags_known);
  CHECK(parse_summary(json{{"run_id", "r"}, {"tags", json::object()}}).tags_known);
}

TEST_CASE("service-info: WES 1.0 documents and sapporo's are a WES; other kinds stay strict") {
  const json sapporo = {{"workflow_type_versions", {{"CWL", {{"workflow_type_version", {"v1.0", "v1.2"}}}}}},
                        {"supported_wes_versions", {"sapporo-wes-1.1.0"}},
                        {"workflow_engine_versions", {{"cwltool", "3.1"}}},
                        {"tags", {{"wes-name", "sapporo"}}}};
  auto s = parse_service_info(sapporo, "WES", ServiceKind::wes);
  CHECK(s.kind() == ServiceKind::wes);
  CHECK(s.type.version == "1.1.0");
  CHECK_FALSE(s.note.empty());
  CHECK(s.extra.contains("workflow_engine_versions"));
  CHECK(json(s)["note"] == s.note);
  const json weskit = {{"workflow_type_versions", {{"SMK", {{"workflow_type_version", {"7.30.2"}}}}}},
                       {"supported_wes_versions", {"1.0.0"}}};
  CHECK(parse_service_info(weskit, "WES", ServiceKind::wes).type.version == "1.0.0");
  CHECK_THROWS_AS(parse_service_info(sapporo, "drs 'x'", ServiceKind::drs), Error);
  CHECK_THROWS_AS(parse_service_info(sapporo, "WES"), Error);
  CHECK_THROWS_AS(parse_service_info(json{{"hello", 1}}, "WES", ServiceKind::wes), Error);
  CHECK(looks_like_wes_service_info(weskit));
  CHECK_FALSE(looks_like_wes_service_info(json{{"id", "x"}}));
}

TEST_CASE("run log: the spec's shape") {
  auto r = parse_run_log(json::parse(R"({
    "run_id": "r1", "state": "COMPLETE",
    "request": {"workflow_url": "wf.cwl", "tags": {"a": "1"}, "workflow_params": {"x": 1}},
    "run_log": {"name": "wf", "cmd": ["cwltool", "wf.cwl"], "exit_code": 0, "stdout": "https://h/o", "system_logs": ["s"]},
    "outputs": {"out": {"class": "File", "location": "s3://b/k"}},
    "task_logs_url": "https://h/tasks"})"));
  CHECK(r.run_id == "r1");
  CHECK(r.state == State::complete);
  CHECK(r.tags() == Tags{{"a", "1"}});
  CHECK(r.run_log.cmd == "cwltool wf.cwl");
  CHECK(r.run_log.exit_code == 0);
  CHECK(r.run_log.stdout_log == "https://h/o");
  CHECK(r.outputs["out"]["location"] == "s3://b/k");
  CHECK(r.task_logs_url == "https://h/tasks");
}

TEST_CASE("run log dialects: outputs as a list, tags and params echoed as strings, exit code as text") {
  auto r = parse_run_log(json::parse(R"({
    "run_id": "r2", "state": "EXECUTOR_ERROR",
    "request": {"tags": "{\"k\": \"v\"}", "workflow_params": "{\"n\": 2}"},
    "run_log": {"cmd": "sh run.sh", "exit_code": "3", "stdout": "hello\n"},
    "task_logs": [{"name": "step1", "exit_code": 3, "stderr": "boom"}],
    "outputs": [{"file_name": "a.txt", "file_url": "https://h/a.txt"}, {"file_name": "b.txt", "file_url": "https://h/b"}]})"));
  CHECK(r.tags() == Tags{{"k", "v"}});
  CHECK(r.request["workflow_params"]["n"] == 2);
  CHECK(r.run_log.cmd == "sh run.sh");
  CHECK(r.run_log.exit_code == 3);
  CHECK(r.outputs == json{{"a.txt", "https://h/a.txt"}, {"b.txt", "https://h/b"}});
  REQUIRE(r.task_logs.size() == 1);
  CHECK(r.task_logs[0].stderr_log == "boom");
  CHECK_THROWS_AS(parse_run_log(json::array()), Error);
}

TEST_CASE("run summaries: WES 1.1 with tags, WES 1.0 without") {
  auto s = parse_summary(json{{"run_id", "x"}, {"state", "QUEUED"}, {"tags", {{"t", "1"}}}, {"start_time", "2024"}});
  CHECK(s.state == State::queued);
  CHECK(s.tags.at("t") == "1");
  auto old = parse_summary(json{{"run_id", "y"}, {"state", "RUNNING"}});
  CHECK(old.tags.empty());
  CHECK(json(old)["state"] == "RUNNING");
}

TEST_CASE("the multipart request has every field WES defines, JSON fields as strings, attachments by path") {
  RunRequest r;
  r.workflow_url = "wf.cwl";
  r.type = "CWL";
  r.type_version = "v1.2";
  r.params = {{"x", 1}};
  r.tags = {{"k", "v"}};
  r.engine = "cwltool";
  r.engine_params = {{"--parallel", "true"}};
  r.attachments = {{"/tmp/wf.cwl", "wf.cwl"}, {"/tmp/data/x.vcf", "data/x.vcf"}};
  auto parts = form_parts(r);
  std::map<std::string, std::string> fields;
  std::vector<std::string> files;
  for (const auto& p : parts) {
    if (p.name == "workflow_attachment") files.push_back(p.filename);
    else fields[p.name] = p.value;
  }
  CHECK(fields.at("workflow_url") == "wf.cwl");
  CHECK(fields.at("workflow_type") == "CWL");
  CHECK(fields.at("workflow_type_version") == "v1.2");
  CHECK(json::parse(fields.at("workflow_params")) == json{{"x", 1}});
  CHECK(json::parse(fields.at("tags")) == json{{"k", "v"}});
  CHECK(fields.at("workflow_engine") == "cwltool");
  CHECK(json::parse(fields.at("workflow_engine_parameters")) == json{{"--parallel", "true"}});
  CHECK(fields.count("workflow_engine_version") == 0);  // not sent when not given
  CHECK(files == std::vector<std::string>{"wf.cwl", "data/x.vcf"});
}

TEST_CASE("attachment names are plain relative paths") {
  CHECK(valid_attachment_name("wf.cwl"));
  CHECK(valid_attachment_name("data/sub/x.vcf"));
  CHECK_FALSE(valid_attachment_name("../x"));
  CHECK_FALSE(valid_attachment_name("a/../x"));
  CHECK_FALSE(valid_attachment_name("/etc/passwd"));
  CHECK_FALSE(valid_attachment_name("a//b"));
  CHECK_FALSE(valid_attachment_name("./a"));
  CHECK_FALSE(valid_attachment_name("a\\b"));
  CHECK_FALSE(valid_attachment_name(""));
}

TEST_CASE("validation against service-info names each unsupported part") {
  RunRequest r;
  r.workflow_url = "wf.cwl";
  r.type = "CWL";
  r.type_version = "v1.2";
  CHECK(usage_message(r, cwl_service()).empty());
  r.type = "WDL";
  CHECK(usage_message(r, cwl_service()).find("workflow type WDL (it runs: CWL)") != std::string::npos);
  r.type = "CWL";
  r.type_version = "v1.1";
  CHECK(usage_message(r, cwl_service()).find("CWL version v1.1 (it runs: v1.0, v1.2)") != std::string::npos);
  r.type_version = "v1.2";
  r.engine = "toil";
  CHECK(usage_message(r, cwl_service()).find("engine toil (it has: cwltool)") != std::string::npos);
  r.engine = "cwltool";
  r.engine_version = "9";
  CHECK(usage_message(r, cwl_service()).find("cwltool version 9") != std::string::npos);
  r.engine_version.clear();
  r.workflow_url = "s3://bucket/wf.cwl";
  CHECK(usage_message(r, cwl_service()).find("scheme s3 (it reads: file, https)") != std::string::npos);
  r.workflow_url = "wf.cwl";
  r.attachments = {{"/x", "../x"}};
  CHECK(usage_message(r, cwl_service()).find("'../x'") != std::string::npos);
  // A server that says nothing is not second-guessed.
  r.attachments.clear();
  r.type = "NFL";
  CHECK(usage_message(r, info_with(json::object())).empty());
}

TEST_CASE("type and version are filled from the file and the service") {
  test::TempDir tmp;
  auto wf = tmp.path() / "wf.cwl";
  std::ofstream(wf) << "#!/usr/bin/env cwl-runner\ncwlVersion: v1.0\nclass: Workflow\n";
  RunRequest r;
  r.workflow_url = "wf.cwl";
  complete_request(r, cwl_service(), wf);
  CHECK(r.type == "CWL");
  CHECK(r.type_version == "v1.0");
  RunRequest remote;
  remote.workflow_url = "https://example.org/wf.cwl#main";
  complete_request(remote, cwl_service(), {});
  CHECK(remote.type_version == "v1.2");  // the newest the service runs
  RunRequest unknown;
  unknown.workflow_url = "https://example.org/pipeline";
  CHECK_THROWS_AS(complete_request(unknown, cwl_service(), {}), Error);
  RunRequest snake;
  snake.workflow_url = "Snakefile";
  complete_request(snake, cwl_service(), {});  // SMK, which this service does not run: validate() says so
  CHECK(snake.type == "SMK");
  CHECK(usage_message(snake, cwl_service()).find("workflow type SMK") != std::string::npos);
  RunRequest silent;
  silent.workflow_url = "wf.cwl";
  CHECK_THROWS_AS(complete_request(silent, info_with(json::object()), {}), Error);  // no version to be had
}

TEST_CASE("back-off grows by half to its cap and starts again on reset") {
  Backoff b(std::chrono::milliseconds(2000), std::chrono::milliseconds(5000));
  CHECK(b.next().count() == 2000);
  CHECK(b.next().count() == 3000);
  CHECK(b.next().count() == 4500);
  CHECK(b.next().count() == 5000);
  CHECK(b.next().count() == 5000);
  b.reset();
  CHECK(b.next().count() == 2000);
}

TEST_CASE("sample sheets: header names parameters, JSON cells stay JSON, ragged rows are refused") {
  auto rows = parse_sheet("# samples\nsample\tseconds\tvcf\r\nA\t3\t{\"class\":\"File\",\"location\":\"a.vcf\"}\n\nB\t007\tplain\n");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["sample"] == "A");
  CHECK(rows[0]["seconds"] == 3);
  CHECK(rows[0]["vcf"]["class"] == "File");
  CHECK(rows[1]["seconds"] == "007");  // not valid JSON: kept as text
  CHECK_THROWS_AS(parse_sheet("a\tb\n1\n"), Error);
  CHECK_THROWS_AS(parse_sheet("a\tb\n"), Error);
  CHECK(ledger_path("/d", "s.tsv", "wf", "u") == ledger_path("/d", "s.tsv", "wf", "u"));
  CHECK(ledger_path("/d", "s.tsv", "wf", "u") != ledger_path("/d", "t.tsv", "wf", "u"));
}

// ---- dialects (docs/servers.md)

namespace {
// sapporo 1.7: WES 1.0 fields, a "1.1" version of its own, seven engines (two with a suffix).
ServiceInfo sapporo_like() {
  return info_with({{"workflow_type_versions", {{"CWL", {{"workflow_type_version", {"v1.0", "v1.2"}}}},
                                                {"SMK", {{"workflow_type_version", {"1.0"}}}}}},
                    {"supported_wes_versions", {"sapporo-wes-1.1.0"}},
                    {"supported_filesystem_protocols", {"http", "https", "file", "s3"}},
                    {"workflow_engine_versions", {{"toil (experimental)", "4.1.0"}, {"cwltool", "3.1"}, {"nextflow", "22.04.4"},
                                                  {"snakemake", "v7.8.3"}, {"ep3 (experimental)", "v1.7.0"}}}});
}
// WESkit: WES 1.0, Snakemake's own version as the SMK type version, workflows only from files.
ServiceInfo weskit_like() {
  return info_with({{"workflow_type_versions", {{"SMK", {{"workflow_type_version", {"7.9.0", "7.21.0"}}}},
                                                {"NFL", {{"workflow_type_version", {"22.10.0"}}}}}},
                    {"supported_wes_versions", {"1.0.0"}},
                    {"supported_filesystem_protocols", {"file", "S3"}},
                    {"workflow_engine_versions", {{"SMK", "7.21.0"}, {"NFL", "22.10.0"}}}});
}
RunRequest request_for(std::string type) {
  RunRequest r;
  r.workflow_url = "wf";
  r.type = std::move(type);
  return r;
}
}  // namespace

TEST_CASE("the WES version a service-info claims") {
  CHECK(wes_version(sapporo_like()) == WesVersion::v1_1);
  CHECK(wes_version(weskit_like()) == WesVersion::v1_0);
  CHECK(wes_version(info_with({{"supported_wes_versions", {"1.0.1", "v1.1.0"}}})) == WesVersion::v1_1);
  CHECK(wes_version(info_with({{"supported_wes_versions", {"2.0"}}})) == WesVersion::v1_1);
  CHECK(wes_version(info_with({{"supported_wes_versions", {"11.0"}}})) == WesVersion::v1_1);
  CHECK(wes_version(info_with({{"supported_wes_versions", {"beta"}}})) == WesVersion::unknown);
  CHECK(wes_version(info_with(json::object())) == WesVersion::unknown);
}

TEST_CASE("the engine: the profile's choice, else the one that runs the language, else an error naming them") {
  auto svc = sapporo_like();
  CHECK(choose_engine(request_for("CWL"), &svc) == "cwltool");  // before toil, whatever the server's order
  CHECK(choose_engine(request_for("NFL"), &svc) == "nextflow");
  CHECK(choose_engine(request_for("SMK"), &svc) == "snakemake");
  auto toil_only = info_with({{"workflow_engine_versions", {{"toil (experimental)", "4"}, {"nextflow", "1"}}}});
  CHECK(choose_engine(request_for("CWL"), &toil_only) == "toil (experimental)");  // the server's key, verbatim
  auto mine = request_for("CWL");
  mine.engine_if_required = "streamflow";
  CHECK(choose_engine(mine, &svc) == "streamflow");
  try {
    choose_engine(request_for("WDL"), &svc);
    FAIL("no engine runs WDL here");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()).find("WDL") != std::string::npos);
    CHECK(std::string(e.what()).find("cwltool, ep3 (experimental), nextflow, snakemake, toil (experimental)") != std::string::npos);
  }
  CHECK_THROWS_AS(choose_engine(request_for("WDL"), nullptr), Error);
}

TEST_CASE("complete_request: an engine up front for WES 1.1 servers that list engines, never for WES 1.0") {
  auto cwl = request_for("CWL");
  cwl.type_version = "v1.2";
  complete_request(cwl, sapporo_like(), {});
  CHECK(cwl.engine == "cwltool");
  auto smk = request_for("SMK");
  smk.engine_if_required = "snakemake";
  complete_request(smk, weskit_like(), {});
  CHECK(smk.engine.empty());                 // WES 1.0: no engine field at all
  CHECK(smk.type_version == "7.21.0");       // the newest the server lists, in version order (not "7.9.0")
  CHECK(usage_message(smk, weskit_like()).empty());
  auto forced = request_for("SMK");
  forced.type_version = "7.21.0";
  forced.engine = "SMK";
  CHECK(usage_message(forced, weskit_like()).find("WES 1.0") != std::string::npos);
  auto unknown = request_for("WDL");  // no engine runs it: left to the server's refusal, if it refuses
  unknown.type_version = "1.0";
  complete_request(unknown, sapporo_like(), {});
  CHECK(unknown.engine.empty());
}

TEST_CASE("complete_request: a local workflow becomes a file: URL where the server reads no http(s)") {
  test::TempDir tmp;
  auto wf = tmp.path() / "Snakefile";
  std::ofstream(wf) << "rule all:\n";
  RunRequest r;
  r.workflow_url = "Snakefile";
  r.attachments = {{wf, "Snakefile"}};
  complete_request(r, weskit_like(), wf);
  CHECK(r.workflow_url == "file:Snakefile");
  RunRequest s = r;
  s.workflow_url = "Snakefile";
  s.type_version = "1.0";
  complete_request(s, sapporo_like(), wf);
  CHECK(s.workflow_url == "Snakefile");  // sapporo reads relative paths into its attachments as they are
  RunRequest remote;
  remote.workflow_url = "trs://example.org/wf/1";
  remote.type = "SMK";
  complete_request(remote, weskit_like(), {});
  CHECK(remote.workflow_url == "trs://example.org/wf/1");
}

TEST_CASE("workflow_params is always sent, as {} when empty, and every field is a plain form field") {
  RunRequest r;
  r.workflow_url = "file:Snakefile";
  r.type = "SMK";
  r.type_version = "7.21.0";
  r.attachments = {{"/tmp/Snakefile", "Snakefile"}};
  for (const auto& p : form_parts(r)) {
    if (p.name == "workflow_attachment") {
      CHECK(p.filename == "Snakefile");
      continue;
    }
    CHECK(p.file.empty());
    CHECK(p.filename.empty());
    if (p.name == "workflow_params") CHECK(p.value == "{}");
  }
  const auto parts = form_parts(r);
  CHECK(std::count_if(parts.begin(), parts.end(), [](const auto& p) { return p.name == "workflow_params"; }) == 1);
  CHECK(std::none_of(parts.begin(), parts.end(), [](const auto& p) { return p.name == "workflow_engine"; }));
}

TEST_CASE("a refusal asks for one change: an engine, no unknown fields, a run_dir tag, a file: URL") {
  const auto svc = sapporo_like();
  auto r = request_for("CWL");
  r.tags = {{"impact_request_id", "abc"}};
  std::vector<Adjustment::Kind> done;
  auto a = adjust_after_refusal(r, 400, "Workflow engine is required.", &svc, done);
  REQUIRE(a);
  CHECK(a->kind == Adjustment::Kind::add_engine);
  CHECK(a->request.engine == "cwltool");
  CHECK(a->note.find("cwltool") != std::string::npos);
  done.push_back(a->kind);
  CHECK_FALSE(adjust_after_refusal(r, 400, "Workflow engine is required.", &svc, done));  // once only
  CHECK_FALSE(adjust_after_refusal(r, 500, "Workflow engine is required.", &svc, {}));    // a 400 only

  auto engined = request_for("SMK");
  engined.engine = "snakemake";
  engined.engine_version = "7";
  a = adjust_after_refusal(engined, 400, "Malformed request: [{'workflow_engine': ['unknown field'], "
                                         "'workflow_engine_version': ['unknown field']}]", nullptr, {});
  REQUIRE(a);
  CHECK(a->kind == Adjustment::Kind::drop_unknown_fields);
  CHECK(a->request.engine.empty());
  CHECK(a->request.engine_version.empty());
  CHECK_FALSE(adjust_after_refusal(engined, 400, "Malformed request: [\"Unknown workflow_type 'SMK'\"]", nullptr, {}));

  a = adjust_after_refusal(r, 400, "Malformed request: [\"'run_dir' tag is required and missing\"]", nullptr, {});
  REQUIRE(a);
  CHECK(a->request.tags.at("run_dir") == "impact-abc");
  CHECK(a->request.tags.at("impact_request_id") == "abc");
  CHECK(a->note.find("run_dir=impact-abc") != std::string::npos);

  auto local = request_for("SMK");
  local.workflow_url = "Snakefile";
  local.attachments = {{"/tmp/Snakefile", "Snakefile"}};
  a = adjust_after_refusal(local, 400, "Malformed request: [\"Only 'file:' (relative) URIs are allowed: 'Snakefile'\"]", nullptr, {});
  REQUIRE(a);
  CHECK(a->request.workflow_url == "file:Snakefile");
  CHECK_FALSE(adjust_after_refusal(a->request, 400, "Only 'file:' (relative) URIs are allowed", nullptr, {}));
  CHECK_FALSE(adjust_after_refusal(r, 400, "The `workflow_url` is required.", nullptr, {}));
}

TEST_CASE("a refusal's reason: the server's words, one line, control characters visible, bounded") {
  http::Response r;
  r.status = 400;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"msg":"Workflow engine is required.","status_code":400})";
  CHECK(server_reason(r) == "Workflow engine is required.");
  r.body = R"({"msg":"Malformed request: [\"a\",\n \"b\"]\u001b[31m","status_code":400})";
  CHECK(server_reason(r) == "Malformed request: [\"a\", \"b\"]\\x1b[31m");
  r.body = R"({"detail": {"loc": ["body"]}})";
  CHECK(server_reason(r) == R"({"loc":["body"]})");
  r.headers = {{"Content-Type", "text/html; charset=utf-8"}};
  r.body = "<!doctype html>\n<html><title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
           "<p>Engine parameter &#39;--cores&#39; is forbidden</p></html>";
  CHECK(server_reason(r) == "Internal Server Error Engine parameter '--cores' is forbidden");
  r.headers = {{"Content-Type", "text/plain"}};
  r.body = std::string(1000, 'x');
  CHECK(server_reason(r).size() == 300);
  r.body = "";
  CHECK(server_reason(r).empty());
}

TEST_CASE("outputs of any shape: lists of files, bare lists, WESkit's {filesystem, S3}") {
  auto run = parse_run_log(json::parse(R"({"run_id": "r", "outputs": [{"class": "File", "location": "s3://b/a"}, [1], "s"]})"));
  CHECK(run.outputs == json{{"0", {{"class", "File"}, {"location", "s3://b/a"}}}, {"1", {1}}, {"2", "s"}});
  run = parse_run_log(json::parse(R"({"run_id": "r", "outputs": []})"));
  CHECK(run.outputs == json::object());
  run = parse_run_log(json::parse(R"({"run_id": "r", "outputs": {"filesystem": ["/data/r/out.txt"], "S3": ["http://h/b/k?Signature=x"]}})"));
  CHECK(run.outputs["S3"][0] == "http://h/b/k?Signature=x");
}

TEST_CASE("log fields that are paths on the server, and flattened attachment names") {
  CHECK(is_server_path("/data/runs/abc/stdout"));
  CHECK(is_server_path("file:///data/runs/abc/stderr"));
  CHECK(is_server_path(".weskit/2026-12-04T16:07:47.123456/stdout"));
  CHECK_FALSE(is_server_path("done"));
  CHECK_FALSE(is_server_path("s3://b/log"));
  CHECK_FALSE(is_server_path("https://h/log"));
  CHECK_FALSE(is_server_path("hello\nworld"));
  CHECK_FALSE(is_server_path("/usr/bin/env: python: not found"));
  CHECK_FALSE(is_server_path(""));
  CHECK(flattened_name("data/sub/x.txt") == "data_sub_x.txt");
}
