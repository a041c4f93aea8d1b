// --jq EXPR: a jq program (Debian's libjq, the jq(1) language) run over a command's JSON output. libjq is
// opened with dlopen when --jq is given, never at start-up: most commands never need it (see
// lib/src/openssl_lazy.cpp for the same reasoning about libcrypto).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace impact::cli {

class JqProgram {
 public:
  // Compiles `program`. Throws Error(usage) naming jq's message when it does not compile, and Error(generic)
  // when libjq cannot be loaded (or impact was built without its header).
  explicit JqProgram(const std::string& program);
  ~JqProgram();
  JqProgram(const JqProgram&) = delete;
  JqProgram& operator=(const JqProgram&) = delete;

  // Runs the program over one JSON text; each result is given to `each` as compact JSON text. Throws
  // Error(generic) with jq's message on a run-time error (after the results before it).
  void run(std::string_view json, const std::function<void(const std::string&)>& each);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace impact::cli
