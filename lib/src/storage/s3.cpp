// The S3 calls impact needs, path-style, SigV4-signed; S3 error XML turned into clear errors.
#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <set>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "impact/error.hpp"
#include "impact/oidc.hpp"
#include "impact/paths.hpp"
#include "impact/redact.hpp"
#include "impact/storage.hpp"
#include "impact/url.hpp"

namespace impact::storage {

namespace {

// Pages of one ListObjectsV2 listing at most (of up to 1,000 keys each): a bound whatever the storage does.
constexpr int kMaxListPages = 100'000;

class StaticKeys final : public CredentialSource {
 public:
  explicit StaticKeys(sigv4::Credentials k) : keys_(std::move(k)) {
    remember_secret(keys_.secret_key);
    if (!keys_.session_token.empty()) remember_secret(keys_.session_token);
  }
  sigv4::Credentials get() override { return keys_; }

 private:
  sigv4::Credentials keys_;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// Seconds the server's Date header is ahead of our clock (negative: behind), if it sent one.
std::optional<long long> clock_skew(const http::Response& r) {
  auto date = r.header("Date");
  if (!date) return std::nullopt;
  std::tm tm{};
  if (!strptime(std::string(*date).c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return std::nullopt;
  const auto server = std::chrono::system_clock::from_time_t(timegm(&tm));
  const auto local = r.received.time_since_epoch().count() ? r.received : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::seconds>(server - local).count();
}

// An HTTP date ("Sun, 22 Nov 2026 15:10:58 GMT") as a listing writes it ("2026-11-22T15:10:58.000Z");
// anything else as it is.
std::string iso_time(std::string http_date) {
  std::tm tm{};
  char buf[32];
  if (!strptime(http_date.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm))
    return http_date;
  return buf;
}

}  // namespace

std::unique_ptr<CredentialSource> static_keys(sigv4::Credentials keys) {
  return std::make_unique<StaticKeys>(std::move(keys));
}

std::unique_ptr<CredentialSource> keys_from_environment() {
  sigv4::Credentials k{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
  if (k.access_key.empty() && k.secret_key.empty()) return nullptr;
  if (k.access_key.empty() || k.secret_key.empty())
    throw Error(ErrorKind::config, "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
                "set both, or unset both to use the profile's STS");
  return static_keys(std::move(k));
}

std::unique_ptr<CredentialSource> keys_from_file(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    throw Error(ErrorKind::config, "cannot read the storage keys file " + file.string(), "fix storage.keys_file in the profile");
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorKind::config, "the storage keys file " + file.string() + " is readable by other users",
                "run: chmod 600 " + file.string());
  std::string text = read_private_file(file, 16 * 1024);
  std::vector<std::string> lines;
  std::size_t i = 0;
  while (i < text.size() && lines.size() < 3) {
    auto j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string line = text.substr(i, j - i);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    i = j + 1;
  }
  oidc::wipe(text);
  if (lines.size() < 2)
    throw Error(ErrorKind::config, "the storage keys file " + file.string() + " needs the access key id and the secret key, one per line");
  sigv4::Credentials k{lines[0], lines[1], lines.size() > 2 ? lines[2] : std::string()};
  for (auto& l : lines) oidc::wipe(l);
  remember_secret(k.secret_key);
  remember_secret(k.session_token);
  return static_keys(std::move(k));
}

void to_json(nlohmann::json& j, const ObjectInfo& o) {
  j = {{"key", o.key}, {"size", o.size}, {"etag", o.etag}, {"last_modified", o.last_modified}};
}

std::optional<Location> parse_s3_uri(std::string_view text) {
  if (text.rfind("s3://", 0) != 0) return std::nullopt;
  text.remove_prefix(5);
  const auto slash = text.find('/');
  Location loc{std::string(text.substr(0, slash)),
               slash == std::string_view::npos ? std::string() : std::string(text.substr(slash + 1))};
  const bool ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63 &&
                  loc.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
  if (!ok)
    throw Error(ErrorKind::usage, "not a valid S3 bucket name in '" + std::string("s3://") + loc.bucket + "'",
                "write it as s3://BUCKET/PREFIX (bucket: 3-63 lower-case letters, digits, '.', '-')");
  return loc;
}

void check_run_id(std::string_view run_id) {
  if (run_id.empty() || run_id.size() > 128 ||
      run_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != std::string_view::npos ||
      run_id == "." || run_id == "..")
    throw Error(ErrorKind::usage, "'" + std::string(run_id) + "' is not a run id or an s3:// URI",
                "give a WES run id or s3://BUCKET/PREFIX");
}

Location run_location(const StorageConfig& st, std::string_view run_id) {
  check_run_id(run_id);
  if (st.bucket.empty())
    throw Error(ErrorKind::config, "the profile's storage has no results bucket", "set storage.bucket in the profile");
  std::string prefix = st.result_prefix;
  for (auto pos = prefix.find("{run_id}"); pos != std::string::npos; pos = prefix.find("{run_id}", pos + run_id.size()))
    prefix.replace(pos, 8, run_id);
  return {st.bucket, prefix};
}

bool is_presigned_url(std::string_view url) {
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) return false;
  const auto q = url.find('?');
  if (q == std::string_view::npos) return false;
  auto has = [query = url.substr(q)](std::string_view key) {
    for (char sep : {'?', '&'})
      if (query.find(std::string(1, sep) + std::string(key) + "=") != std::string_view::npos) return true;
    return false;
  };
  return has("X-Amz-Signature") || (has("Signature") && has("AWSAccessKeyId"));
}

http::Headers checksum_headers(const http::Headers& headers) {
  http::Headers out;
  for (const auto& h : headers) {
    if (h.name.size() <= 15 || strncasecmp(h.name.c_str(), "x-amz-checksum-", 15) != 0) continue;
    std::string name = h.name;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.push_back({std::move(name), h.value});
  }
  return out;
}

std::string s3_error_code(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return {};
  return doc.child("Error").child_value("Code");
}

void throw_s3_error(const http::Response& r, std::string_view what) {
  pugi::xml_document doc;
  std::string code, message;
  if (doc.load_buffer(r.body.data(), r.body.size())) {
    code = doc.child("Error").child_value("Code");
    message = doc.child("Error").child_value("Message");
  }
  const std::string head = fmt::format("{} failed: HTTP {}{}", what, r.status, code.empty() ? "" : " " + code);
  auto fail = [&](ErrorKind kind, std::string text, std::string hint, Remedy remedy = Remedy::none) {
    throw Error(kind, head + ": " + text, std::move(hint)).with_status(r.status).with_url(r.url).with_remedy(remedy);
  };
  if (code == "NoSuchKey") fail(ErrorKind::not_found, "no such object", "", Remedy::results_ls);
  if (code == "NoSuchBucket") fail(ErrorKind::not_found, "no such bucket", "check the bucket name or the profile's storage.bucket");
  if (code == "AccessDenied") {
    if (message.find("xpired") != std::string::npos)
      fail(ErrorKind::forbidden, "the presigned URL has expired", "ask for a new presigned URL");
    fail(ErrorKind::forbidden, "access denied", "your account does not grant access to this bucket or prefix");
  }
  if (code == "SignatureDoesNotMatch" || code == "RequestTimeTooSkewed") {
    std::string hint = "check the secret key";
    if (auto skew = clock_skew(r); skew && std::llabs(*skew) >= 60)
      hint = fmt::format("this machine's clock is {} s {} the server's: fix the clock (NTP) and try again",
                         std::llabs(*skew), *skew > 0 ? "behind" : "ahead of");
    else
      hint += ", and this machine's clock (S3 signatures are valid for 15 minutes around the server's time)";
    fail(ErrorKind::auth_required,
         code == "SignatureDoesNotMatch" ? "the storage did not accept the request signature" : "the clocks differ too much",
         hint);
  }
  if (code == "ExpiredToken" || code == "InvalidAccessKeyId" || code == "InvalidToken" || code == "TokenRefreshRequired")
    fail(ErrorKind::auth_required, "the storage credentials are unknown or expired",
         "run the command again (impact fetches fresh temporary credentials); if it persists, log in again",
         Remedy::login);
  if (code == "InvalidRange") fail(ErrorKind::protocol, "the requested range is outside the object", "");
  if (code == "SlowDown") fail(ErrorKind::rate_limited, "the storage asks to slow down", "try again later", Remedy::lower_parallel);
  try {
    http::throw_for_status(r, what);
  } catch (Error& e) {
    if (!code.empty())
      throw Error(e.kind(), head + (message.empty() ? "" : ": " + message), e.hint())
          .with_status(r.status)
          .with_url(r.url)
          .with_remedy(e.remedy());
    throw;
  }
}

// ---------------------------------------------------------------- S3Client

S3Client::S3Client(std::string endpoint, std::string region, CredentialSource& creds, http::Options options)
    : endpoint_(std::move(endpoint)), region_(std::move(region)), creds_(creds), options_(options), client_(options) {
  require_allowed_url(endpoint_, "the storage endpoint");
  const auto u = Url::parse(endpoint_);
  if (!u) throw Error(ErrorKind::config, "the storage endpoint is not a URL", "fix storage.url in the profile");
  const bool default_port = (u->scheme == "https" && u->port == 443) || (u->scheme == "http" && u->port == 80);
  const std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  host_ = default_port ? host : host + ":" + std::to_string(u->port);
  endpoint_ = u->origin();
}

http::Request S3Client::signed_request(http::Method method, const std::string& bucket, const std::string& key,
                                       std::vector<std::pair<std::string, std::string>> query, http::Headers headers) {
  sigv4::Signable s;
  s.method = method;
  s.path = "/" + bucket + (key.empty() ? std::string() : "/" + key);
  s.query = std::move(query);
  s.headers = std::move(headers);
  s.headers.push_back({"Host", host_});
  s.payload_hash = "UNSIGNED-PAYLOAD";
  sigv4::Params p;
  p.region = region_;
  p.service = "s3";
  p.time = std::chrono::system_clock::now();
  p.content_sha256_header = true;
  sigv4::sign_headers(s, creds_.get(), p);
  http::Request req;
  req.method = method;
  req.url = sigv4::url(endpoint_, s);
  for (auto& h : s.headers)
    if (h.name != "Host") req.headers.push_back(std::move(h));
  return req;
}

http::Response S3Client::send(http::Method method, const std::string& bucket, const std::string& key,
                              std::vector<std::pair<std::string, std::string>> query, std::string_view what,
                              const http::Headers& headers) {
  // Keys the storage no longer knows (temporary ones that expired early) get one fresh try.
  for (int attempt = 0;; ++attempt) {
    auto r = client_.send(signed_request(method, bucket, key, query, headers));
    if (r.ok()) return r;
    const std::string code = s3_error_code(r.body);
    if (attempt == 0 && (code == "InvalidAccessKeyId" || code == "ExpiredToken")) {
      creds_.invalidate();
      continue;
    }
    throw_s3_error(r, what);
  }
}

ListPage parse_list_page(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size()) || !doc.child("ListBucketResult"))
    throw Error(ErrorKind::protocol, "the storage answered the listing with something that is not ListBucketResult XML");
  auto root = doc.child("ListBucketResult");
  ListPage page;
  constexpr std::uint64_t kMaxObject = 5ull << 40;  // S3's largest object: 5 TiB
  for (auto c : root.children("Contents")) {
    ObjectInfo o;
    o.key = c.child_value("Key");
    const std::string_view size = c.child_value("Size");
    if (size.empty() || size.size() > 15 || size.find_first_not_of("0123456789") != std::string_view::npos ||
        (o.size = std::strtoull(std::string(size).c_str(), nullptr, 10)) > kMaxObject)
      throw Error(ErrorKind::protocol, "the storage listed an object with an impossible size");
    o.etag = unquote(c.child_value("ETag"));
    o.last_modified = c.child_value("LastModified");
    o.checksum_algorithm = c.child_value("ChecksumAlgorithm");
    page.objects.push_back(std::move(o));
  }
  page.truncated = std::string_view(root.child_value("IsTruncated")) == "true";
  page.next_token = root.child_value("NextContinuationToken");
  return page;
}

std::vector<ObjectInfo> S3Client::list(const std::string& bucket, const std::string& prefix, int page_size) {
  std::vector<ObjectInfo> out;
  auto pages = list_pages(bucket, prefix, page_size);
  while (auto page = pages())
    for (auto& o : *page) out.push_back(std::move(o));
  return out;
}

ObjectPages S3Client::list_pages(const std::string& bucket, const std::string& prefix, int page_size) {
  struct State {
    std::string token;
    std::set<std::string> tokens;  // a token seen before would start the same pages again, without end
    int page = 0;
    bool ended = false;
  };
  auto st = std::make_shared<State>();
  return [this, bucket, prefix, page_size, st]() -> std::optional<std::vector<ObjectInfo>> {
    if (st->ended) return std::nullopt;
    if (st->page++ == kMaxListPages)
      throw Error(ErrorKind::protocol, fmt::format("the listing did not end after {} pages", kMaxListPages));
    std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"}, {"max-keys", std::to_string(page_size)}};
    if (!prefix.empty()) q.emplace_back("prefix", prefix);
    if (!st->token.empty()) q.emplace_back("continuation-token", st->token);
    auto r = send(http::Method::get, bucket, "", q, fmt::format("listing s3://{}/{}", bucket, prefix));
    ListPage p;
    try {
      p = parse_list_page(r.body);
    } catch (Error& e) {
      throw e.with_url(r.url);
    }
    st->token = std::move(p.next_token);
    if (!p.truncated) {
      st->ended = true;
    } else if (st->token.empty()) {
      throw Error(ErrorKind::protocol, "the storage said the listing goes on but sent no continuation token").with_url(r.url);
    } else if (!st->tokens.insert(st->token).second) {
      throw Error(ErrorKind::protocol, "the storage sent a continuation token it had already sent: the listing would not end")
          .with_url(r.url);
    }
    return std::move(p.objects);
  };
}

ObjectInfo S3Client::head(const std::string& bucket, const std::string& key) {
  auto r = send(http::Method::head, bucket, key, {}, fmt::format("reading s3://{}/{}", bucket, key),
                {{"x-amz-checksum-mode", "ENABLED"}});
  ObjectInfo o;
  o.key = key;
  o.checksums = checksum_headers(r.headers);
  o.size = std::strtoull(std::string(r.header("Content-Length").value_or("0")).c_str(), nullptr, 10);
  o.etag = unquote(std::string(r.header("ETag").value_or("")));
  o.last_modified = iso_time(std::string(r.header("Last-Modified").value_or("")));
  return o;
}

http::Request S3Client::get_request(const std::string& bucket, const std::string& key,
                                    std::optional<std::pair<std::uint64_t, std::uint64_t>> range) {
  http::Headers h;
  if (range) h.push_back({"Range", fmt::format("bytes={}-{}", range->first, range->second)});
  else h.push_back({"x-amz-checksum-mode", "ENABLED"});
  return signed_request(http::Method::get, bucket, key, {}, std::move(h));
}

ObjectInfo probe_presigned(const std::string& url, const http::Options& options) {
  http::Client client(options);
  http::Request req;
  req.url = url;
  req.headers.push_back({"Range", "bytes=0-0"});
  auto r = client.send(req);
  const bool empty = r.status == 416;
  if (empty) {
    // Only an empty object has no byte 0 (S3 says "Content-Range: bytes */0", Ceph RGW just InvalidRange):
    // ask again without the Range, refusing any data, for its ETag.
    req.headers.clear();
    req.sink = [](std::string_view data) {
      if (!data.empty()) throw Error(ErrorKind::protocol, "the storage refused byte 0 of the object but then sent data");
    };
    r = client.send(std::move(req));
  }
  if (!r.ok()) throw_s3_error(r, "reading the presigned URL");
  ObjectInfo o;
  const auto u = Url::parse(url);
  std::string path = u ? u->path : "/";
  o.key = percent_decode(path.substr(path.rfind('/') + 1));
  o.etag = unquote(std::string(r.header("ETag").value_or("")));
  o.last_modified = std::string(r.header("Last-Modified").value_or(""));
  if (empty) return o;
  if (auto cr = r.header("Content-Range"); r.status == 206 && cr && cr->find('/') != std::string_view::npos)
    o.size = std::strtoull(std::string(cr->substr(cr->find('/') + 1)).c_str(), nullptr, 10);
  else
    o.size = r.body.size();
  return o;
}

}  // namespace impact::storage
