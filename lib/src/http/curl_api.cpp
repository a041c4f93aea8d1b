#include "curl_api.hpp"

#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>

#include "impact/error.hpp"

namespace impact::http::detail {

namespace {

constexpr const char* kLibrary = "libcurl.so.4";

[[noreturn]] void unavailable(const std::string& why) {
  throw Error(ErrorKind::generic, std::string("cannot use libcurl, which every network request needs: ") + why,
              "install libcurl 7.85 or later (Debian and Ubuntu: the libcurl4 package)");
}

// A symbol's address as the function pointer it is (copied: a cast between object and function pointers is
// only conditionally supported).
template <class F>
void resolve(void* lib, const char* name, F& out) {
  void* sym = dlsym(lib, name);
  if (!sym) unavailable(std::string(kLibrary) + " has no " + name + " (too old?)");
  static_assert(sizeof(F) == sizeof(sym));
  std::memcpy(&out, &sym, sizeof out);
}

CurlApi load() {
  // RTLD_LOCAL: libcurl's symbols serve only these pointers. The handle is never closed: libcurl keeps
  // global state (and its libraries register atexit handlers) for the life of the process.
  void* lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    unavailable(why ? why : std::string(kLibrary) + " was not found");
  }
  CurlApi api;
#define IMPACT_CURL_RESOLVE(name) resolve(lib, "curl_" #name, api.name);
  IMPACT_CURL_FUNCTIONS(IMPACT_CURL_RESOLVE)
#undef IMPACT_CURL_RESOLVE
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) unavailable("curl_global_init failed");
  return api;
}

}  // namespace

const CurlApi& curl_api() {
  // A function-local static: initialised once, thread-safe, and retried when load() threw.
  static const CurlApi api = load();
  return api;
}

}  // namespace impact::http::detail
