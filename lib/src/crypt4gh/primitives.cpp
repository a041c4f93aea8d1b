// The OpenSSL 3 primitives Crypt4GH needs: X25519, BLAKE2b-512, ChaCha20-Poly1305, randomness, base64.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh::detail {
namespace {

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct PkeyCtxFree { void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

[[noreturn]] void crypto_failure(const char* what) {
  throw Error(ErrorKind::generic, std::string("OpenSSL failed: ") + what);
}

// One cipher context per thread and direction, keyed with the cipher once and then only with a key and a
// nonce per segment (no allocation and no algorithm fetch in the loop).
struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ready = false;
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};
EVP_CIPHER_CTX* cipher_ctx(bool encrypt) {
  thread_local CipherCtx enc, dec;
  CipherCtx& c = encrypt ? enc : dec;
  if (!c.ctx) crypto_failure("EVP_CIPHER_CTX_new");
  if (!c.ready) {
    if (EVP_CipherInit_ex(c.ctx, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1)
      crypto_failure("ChaCha20-Poly1305");
    c.ready = true;
  }
  return c.ctx;
}

}  // namespace

void random_bytes(unsigned char* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) crypto_failure("RAND_bytes");
}

void wipe(void* p, std::size_t n) { OPENSSL_cleanse(p, n); }

bool shared_key(const Key& secret, const Key& peer, const Key& reader_pk, const Key& writer_pk, Key& out) {
  Pkey mine(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.data(), secret.size()));
  Pkey theirs(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size()));
  if (!mine || !theirs) crypto_failure("X25519 key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  unsigned char dh[32];
  std::size_t dh_len = sizeof dh;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) crypto_failure("X25519 derive");
  if (EVP_PKEY_derive_set_peer(ctx.get(), theirs.get()) != 1 || EVP_PKEY_derive(ctx.get(), dh, &dh_len) != 1 ||
      dh_len != sizeof dh) {
    wipe(dh, sizeof dh);
    return false;  // OpenSSL refuses an all-zero result (a low-order point)
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  unsigned char digest[64];
  unsigned int digest_len = 0;
  bool ok = md && EVP_DigestInit_ex(md.get(), EVP_blake2b512(), nullptr) == 1 &&
            EVP_DigestUpdate(md.get(), dh, sizeof dh) == 1 &&
            EVP_DigestUpdate(md.get(), reader_pk.data(), reader_pk.size()) == 1 &&
            EVP_DigestUpdate(md.get(), writer_pk.data(), writer_pk.size()) == 1 &&
            EVP_DigestFinal_ex(md.get(), digest, &digest_len) == 1 && digest_len == 64;
  wipe(dh, sizeof dh);
  if (!ok) crypto_failure("BLAKE2b-512");
  std::copy(digest, digest + 32, out.begin());
  wipe(digest, sizeof digest);
  return true;
}

bool aead_open_into(const unsigned char* key, const unsigned char* nonce, std::string_view sealed, unsigned char* dst) {
  if (sealed.size() < 16) return false;
  EVP_CIPHER_CTX* ctx = cipher_ctx(false);
  const std::size_t n = sealed.size() - 16;
  int len = 0, fin = 0;
  bool ok = EVP_DecryptInit_ex(ctx, nullptr, nullptr, key, nonce) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16,
                                const_cast<unsigned char*>(bytes(sealed) + n)) == 1 &&
            (n == 0 || EVP_DecryptUpdate(ctx, dst, &len, bytes(sealed), static_cast<int>(n)) == 1) &&
            EVP_DecryptFinal_ex(ctx, dst + len, &fin) == 1;
  if (!ok) wipe(dst, n);
  return ok;
}

bool aead_open(const unsigned char* key, const unsigned char* nonce, std::string_view sealed, std::string& out) {
  if (sealed.size() < 16) return false;
  const std::size_t old = out.size();
  out.resize(old + sealed.size() - 16);
  bool ok = aead_open_into(key, nonce, sealed, reinterpret_cast<unsigned char*>(out.data() + old));
  if (!ok) out.resize(old);
  return ok;
}

void aead_seal_into(const unsigned char* key, const unsigned char* nonce, std::string_view plain, unsigned char* dst) {
  EVP_CIPHER_CTX* ctx = cipher_ctx(true);
  int len = 0, fin = 0;
  bool ok = EVP_EncryptInit_ex(ctx, nullptr, nullptr, key, nonce) == 1 &&
            (plain.empty() ||
             EVP_EncryptUpdate(ctx, dst, &len, bytes(plain), static_cast<int>(plain.size())) == 1) &&
            EVP_EncryptFinal_ex(ctx, dst + len, &fin) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, dst + plain.size()) == 1;
  if (!ok) crypto_failure("ChaCha20-Poly1305");
}

void aead_seal(const unsigned char* key, const unsigned char* nonce, std::string_view plain, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + plain.size() + 16);
  aead_seal_into(key, nonce, plain, reinterpret_cast<unsigned char*>(out.data() + old));
}

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(in), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  out.clear();
  std::uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') { ++pad; continue; }
    int v = value(c);
    if (v < 0 || pad > 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return pad <= 2 && bits < 6 && (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace impact::crypt4gh::detail
