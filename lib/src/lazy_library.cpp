#include "impact/lazy_library.hpp"

#include <dlfcn.h>

#include "impact/error.hpp"

namespace impact {

LazyLibrary::LazyLibrary(const char* soname, std::string purpose, std::string hint)
    : soname_(soname), purpose_(std::move(purpose)), hint_(std::move(hint)) {
  // RTLD_LOCAL: the library's symbols serve only the pointers bound here.
  handle_ = dlopen(soname_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* why = dlerror();
    unavailable(why ? why : soname_ + " was not found");
  }
}

void* LazyLibrary::symbol(const char* name) const {
  void* sym = dlsym(handle_, name);
  if (!sym) unavailable(soname_ + " has no " + name + " (too old?)");
  return sym;
}

void LazyLibrary::unavailable(const std::string& why) const {
  throw Error(ErrorKind::generic, purpose_ + ": " + why, hint_);
}

}  // namespace impact
