// Crypt4GH: the test vectors of two other implementations, round trips, edit lists, random access, and
// damaged or hostile input.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "impact/crypt4gh.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "temp_dir.hpp"

namespace c4gh = impact::crypt4gh;
namespace fs = std::filesystem;

namespace {

const fs::path data_dir = IMPACT_C4GH_VECTORS;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

c4gh::KeyPair rust_key(const char* name) {
  return c4gh::parse_private_key(slurp(data_dir / "htsget-rs/c4gh/keys" / (std::string(name) + ".sec")), nullptr);
}

std::string decrypt_all(const c4gh::KeyPair& key, std::string_view file, std::size_t chunk) {
  std::string out;
  c4gh::Decryptor d(key, [&](std::string_view p) { out.append(p); });
  for (std::size_t i = 0; i < file.size(); i += chunk) d.update(file.substr(i, chunk));
  d.finish();
  return out;
}

std::string encrypt_all(const std::vector<c4gh::Key>& to, std::string_view plain,
                        const std::vector<std::uint64_t>* edit = nullptr) {
  std::string out;
  c4gh::Encryptor e(to, [&](std::string_view p) { out.append(p); }, edit);
  e.update(plain);
  e.finish();
  return out;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

impact::ErrorKind kind_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const impact::Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  FAIL("no error");
  return impact::ErrorKind::generic;
}

}  // namespace

TEST_CASE("crypt4gh: every htsget-rs vector decrypts byte-identical, in any chunking (they are for bob)") {
  auto alice = rust_key("alice");
  auto bob = rust_key("bob");
  CHECK(alice.public_key == c4gh::parse_public_key(slurp(data_dir / "htsget-rs/c4gh/keys/alice.pub")));
  const char* files[] = {"htsnexus_test_NA12878.bam", "htsnexus_test_NA12878.cram", "sample1-bcbio-cancer.bcf",
                         "sample1-bcbio-cancer.vcf.gz", "spec-v4.3.bcf", "spec-v4.3.vcf.gz"};
  int checked = 0;
  for (const char* f : files) {
    CAPTURE(f);
    std::string cipher = slurp(data_dir / "htsget-rs/c4gh" / (std::string(f) + ".c4gh"));
    std::string plain = slurp(data_dir / "htsget-rs/plain" / f);
    std::string got = decrypt_all(bob, cipher, 1 << 20);
    CHECK(got == plain);
    if (cipher.size() < 10000) {
      CHECK(decrypt_all(bob, cipher, 1) == plain);
      CHECK(decrypt_all(bob, cipher, 7) == plain);
    } else {
      CHECK(decrypt_all(bob, cipher, 65563) == plain);
    }
    // alice is not a reader: the error says so and names her key
    std::string msg;
    CHECK(kind_of([&] { decrypt_all(alice, cipher, 4096); }, &msg) == impact::ErrorKind::forbidden);
    CHECK(msg == "none of the 1 header packets is for key " + c4gh::fingerprint(alice.public_key));
    ++checked;
  }
  CHECK(checked == 6);
}

TEST_CASE("crypt4gh: the Python implementation's bcrypt-protected keys open with their passphrases") {
  for (const char* name : {"alice", "bob"}) {
    CAPTURE(name);
    std::string sec = slurp(data_dir / "crypt4gh-python" / (std::string(name) + ".sec"));
    CHECK(c4gh::inspect_private_key(sec).kdf == "bcrypt");
    auto k = c4gh::parse_private_key(sec, [&] { return std::string(name); });
    CHECK(k.public_key == c4gh::parse_public_key(slurp(data_dir / "crypt4gh-python" / (std::string(name) + ".pub"))));
    std::string msg;
    CHECK(kind_of([&] { c4gh::parse_private_key(sec, [] { return std::string("wrong"); }); }, &msg) ==
          impact::ErrorKind::usage);
    CHECK(msg.find("wrong passphrase") != std::string::npos);
  }
}

TEST_CASE("crypt4gh: our private keys round-trip, scrypt-protected or not") {
  auto k = c4gh::generate_key_pair();
  std::string pem = c4gh::format_private_key(k, "s3cret phrase", "a comment");
  CHECK(pem.find("s3cret") == std::string::npos);
  auto info = c4gh::inspect_private_key(pem);
  CHECK(info.kdf == "scrypt");
  CHECK(info.comment == "a comment");
  CHECK(c4gh::parse_private_key(pem, [] { return std::string("s3cret phrase"); }).secret == k.secret);
  CHECK(kind_of([&] { c4gh::parse_private_key(pem, nullptr); }) == impact::ErrorKind::usage);
  std::string open = c4gh::format_private_key(k, "");
  CHECK(c4gh::inspect_private_key(open).kdf == "none");
  CHECK(c4gh::parse_private_key(open, nullptr).public_key == k.public_key);
  // public keys: PEM and raw base64
  CHECK(c4gh::parse_public_key(c4gh::format_public_key(k.public_key)) == k.public_key);
  CHECK(c4gh::parse_public_key(c4gh::base64_public_key(k.public_key)) == k.public_key);
  CHECK(kind_of([&] { c4gh::parse_public_key(open); }) == impact::ErrorKind::usage);
  CHECK(kind_of([&] { c4gh::parse_public_key("AAAA"); }) == impact::ErrorKind::usage);
}

TEST_CASE("crypt4gh: bcrypt_pbkdf matches OpenBSD's definition") {
  // Expected values from Debian's python3-bcrypt 3.2.2 (bcrypt.kdf, OpenBSD's bcrypt_pbkdf.c); the first is
  // the vector OpenBSD's and Go's test suites use. The 48-byte key exercises the striding of outputs > 32.
  auto hex = [](const unsigned char* p, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "0123456789abcdef"[p[i] >> 4], s += "0123456789abcdef"[p[i] & 15];
    return s;
  };
  unsigned char a[32], b[48];
  c4gh::bcrypt_pbkdf("password", "salt", 4, a, sizeof a);
  CHECK(hex(a, sizeof a) == "5bbf0cc293587f1c3635555c27796598d47e579071bf427e9d8fbe842aba34d9");
  std::string salt;
  for (int i = 0; i < 16; ++i) salt.push_back(static_cast<char>(i));
  c4gh::bcrypt_pbkdf("alice", salt, 2, b, sizeof b);
  CHECK(hex(b, sizeof b) == "864fc3f3e2509de1f34a58f7ada30701ce5ba6df2118181ad9d3b98dc945a5f4"
                            "57237b6f3f8121b1e636c6c0c1df6cdd");
}

TEST_CASE("crypt4gh: encryption for several recipients; each reads, a stranger gets the fingerprint") {
  auto a = c4gh::generate_key_pair(), b = c4gh::generate_key_pair(), stranger = c4gh::generate_key_pair();
  for (std::size_t n : {std::size_t(0), std::size_t(1), c4gh::segment_size - 1, c4gh::segment_size,
                        c4gh::segment_size + 1, 3 * c4gh::segment_size + 17}) {
    CAPTURE(n);
    std::string plain = pattern(n);
    std::string file = encrypt_all({a.public_key, b.public_key}, plain);
    CHECK(decrypt_all(a, file, 1000) == plain);
    CHECK(decrypt_all(b, file, 65564) == plain);
    std::string msg;
    CHECK(kind_of([&] { decrypt_all(stranger, file, 100); }, &msg) == impact::ErrorKind::forbidden);
    CHECK(msg == "none of the 2 header packets is for key " + c4gh::fingerprint(stranger.public_key));
  }
}

TEST_CASE("crypt4gh: the specification's edit list example is applied exactly") {
  // crypt4gh.tex §4.3: segments 0, 2-6 and 83 of ERR2436651 (5485112 bytes) spliced; the list keeps the
  // CRAM header (0-7852), ChrII (145110-453038) and the EOF block (5485074-5485111).
  const std::uint64_t total = 5485112;
  std::string original = pattern(total);
  std::string spliced = original.substr(0, 65536) + original.substr(131072, 458752 - 131072) +
                        original.substr(5439488);
  std::vector<std::uint64_t> edit{0, 7853, 71721, 307929, 51299, 38};
  std::string expect = original.substr(0, 7853) + original.substr(145110, 453039 - 145110) +
                       original.substr(5485074);
  auto k = c4gh::generate_key_pair();
  std::string file = encrypt_all({k.public_key}, spliced, &edit);
  CHECK(decrypt_all(k, file, 12345) == expect);
  // without the last keep the rest of the file is kept: the same output
  std::vector<std::uint64_t> shorter{0, 7853, 71721, 307929, 51299};
  CHECK(decrypt_all(k, encrypt_all({k.public_key}, spliced, &shorter), 65564) == expect);
  // random access through the edit list reads the same bytes
  auto header = c4gh::parse_header(file, k);
  REQUIRE(header);
  auto read_at = [&](std::uint64_t off, std::size_t n) { return off >= file.size() ? std::string() : file.substr(off, n); };
  CHECK(c4gh::read_range(*header, 0, expect.size(), read_at) == expect);
  CHECK(c4gh::read_range(*header, 7000, 100000, read_at) == expect.substr(7000, 100000));
  CHECK(c4gh::read_range(*header, expect.size() - 10, 1000, read_at) == expect.substr(expect.size() - 10));
}

TEST_CASE("crypt4gh: random access decrypts only the segments a range touches") {
  auto k = c4gh::generate_key_pair();
  std::string plain = pattern(10 * c4gh::segment_size + 500);
  std::string file = encrypt_all({k.public_key}, plain);
  auto header = c4gh::parse_header(file, k);
  REQUIRE(header);
  std::uint64_t bytes_read = 0;
  auto read_at = [&](std::uint64_t off, std::size_t n) {
    std::string s = off >= file.size() ? std::string() : file.substr(off, n);
    bytes_read += s.size();
    return s;
  };
  CHECK(c4gh::read_range(*header, 3 * c4gh::segment_size + 5, 10, read_at) == plain.substr(3 * c4gh::segment_size + 5, 10));
  CHECK(bytes_read == c4gh::cipher_segment_size);
  auto r = c4gh::segments_for(header->length, 2 * c4gh::segment_size - 1, 2);
  CHECK(r.first_segment == 1);
  CHECK(r.segment_count == 2);
  CHECK(r.cipher_offset == header->length + c4gh::cipher_segment_size);
  std::string out;
  c4gh::decrypt_segments(*header, r.first_segment, std::string_view(file).substr(r.cipher_offset, r.cipher_length), out);
  CHECK(out.substr(r.skip, 2) == plain.substr(2 * c4gh::segment_size - 1, 2));
}

TEST_CASE("crypt4gh: a flipped byte names the segment; truncation and hostile headers are errors") {
  auto k = c4gh::generate_key_pair();
  std::string plain = pattern(3 * c4gh::segment_size + 100);
  std::string file = encrypt_all({k.public_key}, plain);
  auto header = c4gh::parse_header(file, k);
  REQUIRE(header);
  std::string flipped = file;
  flipped[header->length + 2 * c4gh::cipher_segment_size + 40] ^= 1;
  std::string msg;
  CHECK(kind_of([&] { decrypt_all(k, flipped, 5000); }, &msg) == impact::ErrorKind::protocol);
  CHECK(msg.find("segment 2 ") != std::string::npos);
  // cut inside the last segment's nonce/MAC, and inside the header
  CHECK(kind_of([&] { decrypt_all(k, std::string_view(file).substr(0, file.size() - 90), 5000); }, &msg) ==
        impact::ErrorKind::protocol);
  CHECK(kind_of([&] { decrypt_all(k, std::string_view(file).substr(0, 30), 5000); }, &msg) == impact::ErrorKind::protocol);
  CHECK(msg.find("truncated") != std::string::npos);
  // hostile headers
  std::string bad = file;
  bad[12] = '\xff'; bad[13] = '\xff'; bad[14] = '\xff'; bad[15] = '\x7f';
  CHECK(kind_of([&] { c4gh::parse_header(bad, k); }, &msg) == impact::ErrorKind::protocol);
  CHECK(msg.find("packets") != std::string::npos);
  bad = file;
  bad[16] = '\xff'; bad[17] = '\xff'; bad[18] = '\xff'; bad[19] = '\xff';
  CHECK(kind_of([&] { c4gh::parse_header(bad, k); }, &msg) == impact::ErrorKind::protocol);
  bad = file;
  bad[0] = 'X';
  CHECK(kind_of([&] { c4gh::parse_header(bad, k); }) == impact::ErrorKind::protocol);
  bad = file;
  bad[8] = 2;
  CHECK(kind_of([&] { c4gh::parse_header(bad, k); }, &msg) == impact::ErrorKind::protocol);
  CHECK(msg.find("version 2") != std::string::npos);
  std::size_t need = 0;
  CHECK_FALSE(c4gh::parse_header(std::string_view(file).substr(0, 20), k, &need));
  CHECK(need > 20);
}

TEST_CASE("crypt4gh: the key store keeps 0600 files in a 0700 folder") {
  impact::test::TempDir tmp;
  ::setenv("XDG_DATA_HOME", tmp.path().c_str(), 1);
  auto k = c4gh::generate_key_pair();
  c4gh::store_key("mine", c4gh::format_private_key(k, "pw"), k.public_key);
  CHECK(impact::test::mode_of(c4gh::key_dir()) == 0700);
  CHECK(impact::test::mode_of(c4gh::key_dir() / "mine.sec") == 0600);
  CHECK(kind_of([&] { c4gh::store_key("mine", "", k.public_key); }) == impact::ErrorKind::usage);
  auto keys = c4gh::list_keys();
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].name == "mine");
  CHECK(keys[0].info.kdf == "scrypt");
  CHECK(c4gh::load_public_key("mine") == k.public_key);
  CHECK(c4gh::load_private_key("mine", [] { return std::string("pw"); }).secret == k.secret);
  CHECK(kind_of([&] { c4gh::store_key("../x", "", k.public_key); }) == impact::ErrorKind::usage);
  c4gh::remove_key("mine");
  CHECK(c4gh::list_keys().empty());
  CHECK(kind_of([&] { c4gh::remove_key("mine"); }) == impact::ErrorKind::not_found);
  ::unsetenv("XDG_DATA_HOME");
}

TEST_CASE("crypt4gh: the streams hand their sink large batches, and what precedes a bad segment") {
  const auto reader = c4gh::generate_key_pair();
  const std::string plain = pattern(3 * c4gh::Decryptor::batch_size + 5);
  std::vector<std::size_t> sealed;
  std::string file;
  {
    c4gh::Encryptor e({reader.public_key}, [&](std::string_view p) {
      sealed.push_back(p.size());
      file.append(p);
    });
    e.update(plain);
    e.finish();
  }
  REQUIRE(sealed.size() == 5);  // the header; three batches of 16 segments; the short last segment
  for (std::size_t i = 1; i < 4; ++i) CHECK(sealed[i] == c4gh::Encryptor::batch_size);
  CHECK(sealed[4] == 5 + c4gh::segment_overhead);

  std::vector<std::size_t> opened;
  std::string out;
  c4gh::Decryptor d(reader, [&](std::string_view p) {
    opened.push_back(p.size());
    out.append(p);
  });
  d.update(file);
  d.finish();
  CHECK(out == plain);
  CHECK(opened == std::vector<std::size_t>{c4gh::Decryptor::batch_size, c4gh::Decryptor::batch_size,
                                           c4gh::Decryptor::batch_size, 5});

  // A flipped byte in segment 20: the 20 segments before it still reach the sink, then the error.
  std::string bad = file;
  bad[sealed[0] + 20 * c4gh::cipher_segment_size + 40] ^= 1;
  out.clear();
  c4gh::Decryptor d2(reader, [&](std::string_view p) { out.append(p); });
  CHECK(kind_of([&] { d2.update(bad); }) == impact::ErrorKind::protocol);
  CHECK(out == plain.substr(0, 20 * c4gh::segment_size));
}

namespace {
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}
// A joined thread may still be listed for a moment after pthread_join returns: poll, bounded.
std::size_t threads_settled_at(std::size_t want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::size_t n = thread_count();
  while (n != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    n = thread_count();
  }
  return n;
}
}  // namespace

TEST_CASE("crypt4gh: whole segments decrypt on two threads, in order, and the first bad segment is named") {
  const auto reader = c4gh::generate_key_pair();
  const std::string plain = pattern(5 * c4gh::Decryptor::batch_size + 3 * c4gh::segment_size + 17);
  const std::string file = encrypt_all({reader.public_key}, plain);
  const std::size_t header_length = c4gh::parse_header(file, reader)->length;
  const std::size_t before = thread_count();

  // Chunked as the CLI reads (16 cipher segments), whole, and in chunks too small for the two-thread path.
  CHECK(decrypt_all(reader, file, 16 * c4gh::cipher_segment_size) == plain);
  CHECK(decrypt_all(reader, file, file.size()) == plain);
  CHECK(decrypt_all(reader, file, 3 * c4gh::cipher_segment_size + 11) == plain);

  REQUIRE(threads_settled_at(before) == before);
  // The second thread exists while a large stream is decrypted; a small one (fewer than
  // parallel_min_segments segments per update) runs on the caller's thread only. Both are gone after.
  std::size_t during = 0;
  {
    c4gh::Decryptor d(reader, [&](std::string_view) { during = std::max(during, thread_count()); });
    d.update(file);
    d.finish();
    CHECK(during == before + 1);
  }
  CHECK(threads_settled_at(before) == before);
  during = 0;
  const std::string small = encrypt_all({reader.public_key}, plain.substr(0, 3 * c4gh::segment_size));
  {
    c4gh::Decryptor d(reader, [&](std::string_view) { during = std::max(during, thread_count()); });
    d.update(small);
    d.finish();
  }
  CHECK(during == before);

  // Whole-file updates put segments 32..47 in one two-thread run; 16-segment chunks put 32..46 in one.
  auto flip = [&](std::string& f, std::size_t segment) { f[header_length + segment * c4gh::cipher_segment_size + 40] ^= 1; };
  std::string msg;
  for (std::size_t chunk : {16 * c4gh::cipher_segment_size, file.size()}) {
    CAPTURE(chunk);
    std::string bad = file;
    flip(bad, 44);  // late in its run: the worker or this thread may take it
    std::string out;
    auto run = [&] {
      c4gh::Decryptor d(reader, [&](std::string_view p) { out.append(p); });
      for (std::size_t i = 0; i < bad.size(); i += chunk) d.update(std::string_view(bad).substr(i, chunk));
      d.finish();
    };
    CHECK(kind_of(run, &msg) == impact::ErrorKind::protocol);
    CHECK(msg.find("segment 44 ") != std::string::npos);
    CHECK(out == plain.substr(0, 44 * c4gh::segment_size));

    flip(bad, 35);  // now also an earlier one in the same run: that one is reported
    out.clear();
    CHECK(kind_of(run, &msg) == impact::ErrorKind::protocol);
    CHECK(msg.find("segment 35 ") != std::string::npos);
    CHECK(out == plain.substr(0, 35 * c4gh::segment_size));
  }
  // Every segment in turn, whichever thread takes it: its number, and exactly the plaintext before it.
  const std::size_t segments = (plain.size() + c4gh::segment_size - 1) / c4gh::segment_size;
  for (std::size_t k = 0; k < segments; ++k) {
    CAPTURE(k);
    std::string bad = file;
    flip(bad, k);
    std::string out;
    c4gh::Decryptor d(reader, [&](std::string_view p) { out.append(p); });
    CHECK(kind_of([&] { d.update(bad); d.finish(); }, &msg) == impact::ErrorKind::protocol);
    CHECK(msg.find(fmt::format("segment {} ", k)) != std::string::npos);
    CHECK(out == plain.substr(0, k * c4gh::segment_size));
  }
  CHECK(threads_settled_at(before) == before);
}
