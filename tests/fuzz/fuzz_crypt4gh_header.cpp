// Crypt4GH headers, segments and key files (crypt4gh.hpp): a file as an archive or a user sends it.
// The reader is the test vectors' `bob` key, so the seeds (the htsget-rs files) decrypt.
// Input: 1 byte (bits 0-1: how the bytes are fed; bit 2: seal the first part as a header packet for bob,
// so that mutations reach the packet contents behind the MAC; bit 3: parse as a private key file instead),
// then the bytes.
#include "crypt4gh/internal.hpp"
#include "fuzz.hpp"
#include "impact/crypt4gh.hpp"

using namespace impact;
namespace c4gh = impact::crypt4gh;

namespace {
const c4gh::KeyPair& bob() {
  static const c4gh::KeyPair k = [] {
    c4gh::KeyPair p;
    p.secret = {0xea, 0xe2, 0xd7, 0x36, 0xa7, 0x17, 0x02, 0x2e, 0x85, 0x44, 0xac, 0xd1, 0x06, 0x4d, 0x8a, 0x04,
                0xa1, 0x78, 0x06, 0x79, 0xae, 0x7b, 0x24, 0x99, 0xbf, 0x93, 0x06, 0xcc, 0xa8, 0xc8, 0x3d, 0xc2};
    p.public_key = c4gh::public_key_of(p.secret);
    return p;
  }();
  return k;
}

// "crypt4gh" v1, one packet holding `plain` sealed for bob, then `rest`.
std::string sealed_file(std::string_view plain, std::string_view rest) {
  const c4gh::Key writer_secret{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  const c4gh::Key writer = c4gh::public_key_of(writer_secret);
  c4gh::Key shared{};
  c4gh::detail::shared_key(writer_secret, bob().public_key, bob().public_key, writer, shared);
  const unsigned char nonce[12] = {};
  std::string out("crypt4gh");
  c4gh::detail::put_le32(out, 1);
  c4gh::detail::put_le32(out, 1);
  c4gh::detail::put_le32(out, static_cast<std::uint32_t>(4 + 4 + 32 + 12 + plain.size() + 16));
  c4gh::detail::put_le32(out, 0);
  out.append(reinterpret_cast<const char*>(writer.data()), writer.size());
  out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  c4gh::detail::aead_seal(shared.data(), nonce, plain, out);
  out.append(rest);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  auto input = fuzz::text(data + 1, size - 1);
  if (mode & 8) {
    fuzz::expect_error_only([&] { c4gh::inspect_private_key(input); });
    // The passphrase source refuses, so a mutated round count cannot make a KDF run for minutes.
    fuzz::expect_error_only([&] {
      c4gh::parse_private_key(input, []() -> std::string { throw Error(ErrorKind::usage, "no passphrase in fuzzing"); });
    });
    fuzz::expect_error_only([&] { c4gh::parse_public_key(input); });
    return 0;
  }
  std::string file;
  if (mode & 4) {
    auto split = input.find("\n--\n");
    file = sealed_file(input.substr(0, split), split == std::string_view::npos ? "" : input.substr(split + 4));
    input = file;
  }
  const std::size_t chunk = (mode & 3) == 0 ? input.size() + 1 : (mode & 3) == 1 ? 1 : (mode & 3) == 2 ? 7 : 65564;
  std::uint64_t produced = 0;
  fuzz::expect_error_only([&] {
    c4gh::Decryptor d(bob(), [&](std::string_view p) { produced += p.size(); });
    for (std::size_t i = 0; i < input.size(); i += chunk) d.update(input.substr(i, chunk));
    d.finish();
  });
  fuzz::expect_error_only([&] {
    auto h = c4gh::parse_header(input, bob());
    if (!h) return;
    auto read_at = [&](std::uint64_t off, std::size_t n) {
      return off >= input.size() ? std::string() : std::string(input.substr(off, n));
    };
    c4gh::read_range(*h, 100, 200000, read_at);
  });
  return 0;
}
