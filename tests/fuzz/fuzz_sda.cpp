// The SDA download API's listings (archive.hpp): v2 dataset and file pages, v1 lists, of any shape; and the
// decrypting filter fed arbitrary bytes as a body (a header made here, so segments mostly fail their MAC).
#include "fuzz.hpp"
#include "impact/archive.hpp"

using namespace impact;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text(data, size);
  fuzz::expect_error_only([&] {
    const auto page = archive::parse_files_v2(text);
    for (const auto& f : page.files) {
      nlohmann::json j = f;
      (void)j.dump();
    }
  });
  fuzz::expect_error_only([&] { (void)archive::parse_datasets_v2(text); });
  fuzz::expect_error_only([&] { (void)archive::parse_datasets_v1(text); });
  fuzz::expect_error_only([&] { (void)archive::parse_files_v1(text); });
  fuzz::expect_error_only([&] {
    static const crypt4gh::KeyPair reader = crypt4gh::generate_key_pair();
    static const auto header = [] {
      crypt4gh::Key data_key{};
      auto bytes = crypt4gh::make_header({reader.public_key}, data_key);
      return std::make_shared<const crypt4gh::Header>(std::move(*crypt4gh::parse_header(bytes, reader)));
    }();
    auto filter = archive::decrypting_filter(header, size % 3, size % 70000, size);
    std::string out;
    filter->update(text, out);
    filter->finish(out);
  });
  return 0;
}
