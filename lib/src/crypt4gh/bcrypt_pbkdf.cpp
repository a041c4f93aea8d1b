// bcrypt_pbkdf, as OpenBSD defines it (lib/libutil/bcrypt_pbkdf.c: a PBKDF2-like loop over SHA-512 and a
// Blowfish "bcrypt hash"), written here against that definition: no Debian C library provides it, and
// OpenSSL's Blowfish does not expose the expensive (Eks) key schedule it needs. EGA's Crypt4GH keys use it.
#include <openssl/evp.h>

#include <array>
#include <cstring>

#include "crypt4gh/blowfish_pi.hpp"
#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh {
namespace {

struct Blowfish {
  std::uint32_t p[18];
  std::uint32_t s[4][256];

  Blowfish() {
    std::memcpy(p, detail::blowfish_pi, sizeof p);
    std::memcpy(s, detail::blowfish_pi + 18, sizeof s);
  }
  ~Blowfish() { detail::wipe(this, sizeof *this); }

  std::uint32_t f(std::uint32_t x) const {
    return ((s[0][x >> 24] + s[1][(x >> 16) & 0xff]) ^ s[2][(x >> 8) & 0xff]) + s[3][x & 0xff];
  }
  void encipher(std::uint32_t& l, std::uint32_t& r) const {
    std::uint32_t xl = l ^ p[0], xr = r;
    for (int i = 1; i <= 16; i += 2) {
      xr ^= f(xl) ^ p[i];
      xl ^= f(xr) ^ p[i + 1];
    }
    l = xr ^ p[17];
    r = xl;
  }
  // Four bytes of `data` as a big-endian word, wrapping around at its end.
  static std::uint32_t word(const unsigned char* data, std::size_t n, std::size_t& pos) {
    std::uint32_t w = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos >= n) pos = 0;
      w = (w << 8) | data[pos++];
    }
    return w;
  }
  // The key schedule with salt (`data`, may be null for the salt-less variant).
  void expand(const unsigned char* data, std::size_t data_len, const unsigned char* key, std::size_t key_len) {
    std::size_t j = 0;
    for (auto& w : p) w ^= word(key, key_len, j);
    j = 0;
    std::uint32_t l = 0, r = 0;
    auto next = [&](std::uint32_t& a, std::uint32_t& b) {
      if (data) {
        l ^= word(data, data_len, j);
        r ^= word(data, data_len, j);
      }
      encipher(l, r);
      a = l;
      b = r;
    };
    for (int i = 0; i < 18; i += 2) next(p[i], p[i + 1]);
    for (auto& box : s)
      for (int k = 0; k < 256; k += 2) next(box[k], box[k + 1]);
  }
};

void sha512(const unsigned char* in, std::size_t n, unsigned char out[64]) {
  unsigned int len = 0;
  if (EVP_Digest(in, n, out, &len, EVP_sha512(), nullptr) != 1 || len != 64)
    throw Error(ErrorKind::generic, "OpenSSL failed: SHA-512");
}

void bcrypt_hash(const unsigned char pass[64], const unsigned char salt[64], unsigned char out[32]) {
  static const char magic[] = "OxychromaticBlowfishSwatDynamite";
  Blowfish bf;
  bf.expand(salt, 64, pass, 64);
  for (int i = 0; i < 64; ++i) {
    bf.expand(nullptr, 0, salt, 64);
    bf.expand(nullptr, 0, pass, 64);
  }
  std::uint32_t c[8];
  std::size_t j = 0;
  for (auto& w : c) w = Blowfish::word(reinterpret_cast<const unsigned char*>(magic), 32, j);
  for (int i = 0; i < 64; ++i)
    for (int b = 0; b < 8; b += 2) bf.encipher(c[b], c[b + 1]);
  for (int i = 0; i < 8; ++i) {  // little-endian words, as the reference writes them
    out[4 * i + 3] = static_cast<unsigned char>(c[i] >> 24);
    out[4 * i + 2] = static_cast<unsigned char>(c[i] >> 16);
    out[4 * i + 1] = static_cast<unsigned char>(c[i] >> 8);
    out[4 * i + 0] = static_cast<unsigned char>(c[i]);
  }
  detail::wipe(c, sizeof c);
}

}  // namespace

void bcrypt_pbkdf(std::string_view password, std::string_view salt, unsigned rounds, unsigned char* key,
                  std::size_t key_len) {
  if (rounds < 1 || key_len == 0 || key_len > 32 * 32 || salt.size() > (1u << 20))
    throw Error(ErrorKind::usage, "bcrypt_pbkdf: invalid parameters");
  const std::size_t stride = (key_len + 31) / 32;
  std::size_t amount = (key_len + stride - 1) / stride;
  unsigned char sha_pass[64], sha_salt[64], tmp[32], out[32];
  sha512(detail::bytes(password), password.size(), sha_pass);
  std::string count_salt(salt);
  count_salt.append(4, '\0');
  std::size_t left = key_len;
  for (std::uint32_t count = 1; left > 0; ++count) {
    for (int i = 0; i < 4; ++i) count_salt[salt.size() + i] = static_cast<char>((count >> (24 - 8 * i)) & 0xff);
    sha512(detail::bytes(count_salt), count_salt.size(), sha_salt);
    bcrypt_hash(sha_pass, sha_salt, tmp);
    std::memcpy(out, tmp, sizeof out);
    for (unsigned r = 1; r < rounds; ++r) {
      sha512(tmp, sizeof tmp, sha_salt);
      bcrypt_hash(sha_pass, sha_salt, tmp);
      for (int i = 0; i < 32; ++i) out[i] ^= tmp[i];
    }
    amount = std::min(amount, left);
    std::size_t i = 0;
    for (; i < amount; ++i) {
      std::size_t dest = i * stride + (count - 1);
      if (dest >= key_len) break;
      key[dest] = out[i];
    }
    left -= i;
  }
  detail::wipe(sha_pass, sizeof sha_pass);
  detail::wipe(sha_salt, sizeof sha_salt);
  detail::wipe(tmp, sizeof tmp);
  detail::wipe(out, sizeof out);
}

}  // namespace impact::crypt4gh
