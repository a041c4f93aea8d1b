// The SDA download API (archive.hpp): its listing parsers on good and hostile bodies, and the filter that
// decrypts any plaintext range of a Crypt4GH body from the whole segments that hold it, in any chunking.
#include <doctest/doctest.h>

#include <random>

#include "impact/archive.hpp"
#include "impact/error.hpp"

namespace archive = impact::archive;
namespace c4gh = impact::crypt4gh;
using impact::Error;
using impact::ErrorKind;

TEST_CASE("archive: v2 and v1 listings are parsed, bounded and checked") {
  auto page = archive::parse_files_v2(
      R"({"files":[{"fileId":"urn:1","filePath":"a/b.vcf","size":1028,"decryptedSize":1000,)"
      R"("checksums":[{"type":"sha256","checksum":"ab"}],"downloadUrl":"/files/urn:1"}],"nextPageToken":"t2"})");
  REQUIRE(page.files.size() == 1);
  CHECK(page.files[0].path == "a/b.vcf");
  CHECK(page.files[0].decrypted_size == 1000);
  CHECK(page.files[0].checksums.at(0).value == "ab");
  CHECK(page.next == "t2");
  CHECK(archive::parse_files_v2(R"({"files":[],"nextPageToken":null})").next.empty());
  auto ds = archive::parse_datasets_v2(R"({"datasets":["d1","d2"]})");
  CHECK(ds.datasets == std::vector<std::string>{"d1", "d2"});
  CHECK(archive::parse_datasets_v1(R"(["x"])") == std::vector<std::string>{"x"});
  auto v1 = archive::parse_files_v1(R"([{"fileId":"f","filePath":"p","fileSize":60,"decryptedFileSize":32,)"
                                    R"("decryptedFileChecksum":"cd","decryptedFileChecksumType":"SHA256"}])");
  REQUIRE(v1.size() == 1);
  CHECK(v1[0].checksums.at(0).type == "SHA256");

  for (const char* bad : {"not json", R"({"files":{}})", R"({"nope":[]})", R"({"files":[{"fileId":"x"}]})",
                          R"({"files":[{"fileId":"x","filePath":"y","size":-5}]})", R"({"files":[1]})",
                          R"({"datasets":[""]})", R"({"files":[],"nextPageToken":5})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)archive::parse_files_v2(bad), Error);
  }
  CHECK_THROWS_AS((void)archive::parse_datasets_v2(R"({"datasets":[""]})"), Error);
  const std::string long_path(archive::kMaxPathLength + 1, 'a');
  CHECK_THROWS_AS((void)archive::parse_files_v2(R"({"files":[{"fileId":"x","filePath":")" + long_path + R"("}]})"), Error);
}

TEST_CASE("archive: the decrypting filter gives any plaintext range from its segments, in any chunking") {
  const auto reader = c4gh::generate_key_pair();
  std::string plain(3 * c4gh::segment_size + 1234, '\0');
  std::mt19937 rng(7);
  for (auto& ch : plain) ch = static_cast<char>(rng());
  std::string file;
  c4gh::Encryptor enc({reader.public_key}, [&](std::string_view b) { file.append(b); });
  enc.update(plain);
  enc.finish();
  auto parsed = c4gh::parse_header(file, reader);
  REQUIRE(parsed);
  const std::size_t hlen = static_cast<std::size_t>(parsed->length);
  auto header = std::make_shared<const c4gh::Header>(std::move(*parsed));
  const std::string body = file.substr(hlen);

  for (auto range : {std::pair<std::size_t, std::size_t>{0, plain.size() - 1}, {70000, 70010}, {65536, 131071},
                     {5, 200000}, {196608, plain.size() - 1}}) {
    const std::size_t first = range.first, last = range.second;
    for (std::size_t chunk : {1u, 1000u, 65564u, 300000u}) {
      CAPTURE(first);
      CAPTURE(chunk);
      const std::size_t seg = first / c4gh::segment_size;
      const std::size_t end = std::min((last / c4gh::segment_size + 1) * c4gh::cipher_segment_size, body.size());
      auto f = archive::decrypting_filter(header, seg, first % c4gh::segment_size, last - first + 1);
      std::string out;
      const std::string_view wire = std::string_view(body).substr(seg * c4gh::cipher_segment_size, end - seg * c4gh::cipher_segment_size);
      for (std::size_t at = 0; at < wire.size(); at += chunk) f->update(wire.substr(at, chunk), out);
      f->finish(out);
      CHECK(out == plain.substr(first, last - first + 1));
    }
  }
  // a flipped byte names its segment
  std::string bad = body;
  bad[2 * c4gh::cipher_segment_size + 40] ^= 1;
  auto f = archive::decrypting_filter(header, 0, 0, plain.size());
  std::string out;
  try {
    f->update(bad, out);
    f->finish(out);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("segment 2") != std::string::npos);
  }
}
