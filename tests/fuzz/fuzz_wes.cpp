// WES answers (wes.hpp parse_run_log, parse_summary, parse_log, to_json): run logs, run lists and task logs
// with outputs of any shape (CWL File arrays, nested lists, strings holding JSON).
#include "fuzz.hpp"
#include "impact/wes.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto doc = fuzz::json(fuzz::text(data, size));
  if (doc.is_discarded()) return 0;
  fuzz::expect_error_only([&] {
    const auto run = wes::parse_run_log(doc);
    nlohmann::json j = run;
    (void)j.dump(2);
    nlohmann::json s = wes::parse_summary(doc);
    (void)s.dump();
    nlohmann::json l = wes::parse_log(doc);
    (void)l.dump();
    (void)run.tags();
  });
  return 0;
}
