#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "impact/sigv4.hpp"

using namespace impact;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string unhex_percent(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// request.txt: "METHOD TARGET HTTP/1.1", header lines (continuations start with a space), blank line, body.
sigv4::Signable parse_request(const std::string& text, std::string& body) {
  sigv4::Signable r;
  auto blank = text.find("\n\n");
  const std::string head = text.substr(0, blank);
  body = blank == std::string::npos ? std::string() : text.substr(blank + 2);
  std::istringstream in(head);
  std::string line;
  std::getline(in, line);
  const auto sp = line.find(' ');
  const std::string method = line.substr(0, sp);
  const std::string target = line.substr(sp + 1, line.rfind(" HTTP/") - sp - 1);
  r.method = method == "POST" ? http::Method::post : http::Method::get;
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(target).substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      auto pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      auto eq = pair.find('=');
      r.query.emplace_back(unhex_percent(pair.substr(0, eq)),
                           eq == std::string_view::npos ? std::string() : unhex_percent(pair.substr(eq + 1)));
    }
  }
  while (std::getline(in, line)) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      r.headers.back().value += "\n" + line;
      continue;
    }
    const auto colon = line.find(':');
    r.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  return r;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("SigV4 test suite: every vector, header and query form") {
  const fs::path root = IMPACT_SIGV4_VECTORS;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const fs::path dir = entry.path();
    const auto ctx = nlohmann::json::parse(slurp(dir / "context.json"));
    sigv4::Credentials creds{ctx["credentials"]["access_key_id"], ctx["credentials"]["secret_access_key"],
                             ctx["credentials"].value("token", "")};
    sigv4::Params p;
    p.region = ctx["region"];
    p.service = ctx["service"];
    std::tm tm{};
    strptime(ctx["timestamp"].get<std::string>().c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    p.time = std::chrono::system_clock::from_time_t(timegm(&tm));
    p.normalize_path = ctx["normalize"];
    p.content_sha256_header = ctx["sign_body"];
    p.omit_session_token = ctx.value("omit_session_token", false);
    p.expires = std::chrono::seconds(ctx.value("expiration_in_seconds", 3600));
    std::string body;
    const auto base = parse_request(slurp(dir / "request.txt"), body);
    for (const std::string form : {"header", "query"}) {
      CAPTURE(dir.filename().string());
      CAPTURE(form);
      sigv4::Signable r = base;
      r.payload_hash = sigv4::sha256_hex(body);
      const auto s = form == "header" ? sigv4::sign_headers(r, creds, p) : sigv4::presign(r, creds, p);
      CHECK(s.canonical_request == trimmed(slurp(dir / (form + "-canonical-request.txt"))));
      CHECK(s.string_to_sign == trimmed(slurp(dir / (form + "-string-to-sign.txt"))));
      CHECK(s.signature == trimmed(slurp(dir / (form + "-signature.txt"))));
      // The signed request as it would go on the wire: the Authorization header or the URL's query.
      const std::string signed_req = slurp(dir / (form + "-signed-request.txt"));
      if (form == "header") {
        auto auth = http::find_header(r.headers, "Authorization");
        REQUIRE(auth);
        CHECK(signed_req.find("Authorization:" + std::string(*auth)) != std::string::npos);
      } else {
        const std::string u = sigv4::url("", r, p.normalize_path);
        const std::string q = u.substr(u.find('?'));
        const std::string wire = signed_req.substr(signed_req.find('?'), signed_req.find(" HTTP/") - signed_req.find('?'));
        // Same parameters, decoded (the suite lists them in its own order and leaves UTF-8 raw).
        auto split = [](std::string text) {
          std::vector<std::string> v;
          std::istringstream in(text.substr(1));
          for (std::string part; std::getline(in, part, '&');) v.push_back(unhex_percent(part));
          std::sort(v.begin(), v.end());
          return v;
        };
        CHECK(split(q) == split(wire));
      }
    }
    ++cases;
  }
  CHECK(cases == 38);
}

namespace {
sigv4::Params s3_example_params() {
  sigv4::Params p;
  p.region = "us-east-1";
  p.service = "s3";
  p.time = std::chrono::system_clock::from_time_t(1369353600);  // 2013-05-24T00:00:00Z
  return p;
}
const sigv4::Credentials kS3Example{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
}  // namespace

TEST_CASE("AWS S3 documentation example: GET Object with a Range header") {
  sigv4::Signable r;
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  auto p = s3_example_params();
  p.content_sha256_header = true;
  const auto s = sigv4::sign_headers(r, kS3Example, p);
  CHECK(s.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("AWS S3 documentation example: presigned GET URL") {
  sigv4::Signable r;
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  r.payload_hash = "UNSIGNED-PAYLOAD";
  auto p = s3_example_params();
  p.expires = std::chrono::seconds(86400);
  const auto s = sigv4::presign(r, kS3Example, p);
  CHECK(s.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  const auto u = sigv4::url("https://examplebucket.s3.amazonaws.com", r);
  CHECK(u.find("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request") != std::string::npos);
  CHECK(u.ends_with("&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
}

TEST_CASE("S3 paths are signed as sent: dot segments and double slashes stay") {
  CHECK(sigv4::canonical_path("/bucket/a/../b//c d", false) == "/bucket/a/../b//c%20d");
  CHECK(sigv4::canonical_path("/bucket/a/../b//c d", true) == "/bucket/b/c%20d");
  CHECK(sigv4::canonical_path("", false) == "/");
}

TEST_CASE("signing without keys is an authentication error") {
  sigv4::Signable r;
  r.headers = {{"Host", "h"}};
  CHECK_THROWS_AS(sigv4::sign_headers(r, {}, s3_example_params()), Error);
}
