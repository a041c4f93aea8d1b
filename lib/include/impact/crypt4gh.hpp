// Crypt4GH (GA4GH file encryption, samtools/hts-specs crypt4gh.tex) on OpenSSL 3: keys, headers, segments,
// streaming encryption and decryption, random access by segment. Errors are impact::Error with a kind.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace impact::crypt4gh {

inline constexpr std::size_t segment_size = 65536;                      // plaintext bytes per segment
inline constexpr std::size_t segment_overhead = 12 + 16;                // nonce + MAC
inline constexpr std::size_t cipher_segment_size = segment_size + segment_overhead;

using Key = std::array<unsigned char, 32>;

// A secret key and its public key. The secret is wiped when the object goes away.
struct KeyPair {
  Key secret{};
  Key public_key{};
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();
};

KeyPair generate_key_pair();
Key public_key_of(const Key& secret);

// A short, stable name for a public key: the first 16 hex digits of its SHA-256.
std::string fingerprint(const Key& public_key);

// Supplies the passphrase of a protected private key when it is needed (the CLI prompts or reads the
// environment). It may throw to abandon.
using PassphraseSource = std::function<std::string()>;

// Public keys: the Crypt4GH PEM form or the raw 32 bytes in base64 (as archives exchange them).
Key parse_public_key(std::string_view text);
std::string format_public_key(const Key& public_key);  // PEM, ending with a newline
std::string base64_public_key(const Key& public_key);  // raw 32 bytes in base64

struct PrivateKeyInfo {
  std::string kdf;      // "none", "scrypt", "bcrypt", "pbkdf2_hmac_sha256"
  std::string comment;  // may be empty
  bool encrypted() const { return kdf != "none"; }
};

// A `c4gh-v1` private key (PEM). KDFs none, scrypt, bcrypt and pbkdf2_hmac_sha256 are read; a wrong
// passphrase is Error(usage) saying so.
KeyPair parse_private_key(std::string_view pem, const PassphraseSource& passphrase);
PrivateKeyInfo inspect_private_key(std::string_view pem);
// Writes a `c4gh-v1` private key: scrypt-protected, or unprotected when `passphrase` is empty.
std::string format_private_key(const KeyPair& key, std::string_view passphrase, std::string_view comment = {});

// bcrypt_pbkdf as OpenBSD defines it (Blowfish-based), for EGA's keys. Exposed for its test vectors.
void bcrypt_pbkdf(std::string_view password, std::string_view salt, unsigned rounds, unsigned char* out,
                  std::size_t out_len);

// ---- Headers ----------------------------------------------------------------------------------------

inline constexpr std::uint32_t max_header_packets = 1024;
inline constexpr std::uint32_t max_packet_length = 1u << 20;
inline constexpr std::uint32_t max_edit_list_length = 1u << 16;
inline constexpr std::size_t max_header_bytes = 4u << 20;  // the whole header, so a stream's buffer stays small

struct Header {
  std::vector<Key> data_keys;                       // at least one
  std::optional<std::vector<std::uint64_t>> edit_list;
  std::uint32_t packet_count = 0;
  std::uint64_t length = 0;                         // bytes of the header in the file
  ~Header();
};

// Parses the header at the start of `bytes` for `reader`. Returns nullopt when more bytes are needed (then
// `need` says at least how many in total); throws Error(protocol) for a malformed or hostile header and
// Error(forbidden) when no packet is for this reader.
std::optional<Header> parse_header(std::string_view bytes, const KeyPair& reader, std::size_t* need = nullptr);

// A header for each recipient, with one data key and an optional edit list.
std::string make_header(const std::vector<Key>& recipients, const Key& data_key,
                        const std::vector<std::uint64_t>* edit_list = nullptr);

// ---- Segments ---------------------------------------------------------------------------------------

// Decrypts one encrypted segment (nonce || ciphertext || MAC) into `out` (appended), trying each data key.
// `index` (0-based) only names the segment in the error when no key authenticates it.
void decrypt_segment(const Header& header, std::uint64_t index, std::string_view segment, std::string& out);

// For random access by a download engine: the bytes of the encrypted file that hold plaintext [offset,
// offset+length) of the data (before any edit list), aligned to whole segments.
struct SegmentRange {
  std::uint64_t first_segment = 0;
  std::uint64_t segment_count = 0;
  std::uint64_t cipher_offset = 0;  // from the start of the file (header included)
  std::uint64_t cipher_length = 0;  // may run past the end of the file for the last segment
  std::uint64_t skip = 0;           // plaintext bytes to drop from the first decrypted segment
};
SegmentRange segments_for(std::uint64_t header_length, std::uint64_t offset, std::uint64_t length);

// Decrypts consecutive whole segments starting at `first_segment` (the last may be short), appending the
// plaintext to `out`. For the pieces a SegmentRange names.
void decrypt_segments(const Header& header, std::uint64_t first_segment, std::string_view cipher, std::string& out);

// Reads only the segments that hold [offset, offset+length) of the plaintext as the reader sees it (edit
// list applied), through `read_at(file_offset, max_bytes)` which returns fewer bytes only at the end.
std::string read_range(const Header& header, std::uint64_t offset, std::uint64_t length,
                       const std::function<std::string(std::uint64_t, std::size_t)>& read_at);

// ---- Streams ----------------------------------------------------------------------------------------

using Sink = std::function<void(std::string_view)>;

// Takes the encrypted bytes in any chunking, emits plaintext (edit list applied) in bounded memory. The
// plaintext is gathered and handed to the sink in pieces of up to `batch_size` bytes: when that much is
// ready, and at the end of every update() and of finish() (so a slow stream is not held back).
// A run of at least `parallel_min_segments` whole segments in one update() (and no edit list) is decrypted
// on two threads, which share its segments; the second thread is started by the first such run and joined by the destructor.
class Decryptor {
 public:
  static constexpr std::size_t batch_size = 16 * segment_size;
  static constexpr std::size_t parallel_min_segments = 4;
  Decryptor(const KeyPair& reader, Sink sink);
  Decryptor(const Decryptor&) = delete;
  Decryptor& operator=(const Decryptor&) = delete;
  ~Decryptor();
  void update(std::string_view bytes);
  void finish();  // throws Error(protocol) for a truncated file
  const Header* header() const { return header_ ? &*header_ : nullptr; }
  std::uint64_t segments() const { return segment_index_; }

 private:
  void feed(std::string_view bytes);
  void take_segment(std::string_view segment);
  void take_segments(std::string_view run, std::size_t count);  // `count` whole segments on two threads
  std::size_t keep(char* plain, std::size_t n);  // applies the edit list in place: the length kept
  void flush();
  const KeyPair& reader_;
  Sink sink_;
  std::string buffer_;  // the header, or a segment split across update() calls
  std::string out_;     // plaintext ready for the sink: out_len_ bytes of batch_size
  std::size_t out_len_ = 0;
  std::optional<Header> header_;
  std::uint64_t segment_index_ = 0;
  std::size_t edit_index_ = 0;
  std::uint64_t edit_left_ = 0;
  bool finished_ = false;
  struct Worker;
  std::unique_ptr<Worker> worker_;  // the second decrypting thread, once needed
};

// Takes plaintext in any chunking and emits a Crypt4GH file for every recipient: the header at once, then
// the encrypted segments gathered into pieces of up to about `batch_size` bytes (handed over when full and
// at the end of every update() and of finish()).
class Encryptor {
 public:
  static constexpr std::size_t batch_size = 16 * cipher_segment_size;
  Encryptor(const std::vector<Key>& recipients, Sink sink, const std::vector<std::uint64_t>* edit_list = nullptr);
  ~Encryptor();
  void update(std::string_view plain);
  void finish();

 private:
  void seal(std::string_view plain);
  void flush();
  Key data_key_{};
  Sink sink_;
  std::string buffer_;  // a segment's plaintext split across update() calls
  std::string out_;     // sealed segments ready for the sink: out_len_ bytes of batch_size
  std::size_t out_len_ = 0;
  bool finished_ = false;
};

// ---- Key store --------------------------------------------------------------------------------------

// $XDG_DATA_HOME/impact/keys (~/.local/share/impact/keys): NAME.sec (0600) and NAME.pub per key, in a 0700
// folder.
std::filesystem::path key_dir();
bool valid_key_name(std::string_view name);

struct StoredKey {
  std::string name;
  Key public_key{};
  PrivateKeyInfo info;
  bool has_secret = false;
};

std::vector<StoredKey> list_keys();
StoredKey find_key(std::string_view name);  // Error(not_found)
// Stores a key pair under `name` (Error(usage) if it exists).
void store_key(std::string_view name, std::string_view secret_pem, const Key& public_key);
void remove_key(std::string_view name);
// A private key by store name or by file path.
KeyPair load_private_key(std::string_view name_or_file, const PassphraseSource& passphrase);
// A recipient's public key by store name, by file path, or given inline as base64.
Key load_public_key(std::string_view name_or_file);

}  // namespace impact::crypt4gh
