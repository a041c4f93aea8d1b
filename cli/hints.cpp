// The CLI's words for the remedies the library names (impact::Remedy): the commands and flags to use, with
// --profile NAME when the user chose a profile that way, after the library's own hint (facts, no commands).
#include <cstdlib>

#include <fmt/format.h>

#include "context.hpp"
#include "impact/token_store.hpp"

namespace impact::cli {
namespace {

// A fact the remedy needs ("" when absent).
std::string fact(const std::map<std::string, std::string>& facts, const std::string& name) {
  auto it = facts.find(name);
  return it == facts.end() ? std::string() : it->second;
}

std::string words(Remedy remedy, const std::map<std::string, std::string>& facts, const std::string& impact) {
  auto f = [&facts](const char* name) { return fact(facts, name); };
  switch (remedy) {
    case Remedy::none: return {};
    case Remedy::login: return "run: " + impact + " login";
    case Remedy::add_service: return "add the service to the profile (impact profile add) if you trust it";
    case Remedy::add_issuer:
      return "add one: impact profile add NAME --issuer URL --client-id ID (or --registry URL)";
    case Remedy::client_secret:
      return "set the profile's client_secret_file (impact profile add … --client-secret-file FILE) or IMPACT_CLIENT_SECRET";
    case Remedy::profile_show: return "see: " + impact + " profile show";
    case Remedy::profile_add: return "run: impact profile add NAME --registry URL (or with --issuer, --wes, ...)";
    case Remedy::profile_choose: return "run: impact profile use NAME, or pass --profile NAME";
    case Remedy::profile_list: return "run: impact profile list";
    case Remedy::other_config: return "to use another file: --config FILE";
    case Remedy::cacert: return "if the server uses a private CA, pass --cacert FILE or set SSL_CERT_FILE";
    case Remedy::passport: return "see: " + impact + " passport";
    case Remedy::scope: return "to ask for other scopes: " + impact + " login --scope SCOPE";
    case Remedy::part_size: return "run again with --part-size larger than the object";
    case Remedy::exclude: return "leave it out with --exclude";
    case Remedy::lower_parallel: return "or run again with a lower --parallel";
    case Remedy::results_ls: return "list what is there: " + impact + " results ls";
    case Remedy::results_download_url: return "download it with: " + impact + " results download " + f("url");
    case Remedy::run_show: return "see the run's outputs: " + impact + " run show " + f("run_id");
    case Remedy::run_wait:
      return fmt::format("the run is {}: wait for it ({} run wait {})", f("state"), impact, f("run_id"));
    case Remedy::run_list_tag:
      return fmt::format("the run may exist: look for it with: {} run list --tag {}={}", impact, f("tag"), f("value"));
    case Remedy::task_list_tag:
      return fmt::format("the task may exist: look for it with: {} task list --tag {}={}", impact, f("tag"), f("value"));
    case Remedy::run_status: return "check the run id (" + impact + " run status RUN_ID) or the prefix";
    case Remedy::workflow_type: return "give it with --type CWL|WDL|NFL|SMK";
    case Remedy::type_version: return "give it with --type-version";
    case Remedy::service_info: return "see: " + impact + " service-info " + f("service");
    case Remedy::client_credentials: return "or log in with: " + impact + " login --client-credentials";
    case Remedy::drs_resolver: return "set one: impact profile add NAME --drs-resolver https://resolver.api.identifiers.org";
  }
  return {};
}

}  // namespace

std::string Context::hint_for(const std::string& hint, Remedy remedy, const std::map<std::string, std::string>& facts) const {
  const std::string impact = impact_command();
  const std::string advice = words(remedy, facts, impact);
  if (advice.empty()) return hint;
  if (hint.empty()) return advice;
  return hint + "; " + advice;
}

std::string Context::impact_command() const {
  return globals.profile.empty() ? std::string("impact") : "impact --profile " + globals.profile;
}

// A service refused the token (HTTP 401/403 with the login remedy) where logging in again cannot help: the
// token came from IMPACT_TOKEN (impact neither chose nor refreshes it), or from a CI client whose
// credentials the service does not accept (a new login gets the same client the same refusal). "" otherwise.
std::string Context::refused_token_words(const Error& e) const {
  if (e.remedy() != Remedy::login || !e.http_status()) return {};
  const char* env = std::getenv("IMPACT_TOKEN");
  if (env != nullptr && *env != '\0')
    return "the token in IMPACT_TOKEN was refused (it may have expired; impact never refreshes it): set IMPACT_TOKEN "
           "to a new token, or unset it to use the profile's own login";
  if (active_profile_.empty()) return {};
  try {
    auto s = auth::TokenStore::standard().load(active_profile_);
    if (!s || s->grant != "client_credentials") return {};
    return fmt::format("profile '{}' is logged in as the client '{}' (client credentials), and a new login would get "
                       "the same refusal: this service gives that client no access; ask its operators to grant it",
                       active_profile_, s->client_id);
  } catch (const Error&) {
    return {};
  }
}

std::string Context::hint_for(const Error& e) const {
  if (auto refused = refused_token_words(e); !refused.empty()) return e.hint().empty() ? refused : e.hint() + "; " + refused;
  return hint_for(e.hint(), e.remedy(), e.facts());
}

}  // namespace impact::cli
