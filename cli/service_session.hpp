// One command's connection to the profile's WES or TES: the configuration, an HTTP client and the service's
// client, with the user's token when the profile has a login (else anonymous: an open service needs none).
// The token is asked for on every request, so a long wait or --follow gets it refreshed as it nears its end.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "context.hpp"
#include "impact/error.hpp"

namespace impact::cli {

template <class Client>
struct ServiceSession {
  Config config;
  http::Client http;
  std::unique_ptr<Client> client;
};

// The service at `url_of` in the current profile (`name`: "WES", "TES"); a profile without one is
// Error(config) with the hint `missing(profile)`.
template <class Client>
std::unique_ptr<ServiceSession<Client>> connect_service(Context& ctx, std::string Profile::*url_of, const char* name,
                                                        const std::function<std::string(const Profile&)>& missing) {
  auto s = std::make_unique<ServiceSession<Client>>(ServiceSession<Client>{ctx.load_config(), ctx.client(), nullptr});
  const Profile& p = ctx.profile(s->config);
  const std::string url = p.*url_of;
  if (url.empty()) throw Error(ErrorKind::config, "profile '" + p.name + "' has no " + name + " service", missing(p));
  std::function<std::string()> token;
  if (auth::Credentials* creds = ctx.login_if_any(p)) token = [creds, url] { return creds->bearer_token(url); };
  s->client = std::make_unique<Client>(s->http, url, std::move(token));
  return s;
}

}  // namespace impact::cli
