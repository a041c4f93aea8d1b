// The SDA download API client: listings (v2 paged and filtered, v1 as a fallback), their bounded parsers, and
// errors in the archive's words (RFC 9457 problem details; 403 for no access and for no such thing alike).
#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api_request.hpp"
#include "impact/archive.hpp"
#include "impact/cancel.hpp"
#include "impact/error.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::archive {
namespace {

nlohmann::json parse_body(std::string_view body, std::string_view what) {
  auto j = detail::parse_json(body);
  if (j.is_discarded()) throw Error(ErrorKind::protocol, fmt::format("the archive's {} is not JSON", what));
  return j;
}

std::string bounded(std::string s, std::string_view what) {
  if (s.size() > kMaxPathLength) throw Error(ErrorKind::protocol, fmt::format("the archive sent a {} longer than {} bytes", what, kMaxPathLength));
  return s;
}

std::uint64_t size_of(const nlohmann::json& j, std::string_view key) {
  const auto* v = detail::member(j, key);
  if (v == nullptr) return 0;
  if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() && v->get<std::int64_t>() < 0))
    throw Error(ErrorKind::protocol, fmt::format("the archive sent a {} that is not a size", key));
  return v->get<std::uint64_t>();
}

const nlohmann::json& array_of(const nlohmann::json& j, std::string_view what) {
  if (!j.is_array()) throw Error(ErrorKind::protocol, fmt::format("the archive's {} is not a list", what));
  if (j.size() > kMaxPageEntries)
    throw Error(ErrorKind::protocol, fmt::format("the archive's {} has more than {} entries in one answer", what, kMaxPageEntries));
  return j;
}

std::vector<std::string> dataset_ids(const nlohmann::json& list) {
  std::vector<std::string> out;
  for (const auto& d : array_of(list, "dataset list")) {
    if (!d.is_string() || d.get_ref<const std::string&>().empty())
      throw Error(ErrorKind::protocol, "the archive's dataset list holds something that is not a dataset id");
    out.push_back(bounded(d.get<std::string>(), "dataset id"));
  }
  return out;
}

std::string next_token(const nlohmann::json& j) {
  const auto* v = detail::member(j, "nextPageToken");
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) throw Error(ErrorKind::protocol, "the archive's nextPageToken is not a string");
  return bounded(v->get<std::string>(), "page token");
}

File file_entry(const nlohmann::json& e, bool v1) {
  if (!e.is_object()) throw Error(ErrorKind::protocol, "the archive's file list holds something that is not a file");
  File f;
  f.id = bounded(detail::string_member(e, "fileId"), "file id");
  f.path = bounded(detail::string_member(e, "filePath"), "file path");
  if (f.path.empty() && v1) f.path = bounded(detail::string_member(e, "displayFileName"), "file name");
  if (f.id.empty() || f.path.empty()) throw Error(ErrorKind::protocol, "the archive listed a file without fileId or filePath");
  f.size = size_of(e, v1 ? "fileSize" : "size");
  f.decrypted_size = size_of(e, v1 ? "decryptedFileSize" : "decryptedSize");
  if (v1) {
    const std::string sum = detail::string_member(e, "decryptedFileChecksum");
    if (!sum.empty()) f.checksums.push_back({bounded(detail::string_member(e, "decryptedFileChecksumType"), "checksum type"), bounded(sum, "checksum")});
  } else if (const auto* sums = detail::member(e, "checksums"); sums != nullptr && sums->is_array()) {
    for (const auto& c : *sums) {
      if (f.checksums.size() == 8) break;
      const std::string type = detail::string_member(c, "type");
      const std::string value = detail::string_member(c, "checksum");
      if (!type.empty() && !value.empty()) f.checksums.push_back({bounded(type, "checksum type"), bounded(value, "checksum")});
    }
  }
  return f;
}

}  // namespace

std::string_view to_string(Api a) noexcept { return a == Api::v2 ? "v2" : "v1"; }

void to_json(nlohmann::json& j, const File& f) {
  nlohmann::json sums = nlohmann::json::array();
  for (const auto& c : f.checksums) sums.push_back({{"type", c.type}, {"checksum", c.value}});
  j = {{"fileId", f.id}, {"path", f.path}, {"size", f.size}, {"decryptedSize", f.decrypted_size}, {"checksums", sums}};
}

DatasetPage parse_datasets_v2(std::string_view body) {
  auto j = parse_body(body, "dataset list");
  const auto* list = detail::member(j, "datasets");
  if (list == nullptr) throw Error(ErrorKind::protocol, "the archive's dataset list has no \"datasets\"");
  return {dataset_ids(*list), next_token(j)};
}

FilePage parse_files_v2(std::string_view body) {
  auto j = parse_body(body, "file list");
  const auto* list = detail::member(j, "files");
  if (list == nullptr) throw Error(ErrorKind::protocol, "the archive's file list has no \"files\"");
  FilePage p;
  for (const auto& e : array_of(*list, "file list")) p.files.push_back(file_entry(e, false));
  p.next = next_token(j);
  return p;
}

std::vector<std::string> parse_datasets_v1(std::string_view body) { return dataset_ids(parse_body(body, "dataset list")); }

std::vector<File> parse_files_v1(std::string_view body) {
  std::vector<File> out;
  const auto list = parse_body(body, "file list");
  for (const auto& e : array_of(list, "file list")) out.push_back(file_entry(e, true));
  return out;
}

Client::Client(http::Client& http, std::string base_url, TokenFn token)
    : http_(http), base_(detail::api_base(std::move(base_url))), token_(std::move(token)) {}

ServiceInfo Client::service_info() { return fetch_service_info(http_, base_, "the archive"); }

http::Request Client::request(const std::string& path, std::chrono::seconds min_valid) {
  std::function<std::string()> token;
  // After a refusal, the next request asks for a token valid an hour, which makes the login refresh it.
  const auto wanted = std::max(min_valid, std::exchange(refresh_next_, std::chrono::seconds(0)));
  if (token_) token = [this, wanted] { return token_(wanted); };
  return detail::api_request(http::Method::get, base_, path, token);
}

bool Client::renew_token() {
  if (!token_) return false;
  // A token the archive refused although it looked valid: the next request asks for a fresh one.
  refresh_next_ = std::chrono::seconds(3600);
  return true;
}

http::Response Client::get(const std::string& path, std::string_view what) {
  auto r = http_.send(request(path));
  if (r.ok()) return r;
  if (r.status == 403) {
    try {
      http::throw_for_status(r, what);
    } catch (Error& e) {
      throw Error(ErrorKind::forbidden, std::string(e.what()) + " (the archive says 403 both when you have no access and when there is no such thing)",
                  "your passport may lack the visa for this dataset, or the name is wrong")
          .with_status(403)
          .with_remedy(Remedy::passport);
    }
  }
  http::throw_for_status(r, what);
}

Api Client::api() {
  if (api_) return *api_;
  auto r = http_.send(request("datasets?pageSize=1"));
  if (r.status == 404) {
    auto v1 = http_.send(request("metadata/datasets"));
    if (v1.status != 404) {
      api_ = Api::v1;
      return *api_;
    }
  }
  api_ = Api::v2;
  return *api_;
}

std::vector<std::string> Client::datasets() {
  if (api() == Api::v1) return parse_datasets_v1(get("metadata/datasets", "listing the archive's datasets").body);
  std::vector<std::string> out;
  std::string token;
  const auto deadline = std::chrono::steady_clock::now() + kMaxListTime;
  for (std::size_t page = 0;; ++page) {
    if (page == kMaxPages || std::chrono::steady_clock::now() > deadline)
      throw Error(ErrorKind::protocol, fmt::format("the archive's dataset list did not end within {} pages or {} s", kMaxPages, kMaxListTime.count()));
    throw_if_cancelled();
    std::string path = "datasets?pageSize=1000";
    if (!token.empty()) path += "&pageToken=" + percent_encode(token);
    auto p = parse_datasets_v2(get(path, "listing the archive's datasets").body);
    out.insert(out.end(), p.datasets.begin(), p.datasets.end());
    if (p.next.empty() || p.next == token) break;
    token = p.next;
  }
  return out;
}

std::vector<File> Client::files(const std::string& dataset, const std::string& prefix) {
  const std::string what = "listing the files of dataset " + dataset;
  if (api() == Api::v1) {
    auto all = parse_files_v1(get("metadata/datasets/" + percent_encode(dataset) + "/files", what).body);
    all.erase(std::remove_if(all.begin(), all.end(), [&](const File& f) { return f.path.rfind(prefix, 0) != 0; }), all.end());
    return all;
  }
  std::vector<File> out;
  std::string token;
  const auto deadline = std::chrono::steady_clock::now() + kMaxListTime;
  for (std::size_t page = 0;; ++page) {
    if (page == kMaxPages || std::chrono::steady_clock::now() > deadline)
      throw Error(ErrorKind::protocol, fmt::format("the file list of dataset {} did not end within {} pages or {} s", dataset, kMaxPages, kMaxListTime.count()));
    throw_if_cancelled();
    std::string path = "datasets/" + percent_encode(dataset) + "/files?pageSize=1000";
    if (!prefix.empty()) path += "&pathPrefix=" + percent_encode(prefix);
    if (!token.empty()) path += "&pageToken=" + percent_encode(token);
    auto p = parse_files_v2(get(path, what).body);
    for (auto& f : p.files)
      if (f.path.rfind(prefix, 0) == 0) out.push_back(std::move(f));  // a server that ignores the filter
    if (p.next.empty() || p.next == token) break;
    token = p.next;
  }
  return out;
}

std::vector<File> Client::select(const std::string& dataset, const Selection& s) {
  if (s.all()) return files(dataset);
  std::vector<File> out;
  std::set<std::string> seen;
  auto add = [&](File f) {
    if (seen.insert(f.id).second) out.push_back(std::move(f));
  };
  // Exact paths: v2 has a filter for them (the listing's prefix filter with the path, then exact match).
  for (const auto& p : s.paths) {
    std::size_t found = 0;
    for (auto& f : files(dataset, p))
      if (f.path == p) {
        add(std::move(f));
        ++found;
      }
    if (found == 0)
      throw Error(ErrorKind::not_found, fmt::format("dataset {} has no file {} (or you have no access to it)", dataset, p),
                  "list the dataset's files to see their paths");
  }
  for (const auto& prefix : s.prefixes) {
    auto got = files(dataset, prefix);
    if (got.empty())
      throw Error(ErrorKind::not_found, fmt::format("dataset {} has no file under {}", dataset, prefix),
                  "list the dataset's files to see their paths");
    for (auto& f : got) add(std::move(f));
  }
  return out;
}

}  // namespace impact::archive
