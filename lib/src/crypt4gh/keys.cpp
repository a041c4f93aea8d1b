// Crypt4GH keys: X25519 key pairs, the PEM public key, and the `c4gh-v1` private key format (which the
// specification leaves out; it follows the Python reference implementation, see docs and c4gh notes).
#include <openssl/evp.h>

#include <fmt/format.h>

#include <memory>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh {
using namespace detail;

namespace {

constexpr std::string_view magic = "c4gh-v1";
constexpr std::uint32_t scrypt_n = 1u << 14;

// The base64 body of a PEM block (or the whole text when it has no BEGIN line), and its label.
bool pem_body(std::string_view text, std::string& label, std::string& body) {
  auto begin = text.find("-----BEGIN ");
  if (begin == std::string_view::npos) {
    label.clear();
    return base64_decode(text, body);
  }
  auto label_end = text.find("-----", begin + 11);
  if (label_end == std::string_view::npos) return false;
  label = std::string(text.substr(begin + 11, label_end - begin - 11));
  auto data = label_end + 5;
  auto end = text.find("-----END ", data);
  if (end == std::string_view::npos) return false;
  return base64_decode(text.substr(data, end - data), body);
}

struct Reader {
  std::string_view data;
  bool string(std::string_view& out) {
    if (data.size() < 2) return false;
    std::size_t n = std::size_t(bytes(data)[0]) << 8 | bytes(data)[1];
    if (data.size() < 2 + n) return false;
    out = data.substr(2, n);
    data.remove_prefix(2 + n);
    return true;
  }
};

void put_string(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>((s.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.append(s);
}

[[noreturn]] void bad_key(std::string_view why) {
  throw Error(ErrorKind::usage, fmt::format("not a Crypt4GH private key: {}", why));
}

struct Parsed {
  std::string kdf;
  std::string_view options, cipher, data, comment;
};

Parsed parse_blob(std::string_view blob) {
  if (blob.substr(0, 14) == "openssh-key-v1") bad_key("OpenSSH private keys are not supported; use a c4gh-v1 key");
  if (blob.substr(0, magic.size()) != magic) bad_key("it does not start with c4gh-v1");
  Reader r{blob.substr(magic.size())};
  Parsed p;
  std::string_view kdf;
  if (!r.string(kdf)) bad_key("it is truncated");
  p.kdf = std::string(kdf);
  if (p.kdf != "none" && !r.string(p.options)) bad_key("it is truncated");
  if (!r.string(p.cipher) || !r.string(p.data)) bad_key("it is truncated");
  if (!r.data.empty() && !r.string(p.comment)) p.comment = {};
  return p;
}

void derive(const Parsed& p, const std::string& passphrase, unsigned char* out) {
  if (p.options.size() < 4) bad_key("its KDF options are too short");
  std::uint32_t rounds = std::uint32_t(bytes(p.options)[0]) << 24 | std::uint32_t(bytes(p.options)[1]) << 16 |
                         std::uint32_t(bytes(p.options)[2]) << 8 | bytes(p.options)[3];
  std::string_view salt = p.options.substr(4);
  if (p.kdf == "scrypt") {
    if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), bytes(salt), salt.size(), scrypt_n, 8, 1,
                       64u << 20, out, 32) != 1)
      throw Error(ErrorKind::generic, "OpenSSL failed: scrypt");
  } else if (p.kdf == "bcrypt") {
    if (rounds == 0 || rounds > 1u << 20) bad_key(fmt::format("its bcrypt round count {} is out of range", rounds));
    bcrypt_pbkdf(passphrase, salt, rounds, out, 32);
  } else if (p.kdf == "pbkdf2_hmac_sha256") {
    if (rounds == 0 || rounds > 1u << 24) bad_key(fmt::format("its PBKDF2 round count {} is out of range", rounds));
    if (PKCS5_PBKDF2_HMAC(passphrase.data(), static_cast<int>(passphrase.size()), bytes(salt),
                          static_cast<int>(salt.size()), static_cast<int>(rounds), EVP_sha256(), 32, out) != 1)
      throw Error(ErrorKind::generic, "OpenSSL failed: PBKDF2");
  } else {
    bad_key(fmt::format("its key derivation function '{}' is not supported", p.kdf));
  }
}

}  // namespace

KeyPair::~KeyPair() { wipe(secret.data(), secret.size()); }

Key public_key_of(const Key& secret) {
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.data(), secret.size()), EVP_PKEY_free);
  Key pub{};
  std::size_t len = pub.size();
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != pub.size())
    throw Error(ErrorKind::generic, "OpenSSL failed: X25519 public key");
  return pub;
}

KeyPair generate_key_pair() {
  KeyPair k;
  random_bytes(k.secret.data(), k.secret.size());
  k.public_key = public_key_of(k.secret);
  return k;
}

std::string fingerprint(const Key& public_key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(public_key.data(), public_key.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::generic, "OpenSSL failed: SHA-256");
  std::string out;
  for (int i = 0; i < 8; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

Key parse_public_key(std::string_view text) {
  std::string label, body;
  if (!pem_body(text, label, body))
    throw Error(ErrorKind::usage, "not a Crypt4GH public key: neither the PEM form nor base64");
  if (label.find("PRIVATE") != std::string::npos)
    throw Error(ErrorKind::usage, "this is a private key; a public key is needed here");
  if (body.size() != 32)
    throw Error(ErrorKind::usage, fmt::format("not a Crypt4GH public key: {} bytes instead of 32", body.size()));
  Key k{};
  std::copy(body.begin(), body.end(), k.begin());
  return k;
}

std::string base64_public_key(const Key& public_key) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(public_key.data()), public_key.size()));
}

std::string format_public_key(const Key& public_key) {
  return "-----BEGIN CRYPT4GH PUBLIC KEY-----\n" + base64_public_key(public_key) +
         "\n-----END CRYPT4GH PUBLIC KEY-----\n";
}

PrivateKeyInfo inspect_private_key(std::string_view pem) {
  std::string label, blob;
  if (!pem_body(pem, label, blob)) bad_key("it is not PEM or base64");
  Parsed p = parse_blob(blob);
  PrivateKeyInfo info{p.kdf, std::string(p.comment)};  // copied before the blob is wiped
  wipe(blob);
  return info;
}

KeyPair parse_private_key(std::string_view pem, const PassphraseSource& passphrase) {
  std::string label, blob;
  if (!pem_body(pem, label, blob)) bad_key("it is not PEM or base64");
  struct Wipe { std::string& s; ~Wipe() { wipe(s); } } wipe_blob{blob};
  Parsed p = parse_blob(blob);
  KeyPair k;
  if (p.kdf == "none") {
    if (p.cipher != "none") bad_key("KDF none with a cipher");
    if (p.data.size() != 32) bad_key(fmt::format("its key is {} bytes instead of 32", p.data.size()));
    std::copy(p.data.begin(), p.data.end(), k.secret.begin());
  } else {
    if (p.cipher != "chacha20_poly1305") bad_key(fmt::format("its cipher '{}' is not supported", p.cipher));
    if (p.data.size() != 12 + 32 + 16) bad_key("its encrypted key has the wrong length");
    if (!passphrase) throw Error(ErrorKind::usage, "the private key is protected by a passphrase and none was given");
    std::string phrase = passphrase();
    unsigned char derived[32];
    try {
      derive(p, phrase, derived);
    } catch (...) {
      wipe(phrase);
      throw;
    }
    wipe(phrase);
    std::string plain;
    bool ok = aead_open(derived, bytes(p.data), p.data.substr(12), plain);
    wipe(derived, sizeof derived);
    if (!ok) throw Error(ErrorKind::usage, "wrong passphrase for the Crypt4GH private key");
    std::copy(plain.begin(), plain.end(), k.secret.begin());
    wipe(plain);
  }
  k.public_key = public_key_of(k.secret);
  return k;
}

std::string format_private_key(const KeyPair& key, std::string_view passphrase, std::string_view comment) {
  std::string blob(magic);
  std::string_view secret(reinterpret_cast<const char*>(key.secret.data()), key.secret.size());
  if (passphrase.empty()) {
    put_string(blob, "none");
    put_string(blob, "none");
    put_string(blob, secret);
  } else {
    unsigned char salt[16], nonce[12], derived[32];
    random_bytes(salt, sizeof salt);
    random_bytes(nonce, sizeof nonce);
    std::string options("\0\0\0\0", 4);
    options.append(reinterpret_cast<const char*>(salt), sizeof salt);
    if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), salt, sizeof salt, scrypt_n, 8, 1, 64u << 20,
                       derived, sizeof derived) != 1)
      throw Error(ErrorKind::generic, "OpenSSL failed: scrypt");
    std::string sealed(reinterpret_cast<const char*>(nonce), sizeof nonce);
    aead_seal(derived, nonce, secret, sealed);
    wipe(derived, sizeof derived);
    put_string(blob, "scrypt");
    put_string(blob, options);
    put_string(blob, "chacha20_poly1305");
    put_string(blob, sealed);
  }
  if (!comment.empty()) put_string(blob, comment.substr(0, 0xffff));
  std::string b64 = base64_encode(blob);
  wipe(blob);
  std::string out = "-----BEGIN CRYPT4GH PRIVATE KEY-----\n";
  out += b64 + "\n";  // one line, as the Python and Rust implementations write it
  out += "-----END CRYPT4GH PRIVATE KEY-----\n";
  wipe(b64);
  return out;
}

}  // namespace impact::crypt4gh
