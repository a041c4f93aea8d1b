#include "jq.hpp"

#include <vector>

#include "impact/error.hpp"
#include "impact/lazy_library.hpp"

#ifdef IMPACT_HAVE_JQ
extern "C" {
#include <jq.h>
#include <jv.h>
}
#endif

namespace impact::cli {

namespace {
constexpr const char* kPurpose = "--jq needs libjq, which cannot be used";
constexpr const char* kInstall = "install libjq (Debian and Ubuntu: the libjq1 package), or pipe --json into jq(1)";

// The error of a libjq that cannot serve, in the words LazyLibrary uses when it cannot be opened.
[[noreturn]] void unavailable(const std::string& why) {
  throw Error(ErrorKind::generic, std::string(kPurpose) + ": " + why, kInstall);
}
}  // namespace

#ifdef IMPACT_HAVE_JQ

#define IMPACT_JQ_FUNCTIONS(X)                                                                            \
  X(jq_init) X(jq_set_error_cb) X(jq_compile) X(jq_start) X(jq_next) X(jq_teardown) X(jv_parse_sized)    \
  X(jv_dump_string) X(jv_string_value) X(jv_get_kind) X(jv_free) X(jv_copy) X(jv_invalid_has_msg)         \
  X(jv_invalid_get_msg)

namespace {
struct Api {
#define IMPACT_JQ_POINTER(name) decltype(&::name) name = nullptr;
  IMPACT_JQ_FUNCTIONS(IMPACT_JQ_POINTER)
#undef IMPACT_JQ_POINTER
};

const Api& api() {
  static const Api loaded = [] {
    const LazyLibrary lib("libjq.so.1", kPurpose, kInstall);  // never closed: one program per process
    Api a;
#define IMPACT_JQ_RESOLVE(name) lib.bind(#name, a.name);
    IMPACT_JQ_FUNCTIONS(IMPACT_JQ_RESOLVE)
#undef IMPACT_JQ_RESOLVE
    return a;
  }();
  return loaded;
}

// The text of an invalid value's message (consumes `msg`).
std::string message_of(const Api& a, jv msg) {
  std::string text;
  if (a.jv_get_kind(msg) == JV_KIND_STRING) {
    text = a.jv_string_value(msg);
  } else {
    jv dumped = a.jv_dump_string(a.jv_copy(msg), 0);
    text = a.jv_string_value(dumped);
    a.jv_free(dumped);
  }
  a.jv_free(msg);
  return text;
}
}  // namespace

struct JqProgram::State {
  const Api* a = nullptr;
  jq_state* jq = nullptr;
  std::vector<std::string> errors;
};

JqProgram::JqProgram(const std::string& program) : state_(std::make_unique<State>()) {
  const Api& a = api();
  state_->a = &a;
  state_->jq = a.jq_init();
  if (!state_->jq) unavailable("jq_init failed");
  a.jq_set_error_cb(
      state_->jq,
      [](void* data, jv msg) {
        auto* st = static_cast<State*>(data);
        st->errors.push_back(message_of(*st->a, msg));
      },
      state_.get());
  if (!a.jq_compile(state_->jq, program.c_str())) {
    std::string why = state_->errors.empty() ? "it does not compile" : state_->errors.front();
    // "jq: error: syntax error, ... at <top-level>, line 1:\n.[[" -> its first line, without "jq: error: "
    if (why.rfind("jq: error: ", 0) == 0) why.erase(0, 11);
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.erase(nl);
    if (!why.empty() && why.back() == ':') why.pop_back();
    a.jq_teardown(&state_->jq);  // a throwing constructor runs no destructor
    throw Error(ErrorKind::usage, "--jq: " + why, "see jq(1) for the language; e.g. --jq '.runs[].run_id'");
  }
}

JqProgram::~JqProgram() {
  if (state_ && state_->jq) state_->a->jq_teardown(&state_->jq);
}

void JqProgram::run(std::string_view json, const std::function<void(const std::string&)>& each) {
  const Api& a = *state_->a;
  jv input = a.jv_parse_sized(json.data(), static_cast<int>(json.size()));
  if (a.jv_get_kind(input) == JV_KIND_INVALID) {
    a.jv_free(input);
    throw Error(ErrorKind::generic, "--jq: the output could not be read back as JSON");
  }
  a.jq_start(state_->jq, input, 0);  // takes `input`
  for (;;) {
    jv result = a.jq_next(state_->jq);
    if (a.jv_get_kind(result) == JV_KIND_INVALID) {
      if (a.jv_invalid_has_msg(a.jv_copy(result)))
        throw Error(ErrorKind::generic, "--jq: " + message_of(a, a.jv_invalid_get_msg(result)));
      a.jv_free(result);
      return;
    }
    jv text = a.jv_dump_string(result, 0);  // takes `result`
    std::string s = a.jv_string_value(text);
    a.jv_free(text);
    each(s);
  }
}

#else  // built without jq.h

struct JqProgram::State {};
JqProgram::JqProgram(const std::string&) { unavailable("impact was built without libjq's header (libjq-dev)"); }
JqProgram::~JqProgram() = default;
void JqProgram::run(std::string_view, const std::function<void(const std::string&)>&) {}

#endif

}  // namespace impact::cli
