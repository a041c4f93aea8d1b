// TES documents (tes.hpp): tasks from servers (parse_task, to_json) of any shape, and the checks impact
// runs on task documents before sending them (validate_task, check_url_credentials).
#include "fuzz.hpp"
#include "impact/tes.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text(data, size);
  fuzz::expect_error_only([&] {
    const auto doc = tes::parse_document(text, "input", ErrorKind::protocol);
    const auto task = tes::parse_task(doc);
    nlohmann::json j = task;
    (void)j.dump(2);
    (void)tes::tags_match(task.tags, task.tags);
    tes::validate_task(doc);
    tes::check_url_credentials(doc, false);
    tes::check_token_not_in_urls(doc, "tok");
  });
  return 0;
}
