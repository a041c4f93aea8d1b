// AWS Signature Version 4: header-signed requests and presigned URLs, with session tokens. Pure functions
// over a request description, checked against the official SigV4 test-suite vectors (tests/data/sigv4).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "impact/http.hpp"

namespace impact::sigv4 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty for long-term keys
};

// What is signed. `path` and the query are NOT percent-encoded: the signer encodes them (and url() builds
// the matching URL), so the bytes signed are the bytes sent.
struct Signable {
  http::Method method = http::Method::get;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> query;
  http::Headers headers;      // must include Host
  std::string payload_hash;   // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; empty = SHA-256 of ""
};

struct Params {
  std::string region = "us-east-1";
  std::string service = "s3";
  std::chrono::system_clock::time_point time;
  bool normalize_path = false;      // S3 signs the path as sent (no dot-segment removal); other services do
  bool content_sha256_header = false;  // add x-amz-content-sha256 (S3 requires it on header-signed requests)
  bool omit_session_token = false;  // add the token after signing (some services want it unsigned)
  std::chrono::seconds expires{900};  // presigned URLs only
};

// The intermediate texts, for tests and for --debug on a signature mismatch.
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // hex
};

// Header signing: adds X-Amz-Date, x-amz-security-token, x-amz-content-sha256 (if asked) and Authorization
// to `req.headers`.
Signature sign_headers(Signable& req, const Credentials& creds, const Params& params);

// Query signing (presigned URL): adds the X-Amz-* parameters, X-Amz-Signature last, to `req.query`.
Signature presign(Signable& req, const Credentials& creds, const Params& params);

// scheme://authority + encoded path + encoded query, in the order of `req.query`.
std::string url(std::string_view origin, const Signable& req, bool normalize_path = false);

// Helpers, exposed for tests and the S3 client.
std::string uri_encode(std::string_view s, bool keep_slash);
std::string canonical_path(std::string_view path, bool normalize);
std::string amz_date(std::chrono::system_clock::time_point t);  // 20150830T123600Z
std::string sha256_hex(std::string_view data);

}  // namespace impact::sigv4
