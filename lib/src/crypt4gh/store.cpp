// The Crypt4GH key store: $XDG_DATA_HOME/impact/keys/NAME.sec (0600) and NAME.pub (0600), folder 0700.
#include <fmt/format.h>

#include <algorithm>
#include <system_error>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"

namespace fs = std::filesystem;

namespace impact::crypt4gh {

namespace {

constexpr std::size_t max_key_file = 64u << 10;

fs::path pub_path(std::string_view name) { return key_dir() / (std::string(name) + ".pub"); }
fs::path sec_path(std::string_view name) { return key_dir() / (std::string(name) + ".sec"); }

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found && !ec;
}

}  // namespace

fs::path key_dir() { return data_home() / "keys"; }

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

StoredKey find_key(std::string_view name) {
  if (!valid_key_name(name))
    throw Error(ErrorKind::usage, fmt::format("'{}' is not a valid key name (letters, digits, '-', '_', '.')", name));
  if (!present(pub_path(name)) && !present(sec_path(name)))
    throw Error(ErrorKind::not_found, fmt::format("no Crypt4GH key named '{}'", name));
  StoredKey k;
  k.name = std::string(name);
  if (present(sec_path(name))) {
    std::string pem = read_private_file(sec_path(name), max_key_file);
    k.info = inspect_private_key(pem);
    detail::wipe(pem);
    k.has_secret = true;
  }
  k.public_key = parse_public_key(read_file(pub_path(name), max_key_file));
  return k;
}

std::vector<StoredKey> list_keys() {
  std::vector<StoredKey> out;
  std::error_code ec;
  fs::directory_iterator it(key_dir(), ec), end;
  if (ec) return out;  // no folder yet: no keys
  std::vector<std::string> names;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    auto p = it->path();
    if (p.extension() == ".pub" && valid_key_name(p.stem().string())) names.push_back(p.stem().string());
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out.push_back(find_key(n));
  return out;
}

void store_key(std::string_view name, std::string_view secret_pem, const Key& public_key) {
  if (!valid_key_name(name))
    throw Error(ErrorKind::usage, fmt::format("'{}' is not a valid key name (letters, digits, '-', '_', '.')", name));
  ensure_private_dir(key_dir());
  if (present(pub_path(name)) || present(sec_path(name)))
    throw Error(ErrorKind::usage, fmt::format("a Crypt4GH key named '{}' exists already", name));
  if (!secret_pem.empty()) write_file_atomic(sec_path(name), secret_pem, 0600);
  write_file_atomic(pub_path(name), format_public_key(public_key), 0600);
}

void remove_key(std::string_view name) {
  find_key(name);
  std::error_code ec;
  fs::remove(sec_path(name), ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot remove {}: {}", sec_path(name).string(), ec.message()));
  fs::remove(pub_path(name), ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot remove {}: {}", pub_path(name).string(), ec.message()));
}

KeyPair load_private_key(std::string_view name_or_file, const PassphraseSource& passphrase) {
  fs::path path = valid_key_name(name_or_file) && present(sec_path(name_or_file)) ? sec_path(name_or_file)
                                                                                 : fs::path(std::string(name_or_file));
  if (!present(path))
    throw Error(ErrorKind::not_found, fmt::format("no Crypt4GH private key named or at '{}'", name_or_file));
  std::string pem = read_private_file(path, max_key_file);
  try {
    KeyPair k = parse_private_key(pem, passphrase);
    detail::wipe(pem);
    return k;
  } catch (...) {
    detail::wipe(pem);
    throw;
  }
}

Key load_public_key(std::string_view name_or_file) {
  if (valid_key_name(name_or_file) && present(pub_path(name_or_file)))
    return parse_public_key(read_file(pub_path(name_or_file), max_key_file));
  fs::path path{std::string(name_or_file)};
  if (present(path)) return parse_public_key(read_file(path, max_key_file));
  std::string raw;
  if (name_or_file.size() == 44 && detail::base64_decode(name_or_file, raw) && raw.size() == 32)
    return parse_public_key(name_or_file);
  throw Error(ErrorKind::not_found,
              fmt::format("'{}' is neither a stored key, a public key file, nor a base64 public key", name_or_file));
}

}  // namespace impact::crypt4gh
