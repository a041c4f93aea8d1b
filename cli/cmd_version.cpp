#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/about.hpp"
#include "impact/version.hpp"

namespace impact::cli {

// `impact version` names the libraries loaded now (it loads them: a missing libcurl shows); `impact --version`,
// on the fast path of scripts, the same line with the versions impact was built against, loading nothing.
void print_version(Context& ctx, bool loaded) {
  const std::string curl = loaded ? curl_version() : curl_build_version();
  const std::string tls = loaded ? tls_version() : tls_build_version();
  if (ctx.json()) {
    ctx.term().print_json({{"version", version_string}, {"curl", curl}, {"tls", tls}, {"build_type", build_type()}});
    return;
  }
  ctx.term().out() << "impact " << version_string << " (libcurl " << curl << ", " << tls << ", " << build_type()
                   << " build)\n";
}

void register_version(CLI::App& app, Context& ctx) {
  auto* cmd = add_command(app, "version");
  cmd->footer("Examples:\n  impact version\n  impact version --json");
  cmd->callback(ctx.action([&ctx] { print_version(ctx, true); }));
}

}  // namespace impact::cli
