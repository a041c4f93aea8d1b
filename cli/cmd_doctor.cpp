// impact doctor
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/cancel.hpp"
#include "impact/doctor.hpp"
#include "impact/session.hpp"

namespace impact::cli {
namespace {

void run(Context& ctx) {
  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  DoctorReport rep = run_doctor(p, ctx.http_options());
  throw_if_cancelled();
  if (!p.issuer.empty()) {
    auth::Session session(p, ctx.http_options());
    for (auto& c : auth::login_checks(session)) rep.checks.push_back(std::move(c));
  }
  for (auto& c : rep.checks) c.hint = ctx.hint_for(c.hint, c.remedy);  // the commands and flags to use
  if (ctx.json()) {
    nlohmann::json j = rep;
    j["profile"] = p.name;
    ctx.term().print_json(j, false, "checks");
  } else {
    const auto& term = ctx.term();
    Table t{{"SERVICE", "CHECK", "STATUS", "DETAIL"}, {}, {3}};
    for (const auto& c : rep.checks) {
      std::string status(to_string(c.status));
      if (ctx.format() == Format::table) status = c.status == CheckStatus::fail ? "FAIL" : status;
      std::string detail = c.detail;
      if (!c.hint.empty() && c.status != CheckStatus::ok) detail += " (hint: " + c.hint + ")";
      t.rows.push_back({c.service, c.name, status, detail});
    }
    t.style = [&rep](std::size_t row, std::size_t col) -> std::optional<TextStyle> {
      if (col != 2) return std::nullopt;
      const auto st = rep.checks[row].status;
      return st == CheckStatus::ok ? TextStyle::green : st == CheckStatus::warn ? TextStyle::yellow : TextStyle::red;
    };
    term.print_table(t, ctx.format());
    std::size_t failed = 0;
    for (const auto& c : rep.checks) failed += c.status == CheckStatus::fail;
    if (failed) term.error(std::to_string(failed) + " check(s) failed for profile '" + p.name + "'");
  }
  if (!rep.ok()) ctx.exit_code = exit_code::error;
}

}  // namespace

void register_doctor(CLI::App& app, Context& ctx) {
  auto* cmd = add_command(app, "doctor");
  cmd->footer("Exits 0 when no check fails, 1 otherwise.\n\nExamples:\n  impact doctor\n  impact --profile ega doctor --json");
  cmd->callback(ctx.action([&ctx] { run(ctx); }));
}

}  // namespace impact::cli
