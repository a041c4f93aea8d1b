// AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html).
#include "impact/sigv4.hpp"

#include <algorithm>
#include <ctime>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fmt/format.h>

#include "impact/error.hpp"
#include "impact/url.hpp"
#include "text.hpp"

namespace impact::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len))
    throw Error(ErrorKind::generic, "OpenSSL could not compute an HMAC-SHA256");
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string date_only(std::string_view amzdate) { return std::string(amzdate.substr(0, 8)); }

std::string scope(const Params& p, std::string_view date) {
  return fmt::format("{}/{}/{}/aws4_request", date, p.region, p.service);
}

// Header values: trimmed, runs of whitespace (including folded lines) collapsed to one space.
std::string canonical_value(std::string_view v) {
  v = text::trim(v);
  std::string out;
  out.reserve(v.size());
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

struct CanonicalHeaders {
  std::string block;   // "name:value\n" lines
  std::string signed_names;
};

CanonicalHeaders canonical_headers(const http::Headers& headers) {
  std::vector<std::pair<std::string, std::string>> lines;  // lower-case name, value (stable for duplicates)
  for (const auto& h : headers) {
    std::string name;
    for (char c : text::trim(h.name)) name += text::lower(c);
    lines.emplace_back(std::move(name), canonical_value(h.value));
  }
  std::stable_sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0 && lines[i].first == lines[i - 1].first) {
      out.block.back() = ',';  // repeated header: values joined with commas, in the order sent
      out.block += lines[i].second + "\n";
      continue;
    }
    if (!out.signed_names.empty()) out.signed_names += ';';
    out.signed_names += lines[i].first;
    out.block += lines[i].first + ":" + lines[i].second + "\n";
  }
  return out;
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string payload_hash(const Signable& req) {
  return req.payload_hash.empty() ? sha256_hex("") : req.payload_hash;
}

// Builds the canonical request, the string to sign and the signature for `req` as it stands.
Signature compute(const Signable& req, const Credentials& creds, const Params& p, std::string_view amzdate,
                  const CanonicalHeaders& ch) {
  Signature s;
  s.canonical_request = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", http::to_string(req.method),
                                    canonical_path(req.path, p.normalize_path), canonical_query(req.query), ch.block,
                                    ch.signed_names, payload_hash(req));
  const std::string date = date_only(amzdate);
  s.string_to_sign = fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amzdate, scope(p, date), sha256_hex(s.canonical_request));
  std::string key = hmac("AWS4" + creds.secret_key, date);
  key = hmac(key, p.region);
  key = hmac(key, p.service);
  key = hmac(key, "aws4_request");
  const std::string mac = hmac(key, s.string_to_sign);
  s.signature = to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  return s;
}

void require_keys(const Credentials& creds) {
  if (creds.access_key.empty() || creds.secret_key.empty())
    throw Error(ErrorKind::auth_required, "no S3 access key to sign the request with",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure the profile's storage STS");
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) { return percent_encode(s, keep_slash); }

std::string canonical_path(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  if (!normalize) return uri_encode(path, true);
  std::vector<std::string_view> segs;
  std::string_view rest = path;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      continue;
    }
    segs.push_back(seg);
  }
  const bool trailing = path.back() == '/' || path.ends_with("/.") || path.ends_with("/..");
  std::string out = "/";
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (i) out += '/';
    out += uri_encode(segs[i], false);
  }
  if (trailing && !segs.empty()) out += '/';
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string sha256_hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr))
    throw Error(ErrorKind::generic, "OpenSSL could not compute a SHA-256");
  return to_hex(out, len);
}

Signature sign_headers(Signable& req, const Credentials& creds, const Params& p) {
  require_keys(creds);
  const std::string amzdate = amz_date(p.time);
  req.headers.push_back({"X-Amz-Date", amzdate});
  const bool token = !creds.session_token.empty();
  if (token && !p.omit_session_token) req.headers.push_back({"X-Amz-Security-Token", creds.session_token});
  if (p.content_sha256_header) req.headers.push_back({"x-amz-content-sha256", payload_hash(req)});
  const auto ch = canonical_headers(req.headers);
  Signature s = compute(req, creds, p, amzdate, ch);
  req.headers.push_back({"Authorization", fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kAlgorithm,
                                                      creds.access_key, scope(p, date_only(amzdate)), ch.signed_names,
                                                      s.signature)});
  if (token && p.omit_session_token) req.headers.push_back({"X-Amz-Security-Token", creds.session_token});
  return s;
}

Signature presign(Signable& req, const Credentials& creds, const Params& p) {
  require_keys(creds);
  const std::string amzdate = amz_date(p.time);
  const auto ch = canonical_headers(req.headers);
  req.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  req.query.emplace_back("X-Amz-Credential", creds.access_key + "/" + scope(p, date_only(amzdate)));
  req.query.emplace_back("X-Amz-Date", amzdate);
  req.query.emplace_back("X-Amz-SignedHeaders", ch.signed_names);
  req.query.emplace_back("X-Amz-Expires", std::to_string(p.expires.count()));
  const bool token = !creds.session_token.empty();
  if (token && !p.omit_session_token) req.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  Signature s = compute(req, creds, p, amzdate, ch);
  if (token && p.omit_session_token) req.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  req.query.emplace_back("X-Amz-Signature", s.signature);
  return s;
}

std::string url(std::string_view origin, const Signable& req, bool normalize_path) {
  std::string out(origin);
  out += canonical_path(req.path, normalize_path);
  char sep = '?';
  for (const auto& [k, v] : req.query) {
    out += sep;
    out += uri_encode(k, false) + "=" + uri_encode(v, false);
    sep = '&';
  }
  return out;
}

}  // namespace impact::sigv4
