#pragma once
// A C library opened on first use (dlopen) instead of linked, so that the commands that never need it do not
// pay for loading it at start-up (issue 23): libcurl, libcrypto, libjq, libqrencode. The handle is never
// closed (these libraries keep global state). A library that cannot be opened, or that lacks a function,
// is an impact::Error (generic) that says so, never a crash.
#include <cstring>
#include <string>
#include <utility>

namespace impact {

class LazyLibrary {
 public:
  // `purpose` starts each error ("cannot use libcurl, which every network request needs"), `hint` ends it
  // (how to install the library). Throws when the library cannot be opened.
  LazyLibrary(const char* soname, std::string purpose, std::string hint);

  // Sets `out` to the library's function `name` (the pointer type is the caller's declaration of it).
  template <class F>
  void bind(const char* name, F& out) const {
    void* sym = symbol(name);
    static_assert(sizeof(F) == sizeof(sym));
    std::memcpy(&out, &sym, sizeof out);  // an object pointer to a function pointer, without a cast
  }

  [[noreturn]] void unavailable(const std::string& why) const;

 private:
  void* symbol(const char* name) const;

  std::string soname_, purpose_, hint_;
  void* handle_ = nullptr;
};

}  // namespace impact
