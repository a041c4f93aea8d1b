#include "curl_api.hpp"

#include "impact/lazy_library.hpp"

namespace impact::http::detail {

namespace {

CurlApi load() {
  // The handle is never closed: libcurl keeps global state (and its libraries register atexit handlers) for
  // the life of the process.
  const LazyLibrary lib("libcurl.so.4", "cannot use libcurl, which every network request needs",
                        "install libcurl 7.85 or later (Debian and Ubuntu: the libcurl4 package)");
  CurlApi api;
#define IMPACT_CURL_RESOLVE(name) lib.bind("curl_" #name, api.name);
  IMPACT_CURL_FUNCTIONS(IMPACT_CURL_RESOLVE)
#undef IMPACT_CURL_RESOLVE
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) lib.unavailable("curl_global_init failed");
  return api;
}

}  // namespace

const CurlApi& curl_api() {
  // A function-local static: initialised once, thread-safe, and retried when load() threw.
  static const CurlApi api = load();
  return api;
}

}  // namespace impact::http::detail
