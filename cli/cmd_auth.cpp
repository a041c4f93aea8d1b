// impact login | logout | token | auth status | passport
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <ctime>
#include <fcntl.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "flags.hpp"
#include "impact/duration.hpp"
#include "impact/error.hpp"
#include "impact/jwt.hpp"
#include "impact/redact.hpp"
#include "impact/run_ids_cache.hpp"
#include "impact/session.hpp"
#include "impact/url.hpp"
#include "qr.hpp"

extern char** environ;

namespace impact::cli {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::string when(std::int64_t epoch, std::int64_t now) {
  if (epoch == 0) return "unknown";
  if (epoch <= now) return "expired " + format_duration(seconds(now - epoch)) + " ago";
  return "in " + format_duration(seconds(epoch - now));
}

// A Unix time in UTC as `format` (strftime) says; "" when unknown (0).
std::string utc(std::int64_t epoch, const char* format) {
  if (epoch == 0) return "";
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string date_of(std::int64_t epoch) { return utc(epoch, "%Y-%m-%d"); }

// A Unix time as RFC 3339 UTC for --json, like every other time impact prints; null when unknown (0).
json rfc3339(std::int64_t epoch) { return epoch == 0 ? json(nullptr) : json(utc(epoch, "%Y-%m-%dT%H:%M:%SZ")); }

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// Hands the URL to the desktop's opener, without a shell; output discarded. Best effort.
void open_browser(const std::string& url) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::string prog = "xdg-open";
  std::vector<char*> argv{prog.data(), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv.data(), environ) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
  }
  posix_spawn_file_actions_destroy(&fa);
}

class LoginObserver final : public oidc::DeviceObserver {
 public:
  LoginObserver(Context& ctx, std::string profile, bool qr, bool qr_asked, bool browser)
      : ctx_(ctx), profile_(std::move(profile)), qr_(qr), qr_asked_(qr_asked), browser_(browser) {}

  void on_code(const oidc::DeviceCode& c) override {
    auto& err = ctx_.term().err();
    const auto& t = ctx_.term();
    err << fmt::format("To log in to profile '{}', open this page on any device:\n    {}\n", profile_,
                       t.err_style(visible(c.verification_uri), Terminal::Style::bold));
    err << fmt::format("and enter the code:  {}\n", t.err_style(visible(c.user_code), Terminal::Style::bold));
    if (!c.verification_uri_complete.empty()) {
      err << fmt::format("(or open {} , which has the code in it)\n", visible(c.verification_uri_complete));
      if (qr_) err << qr_code(c.verification_uri_complete);
      if (qr_asked_ && !qr_available())
        ctx_.term().warn("no QR code: libqrencode cannot be used (install it: Debian and Ubuntu's libqrencode4)");
    }
    err << fmt::format("Waiting for approval; the code expires in {}. Ctrl-C cancels.\n", format_duration(c.expires_in));
    err.flush();
    if (browser_) {
      // RFC 8628 5.4: only https (or http to this machine) goes to a browser; a file: or javascript: URL does not.
      if (is_allowed_url(c.verification_uri_complete)) open_browser(c.verification_uri_complete);
      else if (is_allowed_url(c.verification_uri)) open_browser(c.verification_uri);
      else
        ctx_.term().warn("not opening the login page in a browser: the identity provider gave a URL that is not https");
    }
  }

  void on_slow_down(seconds interval) override {
    ctx_.term().note(fmt::format("the identity provider asks impact to poll less often: every {} now", format_duration(interval)));
  }

 private:
  Context& ctx_;
  std::string profile_;
  bool qr_, qr_asked_;
  bool browser_;
};

json visa_json(const auth::Visa& v) {
  return {{"type", v.type}, {"value", v.value}, {"source", v.source}, {"by", v.by}, {"issuer", v.iss},
          {"asserted", rfc3339(v.asserted)}, {"expires", rfc3339(v.exp)}, {"verified", v.verified}, {"problem", v.problem}};
}

std::string passport_summary(const std::vector<auth::Visa>& visas) {
  std::size_t ok = 0;
  for (const auto& v : visas) ok += v.verified ? 1 : 0;
  return fmt::format("{} visa{}, {} verified", visas.size(), visas.size() == 1 ? "" : "s", ok);
}

struct LoginOptions {
  bool no_browser = false;
  bool qr = false;
  bool no_qr = false;
  bool client_credentials = false;
  std::vector<std::string> scopes;
};

void login(Context& ctx, const LoginOptions& o) {
  Config config = ctx.load_config();
  const Profile& profile = ctx.profile(config);
  auth::Session session(profile, ctx.http_options(profile));
  if (env_set("IMPACT_TOKEN")) ctx.term().warn("IMPACT_TOKEN is set: commands use it instead of this login until you unset it");
  auth::TokenState s;
  if (o.client_credentials) {
    s = session.login_client_credentials(o.scopes);
  } else {
    const bool display = env_set("DISPLAY") || env_set("WAYLAND_DISPLAY");
    const bool qr = o.qr || (!o.no_qr && ctx.term().err_tty());
    LoginObserver observer(ctx, session.profile().name, qr, o.qr, display && !o.no_browser);
    s = session.login_device(observer, o.scopes);
  }
  wes::forget_run_ids(session.profile().name);  // another user may see other runs (completion's cache)
  std::vector<auth::Visa> visas;
  if (!s.visas.empty()) visas = session.passport(false);
  const auto now = auth::epoch_now();
  if (ctx.json()) {
    json out = {{"profile", session.profile().name}, {"issuer", s.issuer}, {"subject", s.subject},
                {"username", s.username}, {"grant", s.grant}, {"scope", s.scope},
                {"access_expires", rfc3339(s.access_expires)}, {"refresh_expires", rfc3339(s.refresh_expires)},
                {"visas", json::array()}};
    for (const auto& v : visas) out["visas"].push_back(visa_json(v));
    ctx.term().print_json(out);
    return;
  }
  std::string who = s.username.empty() ? s.subject : s.username;
  ctx.term().err() << fmt::format("Logged in to profile '{}'{} (access token expires {}{}).\n", session.profile().name,
                                  who.empty() ? std::string(" with client ") + s.client_id : " as " + who,
                                  when(s.access_expires, now), s.refresh_token.empty() ? ", no refresh token" : "");
  if (!visas.empty()) ctx.term().err() << "Passport: " << passport_summary(visas) << " (see: impact passport)\n";
}

void logout(Context& ctx, bool all) {
  Config config = ctx.load_config();
  std::vector<std::string> names;
  if (all) {
    names = auth::TokenStore::standard().profiles();
  } else {
    names.push_back(ctx.profile(config).name);
  }
  json done = json::array();
  for (const auto& name : names) {
    auto it = config.profiles().find(name);
    std::string warning;
    bool had = false;
    if (it == config.profiles().end()) {  // state of a profile that no longer exists: nothing to revoke with
      had = auth::TokenStore::standard().remove(name);
    } else {
      auth::Session session(it->second, ctx.http_options(it->second));
      had = session.logout(warning);
    }
    wes::forget_run_ids(name);
    if (!warning.empty()) ctx.term().warn(name + ": " + warning);
    done.push_back({{"profile", name}, {"logged_out", had}, {"warning", warning}});
    if (!ctx.json()) ctx.term().err() << (had ? fmt::format("Logged out of profile '{}'.\n", name)
                                             : fmt::format("Profile '{}' was not logged in.\n", name));
  }
  if (ctx.json()) ctx.term().print_json({{"profiles", done}});
}

void token(Context& ctx, const std::string& min_valid) {
  // Without --min-valid: the stored token while it is outside its expiry margin, else a refreshed one.
  const seconds need = min_valid.empty() ? seconds(0) : parse_duration(min_valid);
  if (auto env = auth::environment_token()) {
    // impact cannot renew it: a JWT that expires sooner than asked fails (its exp, read, not verified); a
    // token whose expiry cannot be known is handed out as it is.
    const auto exp = jwt::unverified_expiry(*env);
    const auto now = auth::epoch_now();
    if (exp && !min_valid.empty() && *exp - now < need.count())
      throw Error(ErrorKind::auth_required,
                  fmt::format("the token in IMPACT_TOKEN {}, before the {} asked for",
                              *exp <= now ? "has expired" : "expires " + when(*exp, now), format_duration(need)),
                  "set IMPACT_TOKEN to a new token, or unset it to use the profile's own login");
    ctx.term().out() << *env << '\n';
    return;
  }
  Config config = ctx.load_config();
  const Profile& profile = ctx.profile(config);
  auth::Session session(profile, ctx.http_options(profile));
  auth::TokenState s;
  try {
    s = session.fresh(need, min_valid.empty() ? auth::Session::Demand::best_effort : auth::Session::Demand::required);
  } catch (const auth::LifetimeTooShort& e) {
    Error err = e;
    err.with_hint(e.most().count() > 0
                      ? fmt::format("ask for at most --min-valid {}, or leave --min-valid out for the freshest token",
                                    format_duration(e.most()))
                      : "leave --min-valid out for the freshest token");
    throw err;
  }
  if (ctx.json()) {
    ctx.term().print_json({{"access_token", s.access_token}, {"token_type", "Bearer"}, {"expires", rfc3339(s.access_expires)}});
  } else {
    ctx.term().out() << s.access_token << '\n';
  }
}

// `auth status` with IMPACT_TOKEN set: the token's own expiry when it is a JWT (read, not verified: the
// services check it), else a --min-valid that cannot be checked fails rather than passes.
void env_status(Context& ctx, const Profile& profile, const std::string& token, seconds need, bool asked) {
  const auto now = auth::epoch_now();
  const auto exp = jwt::unverified_expiry(token);
  std::vector<std::string> problems;
  if (exp && *exp <= now) problems.push_back("the token in IMPACT_TOKEN has expired (" + when(*exp, now) + ")");
  else if (exp && asked && *exp - now < need.count())
    problems.push_back(fmt::format("the token in IMPACT_TOKEN expires {}, before the {} asked for", when(*exp, now),
                                   format_duration(need)));
  else if (!exp && asked)
    problems.push_back("the expiry of the token in IMPACT_TOKEN cannot be known (it is not a JWT with an exp claim), so "
                       "--min-valid " + format_duration(need) + " cannot be checked");
  if (ctx.json()) {
    ctx.term().print_json({{"profile", profile.name}, {"source", "IMPACT_TOKEN"}, {"access_expires", exp.value_or(0)},
                           {"min_valid", need.count()}, {"ok", problems.empty()}, {"problems", problems}});
  } else {
    ctx.term().out() << "profile " << profile.name << ": using the bearer token in IMPACT_TOKEN (expires "
                     << (exp ? when(*exp, now) : std::string("at a time unknown to impact")) << ")\n";
  }
  if (problems.empty()) return;
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
  throw Error(ErrorKind::auth_required, all,
              exp ? "set IMPACT_TOKEN to a new token, or unset it to use the profile's own login"
                  : "unset IMPACT_TOKEN to check the profile's own login, or leave out --min-valid");
}

// A lifetime learnt from the provider, for people: to the minute (a refresh token's exp read at the login
// is a second or so short of the provider's round figure).
std::int64_t rounded_lifetime(std::int64_t s) { return s >= 3600 ? (s + 30) / 60 * 60 : s; }
std::string lifetime_text(std::int64_t s) { return format_duration(seconds(rounded_lifetime(s))); }

// What to say when the session ends before the time asked for: a new login helps only when the provider's
// sessions last long enough.
std::string session_hint(const Context& ctx, const auth::TokenState& s, seconds need) {
  const std::string login = ctx.hint_for("", Remedy::login);
  if (s.refresh_lifetime <= 0 || rounded_lifetime(s.refresh_lifetime) >= need.count()) return login;
  const std::string life = lifetime_text(s.refresh_lifetime);
  const std::string impact = ctx.impact_command();
  const bool offline = (" " + s.scope + " ").find(" offline_access ") != std::string::npos;
  return fmt::format("the identity provider's sessions last {} (its refresh token lifetime), so a new login cannot "
                     "cover {} either: log in right before the job ({} login){}, or ask the provider's operators for "
                     "longer sessions",
                     life, format_duration(need), impact,
                     offline ? "" : fmt::format(", ask for offline access ({} login --scope openid --scope offline_access "
                                                "--scope ga4gh_passport_v1)", impact));
}

void status(Context& ctx, const std::string& min_valid) {
  const seconds need = min_valid.empty() ? seconds(0) : parse_duration(min_valid);
  Config config = ctx.load_config();
  const Profile& profile = ctx.profile(config);
  auth::Session session(profile, ctx.http_options());
  const auto now = auth::epoch_now();
  if (auto env = auth::environment_token()) {
    env_status(ctx, profile, *env, need, !min_valid.empty());
    return;
  }
  auto stored = session.stored();
  if (!stored)
    throw Error(ErrorKind::auth_required, fmt::format("not logged in to profile '{}'", profile.name)).with_remedy(Remedy::login);
  auth::TokenState s = *stored;
  std::vector<std::string> problems;
  std::string hint;
  // The session lasts as long as the refresh token (or, without one, the access token); a CI client's
  // session lasts as long as its secret. The access token's own lifetime does not matter here: however
  // short, it is renewed while the session lasts.
  const bool renewable = s.refresh_token.empty() && s.grant == "client_credentials";
  const std::int64_t until = renewable ? 0 : s.refresh_token.empty() ? s.access_expires : s.refresh_expires;
  bool ended = false;
  if (!s.refresh_token.empty() && s.refresh_expires != 0 && s.refresh_expires <= now) {
    problems.push_back("the session has expired");
    ended = true;
  }
  if (s.refresh_token.empty() && !renewable && s.access_expires <= now) {
    problems.push_back("the access token has expired and cannot be refreshed");
    ended = true;
  }
  if (problems.empty() && until != 0 && until - now < need.count()) {
    problems.push_back(fmt::format("the session ends {}, before the {} asked for", when(until, now), format_duration(need)));
    hint = session_hint(ctx, s, need);
  }
  // The visas are checked (and reported) whatever the session: a job needs both. A session that has ended
  // cannot fetch the passport again: its stored visas are verified as they are.
  std::vector<auth::Visa> visas;
  if (!s.visas.empty()) {
    try {
      visas = ended ? session.verify(s.visas) : session.passport(false);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      visas = session.verify(s.visas);
    }
    for (const auto& v : visas)
      if (v.verified && v.exp - now < need.count())
        problems.push_back(fmt::format("visa {} {} expires {}", v.type, v.value, when(v.exp, now)));
  }
  s = session.stored().value_or(s);
  if (ctx.json()) {
    json out = {{"profile", profile.name}, {"issuer", s.issuer}, {"client_id", s.client_id}, {"grant", s.grant},
                {"subject", s.subject}, {"username", s.username}, {"name", s.name}, {"email", s.email},
                {"scope", s.scope}, {"access_expires", rfc3339(s.access_expires)},
                {"access_lifetime", auth::Session::lifetime(s).count()}, {"refresh_expires", rfc3339(s.refresh_expires)},
                {"refresh_lifetime", s.refresh_lifetime}, {"has_refresh_token", !s.refresh_token.empty()}, {"visas", json::array()},
                {"min_valid", need.count()}, {"ok", problems.empty()}, {"problems", problems}};
    for (const auto& v : visas) out["visas"].push_back(visa_json(v));
    ctx.term().print_json(out);
  } else {
    Table t{{"FIELD", "VALUE"}, {}};
    t.rows.push_back({"profile", profile.name});
    t.rows.push_back({"issuer", s.issuer});
    t.rows.push_back({"user", s.username.empty() ? s.subject : s.username + (s.name.empty() ? "" : " (" + s.name + ")")});
    t.rows.push_back({"grant", s.grant});
    t.rows.push_back({"scopes", s.scope});
    const auto life = auth::Session::lifetime(s);
    t.rows.push_back({"access token", "expires " + when(s.access_expires, now) +
                                          (life.count() > 0 ? " (issued for " + format_duration(life) + ")" : "")});
    t.rows.push_back({"refresh token", s.refresh_token.empty()
                                           ? "none"
                                           : "expires " + when(s.refresh_expires, now) +
                                                 (s.refresh_lifetime > 0
                                                      ? " (issued for " + lifetime_text(s.refresh_lifetime) + ")"
                                                      : "")});
    for (const auto& v : visas)
      t.rows.push_back({"visa " + v.type, v.verified ? v.value + ", expires " + when(v.exp, now) : "NOT VERIFIED: " + v.problem});
    ctx.term().print_table(t, ctx.format() == Format::json ? Format::table : ctx.format());
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    if (hint.empty()) hint = ctx.hint_for("", Remedy::login);
    throw Error(ErrorKind::auth_required, all, hint);
  }
}

void passport(Context& ctx, bool refresh, bool raw) {
  Config config = ctx.load_config();
  const Profile& profile = ctx.profile(config);
  auth::Session session(profile, ctx.http_options(profile));
  auto visas = session.passport(refresh);
  const auto now = auth::epoch_now();
  if (raw) {  // the JWTs themselves, one per line: credentials, for piping into another tool
    for (const auto& v : visas) ctx.term().out() << v.jwt << '\n';
    return;
  }
  auto stored = session.stored();
  const bool broker = stored && !stored->passport.empty();
  if (ctx.json()) {
    json out = json::array();
    for (const auto& v : visas) out.push_back(visa_json(v));
    json doc = {{"visas", out}};
    if (broker) doc["broker_passport"] = {{"issuer", stored->issuer}, {"expires", rfc3339(stored->passport_expires)}};
    ctx.term().print_json(doc);
    return;
  }
  if (broker)
    ctx.term().note(fmt::format("a Passport signed by {} is also held (token exchange), expiring {}", stored->issuer,
                                when(stored->passport_expires, now)));
  if (visas.empty()) {
    ctx.term().note("the passport has no visas");
    return;
  }
  Table t{{"TYPE", "VALUE", "SOURCE", "BY", "ASSERTED", "EXPIRES", "VERIFIED"}, {}};
  for (const auto& v : visas)
    t.rows.push_back({v.type, v.value, v.source, v.by, date_of(v.asserted), when(v.exp, now),
                      v.verified ? "yes" : "no: " + v.problem});
  ctx.term().print_table(t, ctx.format());
}

}  // namespace

void register_login(CLI::App& app, Context& ctx) {
  auto lo = std::make_shared<LoginOptions>();
  auto* login_cmd = add_command(app, "login");
  login_cmd->add_flag("--no-browser", lo->no_browser, "Do not try to open a browser (implied without a display)");
  auto* qr = login_cmd->add_flag("--qr", lo->qr, "Show a QR code of the login URL (default on a terminal)");
  login_cmd->add_flag("--no-qr", lo->no_qr, "Never show a QR code")->excludes(qr);
  login_cmd->add_option("--scope", lo->scopes, "Scope to request (repeatable; default: the profile's, else openid offline_access ga4gh_passport_v1)");
  login_cmd->add_flag("--client-credentials", lo->client_credentials,
                      "Use the profile's confidential client (secret from its client_secret_file or IMPACT_CLIENT_SECRET)");
  login_cmd->footer("Examples:\n  impact login\n  impact --profile ci login --client-credentials");
  login_cmd->callback(ctx.action([&ctx, lo] { login(ctx, *lo); }));
}

void register_logout(CLI::App& app, Context& ctx) {
  auto all = std::make_shared<bool>(false);
  auto* logout_cmd = add_command(app, "logout");
  logout_cmd->add_flag("--all", *all, "Every profile, not just the current one");
  logout_cmd->footer("Examples:\n  impact logout\n  impact logout --all");
  logout_cmd->callback(ctx.action([&ctx, all] { logout(ctx, *all); }));
}

void register_token(CLI::App& app, Context& ctx) {
  auto token_min = std::make_shared<std::string>();
  auto* token_cmd = add_command(app, "token");
  duration_flag(token_cmd->add_option("--min-valid", *token_min,
                                      "How long the token must stay valid, e.g. 10m (default: the freshest token; exit 4 "
                                      "if the provider's tokens live shorter)"),
                flag_range::min_valid);
  token_cmd->footer("Examples:\n  curl -H @<(printf 'Authorization: Bearer %s\\n' \"$(impact token)\") URL\n"
                    "  impact token --min-valid 10m");
  token_cmd->callback(ctx.action([&ctx, token_min] { token(ctx, *token_min); }));
}

void register_auth(CLI::App& app, Context& ctx) {
  auto* auth_grp = add_command(app, "auth");
  auth_grp->require_subcommand(1);
  auth_grp->footer("Examples:\n  impact auth status\n  impact auth status --min-valid 48h || impact login");
  auto status_min = std::make_shared<std::string>();
  auto* status_cmd = auth_grp->add_subcommand("status", "Who you are, token and visa expiry; exit 0 only if all stay valid long enough");
  duration_flag(status_cmd->add_option("--min-valid", *status_min,
                                       "Fail (exit 4) unless the session and every visa stay valid this long, e.g. 72h (with "
                                       "IMPACT_TOKEN: the token's own expiry; exit 4 when it cannot be known)"),
                flag_range::min_valid);
  status_cmd->footer("Examples:\n  impact auth status\n  impact auth status --min-valid 72h || impact login");
  status_cmd->callback(ctx.action([&ctx, status_min] { status(ctx, *status_min); }));
}

void register_passport(CLI::App& app, Context& ctx) {
  auto refresh = std::make_shared<bool>(false);
  auto raw = std::make_shared<bool>(false);
  auto* passport_cmd = add_command(app, "passport");
  passport_cmd->add_flag("--refresh", *refresh, "Fetch the passport again from the identity provider");
  passport_cmd->add_flag("--raw", *raw, "Print the visa JWTs themselves, one per line (they are credentials)");
  passport_cmd->footer("Examples:\n  impact passport\n  impact passport --refresh --json");
  passport_cmd->callback(ctx.action([&ctx, refresh, raw] { passport(ctx, *refresh, *raw); }));
}

}  // namespace impact::cli
