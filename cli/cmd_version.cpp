#include <nlohmann/json.hpp>

#include "context.hpp"
#include "impact/about.hpp"
#include "impact/version.hpp"

namespace impact::cli {

void print_version(Context& ctx) {
  if (ctx.json()) {
    ctx.term().print_json({{"version", version_string},
                           {"curl", curl_version()},
                           {"tls", tls_version()},
                           {"build_type", build_type()}});
    return;
  }
  ctx.term().out() << "impact " << version_string << " (libcurl " << curl_version() << ", " << tls_version()
                   << ", " << build_type() << " build)\n";
}

void register_version(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("version", "Print impact's version and the versions of the libraries it uses");
  cmd->footer("Examples:\n  impact version\n  impact version --json");
  cmd->callback(ctx.action([&ctx] { print_version(ctx); }));
}

}  // namespace impact::cli
