// Internal to the Crypt4GH code: the OpenSSL primitives it uses, and little-endian/big-endian helpers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "impact/crypt4gh.hpp"

namespace impact::crypt4gh::detail {

void random_bytes(unsigned char* out, std::size_t n);
void wipe(void* p, std::size_t n);
inline void wipe(std::string& s) { wipe(s.data(), s.size()); s.clear(); }

// K_shared = first 32 bytes of BLAKE2b-512(X25519(secret, peer) || reader_pk || writer_pk). Returns false when
// the exchange fails (a low-order peer key).
bool shared_key(const Key& secret, const Key& peer, const Key& reader_pk, const Key& writer_pk, Key& out);

// ChaCha20-Poly1305 (IETF, 12-byte nonce), no AAD. `open` appends the plaintext of ciphertext||tag to `out`
// and returns false (leaving `out` as it was) when the tag does not match.
bool aead_open(const unsigned char* key, const unsigned char* nonce, std::string_view sealed, std::string& out);
// The same into `dst` (room for sealed.size() - 16 bytes); on failure `dst` is wiped.
bool aead_open_into(const unsigned char* key, const unsigned char* nonce, std::string_view sealed, unsigned char* dst);
// One segment into `dst` (room for segment_size bytes): its plaintext length. Throws as decrypt_segment.
std::size_t decrypt_segment_into(const Header& header, std::uint64_t index, std::string_view segment, unsigned char* dst);
void aead_seal(const unsigned char* key, const unsigned char* nonce, std::string_view plain, std::string& out);
// The same into `dst` (room for plain.size() + 16 bytes: ciphertext, then the tag).
void aead_seal_into(const unsigned char* key, const unsigned char* nonce, std::string_view plain, unsigned char* dst);

std::string base64_encode(std::string_view bytes);
// Strict base64 (whitespace ignored); nullopt-like: returns false for bad input.
bool base64_decode(std::string_view text, std::string& out);

inline std::uint32_t get_le32(const unsigned char* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline std::uint64_t get_le64(const unsigned char* p) {
  return std::uint64_t(get_le32(p)) | std::uint64_t(get_le32(p + 4)) << 32;
}
inline void put_le32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_le64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace impact::crypt4gh::detail
