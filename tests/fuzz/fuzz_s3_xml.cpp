// S3 answers (storage.hpp): ListObjectsV2 pages, error bodies and STS AssumeRoleWithWebIdentity answers,
// all XML from a server impact does not control. The first byte picks the parser.
#include "fuzz.hpp"
#include "impact/storage.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto body = fuzz::text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz::expect_error_only([&] {
        auto page = storage::parse_list_page(body);
        for (const auto& o : page.objects)
          if (o.size > (5ull << 40)) __builtin_trap();  // sizes are bounded
      });
      break;
    case 1: {
      (void)storage::s3_error_code(body);
      http::Response r;
      r.status = 400 + data[0] % 100;
      r.body = std::string(body);
      fuzz::expect_error_only([&] { storage::throw_s3_error(r, "fuzzing"); });
      break;
    }
    default: {
      http::Response r;
      r.status = 200;
      r.body = std::string(body);
      fuzz::expect_error_only([&] { (void)storage::parse_sts_response(r); });
    }
  }
  return 0;
}
