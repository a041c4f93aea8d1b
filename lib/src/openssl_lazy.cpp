// libcrypto (OpenSSL 3), loaded on first use rather than at start-up. libcrypto is large (some 21,000
// relocations, bound at load time), and most commands — `impact token`, `auth status`, `--help`,
// completion — never hash or verify anything. So libcrypto is not linked: this file defines, with hidden
// visibility, each OpenSSL function the rest of impact calls; the first call opens libcrypto.so.3 with dlopen
// and every call goes on to the real function. The callers are unchanged (they include the OpenSSL headers as
// before, and the compiler checks each definition here against them). Freeing a null pointer and
// OPENSSL_cleanse (explicit_bzero) need no library, so a destructor never loads it. When libcrypto.so.3
// cannot be loaded, the first call throws impact::Error.
#include "impact/lazy_library.hpp"

// Everything declared from here on (the OpenSSL functions defined below) stays inside the binary: were they
// exported, libcrypto itself (loaded later, also by libcurl) could bind its own calls to them.
#pragma GCC visibility push(hidden)
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace {

#define IMPACT_OPENSSL_FUNCTIONS(X)                                                                        \
  X(BN_bin2bn) X(BN_free) X(CRYPTO_free) X(ECDSA_SIG_free) X(ECDSA_SIG_new) X(ECDSA_SIG_set0)             \
  X(EVP_Digest) X(EVP_DigestFinal_ex) X(EVP_DigestInit_ex) X(EVP_DigestUpdate) X(EVP_DigestVerify)         \
  X(EVP_DigestVerifyInit) X(EVP_EncodeBlock) X(EVP_MD_CTX_free) X(EVP_MD_CTX_new) X(EVP_PKEY_CTX_free)     \
  X(EVP_PKEY_CTX_new) X(EVP_PKEY_CTX_new_from_name) X(EVP_PKEY_free) X(EVP_PKEY_fromdata)                  \
  X(EVP_PKEY_fromdata_init) X(EVP_PKEY_get_bits) X(EVP_PKEY_public_check) X(EVP_get_digestbyname)          \
  X(EVP_md5) X(EVP_sha1) X(EVP_sha256) X(EVP_sha384) X(EVP_sha512) X(HMAC) X(OSSL_PARAM_BLD_free)         \
  X(OSSL_PARAM_BLD_new) X(OSSL_PARAM_BLD_push_BN) X(OSSL_PARAM_BLD_push_octet_string)                      \
  X(OSSL_PARAM_BLD_push_utf8_string) X(OSSL_PARAM_BLD_to_param) X(OSSL_PARAM_free) X(OpenSSL_version)      \
  X(RAND_bytes) X(SHA256) X(i2d_ECDSA_SIG)                                                                 \
  /* Crypt4GH: X25519, BLAKE2b, ChaCha20-Poly1305, scrypt and PBKDF2 for keys */                          \
  X(EVP_CIPHER_CTX_ctrl) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_new) X(EVP_CipherInit_ex)                  \
  X(EVP_DecryptFinal_ex) X(EVP_DecryptInit_ex) X(EVP_DecryptUpdate) X(EVP_EncryptFinal_ex)                  \
  X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_PBE_scrypt) X(EVP_PKEY_derive) X(EVP_PKEY_derive_init)   \
  X(EVP_PKEY_derive_set_peer) X(EVP_PKEY_get_raw_public_key) X(EVP_PKEY_new_raw_private_key)                \
  X(EVP_PKEY_new_raw_public_key) X(EVP_blake2b512) X(EVP_chacha20_poly1305) X(PKCS5_PBKDF2_HMAC)

struct Api {
#define IMPACT_OPENSSL_POINTER(name) decltype(&::name) name = nullptr;
  IMPACT_OPENSSL_FUNCTIONS(IMPACT_OPENSSL_POINTER)
#undef IMPACT_OPENSSL_POINTER
};

Api load() {
  // Never closed: OpenSSL keeps global state.
  const impact::LazyLibrary lib("libcrypto.so.3", "cannot use libcrypto (OpenSSL 3)",
                        "install OpenSSL 3 (Debian and Ubuntu: the libssl3 package)");
  Api api;
#define IMPACT_OPENSSL_RESOLVE(name) lib.bind(#name, api.name);
  IMPACT_OPENSSL_FUNCTIONS(IMPACT_OPENSSL_RESOLVE)
#undef IMPACT_OPENSSL_RESOLVE
  return api;
}

const Api& api() {
  static const Api loaded = load();  // once, thread-safe; retried when load() threw
  return loaded;
}

}  // namespace

// One definition per function: the same signature as its declaration in the OpenSSL headers.
#define IMPACT_FORWARD(ret, name, params, args) \
  extern "C" ret name params { return api().name args; }
// A free of nothing is nothing: no library needed.
#define IMPACT_FORWARD_FREE(type, name) \
  extern "C" void name(type* p) {       \
    if (p) api().name(p);               \
  }

IMPACT_FORWARD(BIGNUM*, BN_bin2bn, (const unsigned char* s, int len, BIGNUM* ret), (s, len, ret))
IMPACT_FORWARD_FREE(BIGNUM, BN_free)
extern "C" void CRYPTO_free(void* p, const char* file, int line) {
  if (p) api().CRYPTO_free(p, file, line);
}
IMPACT_FORWARD_FREE(ECDSA_SIG, ECDSA_SIG_free)
IMPACT_FORWARD(ECDSA_SIG*, ECDSA_SIG_new, (void), ())
IMPACT_FORWARD(int, ECDSA_SIG_set0, (ECDSA_SIG * sig, BIGNUM* r, BIGNUM* s), (sig, r, s))
IMPACT_FORWARD(int, EVP_Digest,
               (const void* data, size_t count, unsigned char* md, unsigned int* size, const EVP_MD* type, ENGINE* impl),
               (data, count, md, size, type, impl))
IMPACT_FORWARD(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s), (ctx, md, s))
IMPACT_FORWARD(int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl), (ctx, type, impl))
IMPACT_FORWARD(int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt), (ctx, d, cnt))
IMPACT_FORWARD(int, EVP_DigestVerify,
               (EVP_MD_CTX * ctx, const unsigned char* sigret, size_t siglen, const unsigned char* tbs, size_t tbslen),
               (ctx, sigret, siglen, tbs, tbslen))
IMPACT_FORWARD(int, EVP_DigestVerifyInit,
               (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type, ENGINE* e, EVP_PKEY* pkey),
               (ctx, pctx, type, e, pkey))
IMPACT_FORWARD(int, EVP_EncodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
IMPACT_FORWARD_FREE(EVP_MD_CTX, EVP_MD_CTX_free)
IMPACT_FORWARD(EVP_MD_CTX*, EVP_MD_CTX_new, (void), ())
IMPACT_FORWARD_FREE(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
IMPACT_FORWARD(EVP_PKEY_CTX*, EVP_PKEY_CTX_new, (EVP_PKEY * pkey, ENGINE* e), (pkey, e))
IMPACT_FORWARD(EVP_PKEY_CTX*, EVP_PKEY_CTX_new_from_name,
               (OSSL_LIB_CTX * libctx, const char* name, const char* propquery), (libctx, name, propquery))
IMPACT_FORWARD_FREE(EVP_PKEY, EVP_PKEY_free)
IMPACT_FORWARD(int, EVP_PKEY_fromdata, (EVP_PKEY_CTX * ctx, EVP_PKEY** ppkey, int selection, OSSL_PARAM params[]),
               (ctx, ppkey, selection, params))
IMPACT_FORWARD(int, EVP_PKEY_fromdata_init, (EVP_PKEY_CTX * ctx), (ctx))
IMPACT_FORWARD(int, EVP_PKEY_get_bits, (const EVP_PKEY* pkey), (pkey))
IMPACT_FORWARD(int, EVP_PKEY_public_check, (EVP_PKEY_CTX * ctx), (ctx))
IMPACT_FORWARD(const EVP_MD*, EVP_get_digestbyname, (const char* name), (name))
IMPACT_FORWARD(const EVP_MD*, EVP_md5, (void), ())
IMPACT_FORWARD(const EVP_MD*, EVP_sha1, (void), ())
IMPACT_FORWARD(const EVP_MD*, EVP_sha256, (void), ())
IMPACT_FORWARD(const EVP_MD*, EVP_sha384, (void), ())
IMPACT_FORWARD(const EVP_MD*, EVP_sha512, (void), ())
IMPACT_FORWARD(unsigned char*, HMAC,
               (const EVP_MD* evp_md, const void* key, int key_len, const unsigned char* data, size_t data_len,
                unsigned char* md, unsigned int* md_len),
               (evp_md, key, key_len, data, data_len, md, md_len))
extern "C" void OPENSSL_cleanse(void* ptr, size_t len) { explicit_bzero(ptr, len); }
IMPACT_FORWARD_FREE(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
IMPACT_FORWARD(OSSL_PARAM_BLD*, OSSL_PARAM_BLD_new, (void), ())
IMPACT_FORWARD(int, OSSL_PARAM_BLD_push_BN, (OSSL_PARAM_BLD * bld, const char* key, const BIGNUM* bn), (bld, key, bn))
IMPACT_FORWARD(int, OSSL_PARAM_BLD_push_octet_string,
               (OSSL_PARAM_BLD * bld, const char* key, const void* buf, size_t bsize), (bld, key, buf, bsize))
IMPACT_FORWARD(int, OSSL_PARAM_BLD_push_utf8_string,
               (OSSL_PARAM_BLD * bld, const char* key, const char* buf, size_t bsize), (bld, key, buf, bsize))
IMPACT_FORWARD(OSSL_PARAM*, OSSL_PARAM_BLD_to_param, (OSSL_PARAM_BLD * bld), (bld))
IMPACT_FORWARD_FREE(OSSL_PARAM, OSSL_PARAM_free)
IMPACT_FORWARD(const char*, OpenSSL_version, (int type), (type))
IMPACT_FORWARD(int, RAND_bytes, (unsigned char* buf, int num), (buf, num))
IMPACT_FORWARD(unsigned char*, SHA256, (const unsigned char* d, size_t n, unsigned char* md), (d, n, md))
IMPACT_FORWARD(int, i2d_ECDSA_SIG, (const ECDSA_SIG* sig, unsigned char** pp), (sig, pp))

// Crypt4GH.
IMPACT_FORWARD(int, EVP_CIPHER_CTX_ctrl, (EVP_CIPHER_CTX * ctx, int type, int arg, void* ptr), (ctx, type, arg, ptr))
IMPACT_FORWARD_FREE(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
IMPACT_FORWARD(EVP_CIPHER_CTX*, EVP_CIPHER_CTX_new, (void), ())
IMPACT_FORWARD(int, EVP_CipherInit_ex,
               (EVP_CIPHER_CTX * ctx, const EVP_CIPHER* cipher, ENGINE* impl, const unsigned char* key,
                const unsigned char* iv, int enc),
               (ctx, cipher, impl, key, iv, enc))
IMPACT_FORWARD(int, EVP_DecryptFinal_ex, (EVP_CIPHER_CTX * ctx, unsigned char* outm, int* outl), (ctx, outm, outl))
IMPACT_FORWARD(int, EVP_DecryptInit_ex,
               (EVP_CIPHER_CTX * ctx, const EVP_CIPHER* cipher, ENGINE* impl, const unsigned char* key,
                const unsigned char* iv),
               (ctx, cipher, impl, key, iv))
IMPACT_FORWARD(int, EVP_DecryptUpdate,
               (EVP_CIPHER_CTX * ctx, unsigned char* out, int* outl, const unsigned char* in, int inl),
               (ctx, out, outl, in, inl))
IMPACT_FORWARD(int, EVP_EncryptFinal_ex, (EVP_CIPHER_CTX * ctx, unsigned char* out, int* outl), (ctx, out, outl))
IMPACT_FORWARD(int, EVP_EncryptInit_ex,
               (EVP_CIPHER_CTX * ctx, const EVP_CIPHER* cipher, ENGINE* impl, const unsigned char* key,
                const unsigned char* iv),
               (ctx, cipher, impl, key, iv))
IMPACT_FORWARD(int, EVP_EncryptUpdate,
               (EVP_CIPHER_CTX * ctx, unsigned char* out, int* outl, const unsigned char* in, int inl),
               (ctx, out, outl, in, inl))
IMPACT_FORWARD(int, EVP_PBE_scrypt,
               (const char* pass, size_t passlen, const unsigned char* salt, size_t saltlen, uint64_t N, uint64_t r,
                uint64_t p, uint64_t maxmem, unsigned char* key, size_t keylen),
               (pass, passlen, salt, saltlen, N, r, p, maxmem, key, keylen))
IMPACT_FORWARD(int, EVP_PKEY_derive, (EVP_PKEY_CTX * ctx, unsigned char* key, size_t* keylen), (ctx, key, keylen))
IMPACT_FORWARD(int, EVP_PKEY_derive_init, (EVP_PKEY_CTX * ctx), (ctx))
IMPACT_FORWARD(int, EVP_PKEY_derive_set_peer, (EVP_PKEY_CTX * ctx, EVP_PKEY* peer), (ctx, peer))
IMPACT_FORWARD(int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY* pkey, unsigned char* pub, size_t* len),
               (pkey, pub, len))
IMPACT_FORWARD(EVP_PKEY*, EVP_PKEY_new_raw_private_key,
               (int type, ENGINE* e, const unsigned char* priv, size_t len), (type, e, priv, len))
IMPACT_FORWARD(EVP_PKEY*, EVP_PKEY_new_raw_public_key, (int type, ENGINE* e, const unsigned char* pub, size_t len),
               (type, e, pub, len))
IMPACT_FORWARD(const EVP_MD*, EVP_blake2b512, (void), ())
IMPACT_FORWARD(const EVP_CIPHER*, EVP_chacha20_poly1305, (void), ())
IMPACT_FORWARD(int, PKCS5_PBKDF2_HMAC,
               (const char* pass, int passlen, const unsigned char* salt, int saltlen, int iter, const EVP_MD* digest,
                int keylen, unsigned char* out),
               (pass, passlen, salt, saltlen, iter, digest, keylen, out))

#pragma GCC visibility pop
