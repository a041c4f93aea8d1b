// DRS URIs, the object model, local names and checksums.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <unistd.h>

#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::drs {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = text::lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, std::string_view uri) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
    if (lo < 0) throw Error(ErrorKind::usage, fmt::format("bad percent-encoding in {}", uri), "write '%' as %25");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string lower_copy(std::string s) {
  for (char& c : s) c = text::lower(c);
  return s;
}

using detail::string_member;
using detail::strings_member;

ContentsObject parse_contents(const nlohmann::json& j, int depth) {
  ContentsObject c;
  c.name = string_member(j, "name");
  c.id = string_member(j, "id");
  c.drs_uri = strings_member(j, "drs_uri");
  auto it = j.find("contents");
  if (it != j.end() && it->is_array() && depth < 16)
    for (const auto& k : *it)
      if (k.is_object()) c.contents.push_back(parse_contents(k, depth + 1));
  return c;
}

void contents_json(nlohmann::json& j, const ContentsObject& c) {
  j = {{"name", c.name}, {"id", c.id}, {"drs_uri", c.drs_uri}};
  if (!c.contents.empty()) {
    j["contents"] = nlohmann::json::array();
    for (const auto& k : c.contents) contents_json(j["contents"].emplace_back(), k);
  }
}

struct Algo {
  std::string_view drs_name;
  const char* openssl_name;
};
// Strongest first.
constexpr std::array<Algo, 4> kAlgos{{{"sha-512", "SHA512"}, {"sha-256", "SHA256"}, {"sha1", "SHA1"}, {"md5", "MD5"}}};

// DRS writes "sha-256"; some servers write "sha256" or "SHA-256".
std::string normalize_type(std::string_view t) {
  std::string out;
  for (char c : t)
    if (c != '-' && c != '_') out += text::lower(c);
  return out;
}

const Algo* algo_for(std::string_view type) {
  for (const auto& a : kAlgos)
    if (normalize_type(a.drs_name) == normalize_type(type)) return &a;
  return nullptr;
}

}  // namespace

Uri parse_uri(std::string_view text) {
  Uri u;
  u.text = std::string(text);
  const auto bad = [&](std::string_view why) {
    return Error(ErrorKind::usage, fmt::format("not a DRS URI: {} ({})", text, why),
                 "write drs://HOST/ID or drs://PREFIX:ACCESSION");
  };
  if (text.size() < 7 || !text::iequals(text.substr(0, 6), "drs://")) throw bad("it must start with drs://");
  std::string_view rest = text.substr(6);
  for (char c : rest)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad("it contains spaces or control characters");
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
      throw bad("a compact identifier is PREFIX:ACCESSION");
    const auto tail = rest.substr(colon + 1);
    if (tail.find_first_not_of("0123456789") == std::string_view::npos) throw bad("no object id after the host");
    u.compact = true;
    u.prefix = std::string(rest.substr(0, colon));
    u.accession = percent_decode(tail, text);
    return u;
  }
  u.host = std::string(rest.substr(0, slash));
  if (u.host.empty()) throw bad("no host");
  if (slash + 1 == rest.size()) throw bad("no object id after the host");
  u.id = percent_decode(rest.substr(slash + 1), text);
  return u;
}

Object parse_object(const nlohmann::json& j, std::string_view origin) {
  const auto bad = [&](std::string_view why) {
    return Error(ErrorKind::protocol, fmt::format("{} sent an invalid DRS object: {}", origin, why));
  };
  if (!j.is_object()) throw bad("not a JSON object");
  Object o;
  o.id = string_member(j, "id");
  if (o.id.empty()) throw bad("no id");
  using Field = std::string Object::*;
  static constexpr std::array<std::pair<const char*, Field>, 7> kText{{
      {"name", &Object::name}, {"self_uri", &Object::self_uri}, {"version", &Object::version},
      {"mime_type", &Object::mime_type}, {"description", &Object::description},
      {"created_time", &Object::created_time}, {"updated_time", &Object::updated_time}}};
  for (const auto& [key, field] : kText) o.*field = string_member(j, key);
  o.aliases = strings_member(j, "aliases");
  const auto size = detail::integer_member(j, "size");
  if (!size || *size < 0) throw bad("no valid size");
  o.size = static_cast<std::uint64_t>(*size);
  if (auto it = j.find("checksums"); it != j.end() && it->is_array())
    for (const auto& c : *it)
      if (c.is_object() && !string_member(c, "type").empty()) o.checksums.push_back({string_member(c, "type"), lower_copy(string_member(c, "checksum"))});
  if (auto it = j.find("access_methods"); it != j.end() && it->is_array()) {
    for (const auto& m : *it) {
      if (!m.is_object()) continue;
      AccessMethod a;
      a.type = string_member(m, "type");
      a.access_id = string_member(m, "access_id");
      a.region = string_member(m, "region");
      if (auto av = detail::bool_member(m, "available")) a.available = *av;
      if (auto u = m.find("access_url"); u != m.end() && u->is_object() && !string_member(*u, "url").empty())
        a.access_url = AccessUrl{string_member(*u, "url"), strings_member(*u, "headers")};
      o.access_methods.push_back(std::move(a));
    }
  }
  if (auto it = j.find("contents"); it != j.end() && it->is_array()) {
    o.bundle = true;
    for (const auto& c : *it)
      if (c.is_object()) o.contents.push_back(parse_contents(c, 0));
  }
  return o;
}

Authorizations parse_authorizations(const nlohmann::json& j) {
  Authorizations a;
  if (!j.is_object() || !j.contains("supported_types")) return a;
  a.known = true;
  a.supported_types = strings_member(j, "supported_types");
  a.passport_auth_issuers = strings_member(j, "passport_auth_issuers");
  a.bearer_auth_issuers = strings_member(j, "bearer_auth_issuers");
  return a;
}

void to_json(nlohmann::json& j, const Object& o) {
  j = {{"id", o.id}, {"name", o.name}, {"self_uri", o.self_uri}, {"size", o.size},
       {"created_time", o.created_time}, {"updated_time", o.updated_time}, {"version", o.version},
       {"mime_type", o.mime_type}, {"aliases", o.aliases}, {"server", o.server}};
  if (!o.description.empty()) j["description"] = o.description;
  j["checksums"] = nlohmann::json::array();
  for (const auto& c : o.checksums) j["checksums"].push_back({{"type", c.type}, {"checksum", c.checksum}});
  j["access_methods"] = nlohmann::json::array();
  for (const auto& a : o.access_methods) {
    nlohmann::json m = {{"type", a.type}, {"available", a.available}};
    if (!a.access_id.empty()) m["access_id"] = a.access_id;
    if (!a.region.empty()) m["region"] = a.region;
    if (a.access_url) m["access_url"] = true;  // never the URL itself: it may be signed
    j["access_methods"].push_back(std::move(m));
  }
  if (o.bundle) {
    j["contents"] = nlohmann::json::array();
    for (const auto& c : o.contents) contents_json(j["contents"].emplace_back(), c);
  }
}

std::optional<Checksum> verifiable_checksum(const std::vector<Checksum>& sums) {
  for (const auto& a : kAlgos)
    for (const auto& c : sums)
      if (algo_for(c.type) == &a && !c.checksum.empty()) return c;
  return std::nullopt;
}

namespace {
// Digest of what `read` hands over (it returns the bytes read into the buffer, 0 at the end).
template <class Read>
std::string digest_of(std::string_view type, Read&& read) {
  const Algo* a = algo_for(type);
  if (!a) throw Error(ErrorKind::usage, fmt::format("impact cannot compute a {} checksum", type));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* md = EVP_get_digestbyname(a->openssl_name);
  if (!ctx || !md || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    throw Error(ErrorKind::generic, fmt::format("OpenSSL cannot compute {}", type));
  std::array<char, 1 << 16> buf{};
  for (std::size_t n; (n = read(buf.data(), buf.size())) != 0;) EVP_DigestUpdate(ctx.get(), buf.data(), n);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md_out{};
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), md_out.data(), &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md_out[i]);
  return hex;
}
}  // namespace

std::string file_digest(const std::filesystem::path& file, std::string_view type) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, fmt::format("cannot read {}", file.string()));
  return digest_of(type, [&](char* buf, std::size_t size) -> std::size_t {
    in.read(buf, static_cast<std::streamsize>(size));
    if (in.bad()) throw Error(ErrorKind::io, fmt::format("error reading {}", file.string()));
    return static_cast<std::size_t>(in.gcount());
  });
}

std::string file_digest(int fd, std::string_view type) {
  off_t at = 0;
  return digest_of(type, [&](char* buf, std::size_t size) -> std::size_t {
    ssize_t n;
    while ((n = ::pread(fd, buf, size, at)) < 0 && errno == EINTR) {
    }
    if (n < 0) throw Error(ErrorKind::io, fmt::format("error reading a downloaded file: {}", std::strerror(errno)));
    at += n;
    return static_cast<std::size_t>(n);
  });
}

std::string bytes_digest(std::string_view data, std::string_view type) {
  std::size_t at = 0;
  return digest_of(type, [&](char* buf, std::size_t size) -> std::size_t {
    const std::size_t n = std::min(size, data.size() - at);
    std::memcpy(buf, data.data() + at, n);
    at += n;
    return n;
  });
}

}  // namespace impact::drs
