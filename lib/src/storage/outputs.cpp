// A WES run's outputs as objects in the profile's storage: which URLs in the outputs JSON name the storage,
// and the objects they stand for (named objects, and everything under named folders).
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/storage.hpp"
#include "impact/url.hpp"

namespace impact::storage {

namespace {

constexpr std::size_t kMaxNamedObjects = 10'000;  // HeadObject requests a run's outputs may cost
constexpr int kMaxDepth = 64;                     // nesting of the outputs JSON that is searched

// "scheme://..." or "file:..." (a URL of any kind), as opposed to a plain string value.
bool looks_like_url(std::string_view s) {
  if (s.rfind("file:", 0) == 0) return true;
  const auto sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(sep),
                     [](unsigned char c) { return std::isalnum(c) || c == '+' || c == '-' || c == '.'; });
}

std::string why_outside(std::string_view url) {
  if (url.rfind("file:", 0) == 0) return "a file on the WES server, not in the object storage";
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
    const auto u = Url::parse(url);
    return fmt::format("on {}, not the profile's object storage: not fetched with its keys", u ? u->origin() : "another host");
  }
  return "not in the profile's object storage";
}

// Walks the outputs JSON, collecting storage locations and the URLs it has to leave out.
class Walker {
 public:
  explicit Walker(std::string_view endpoint) : endpoint_(endpoint) {}
  RunOutputs out;

  void walk(const nlohmann::json& v, int depth = 0) {
    if (depth > kMaxDepth) return;
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (is_presigned_url(s)) presigned(s);
      else if (!take(s, false) && looks_like_url(s)) skip(s, why_outside(s));
    } else if (v.is_array()) {
      for (const auto& e : v) walk(e, depth + 1);
    } else if (v.is_object()) {
      const auto cls = v.find("class");
      const bool file = cls != v.end() && *cls == "File", dir = cls != v.end() && *cls == "Directory";
      if (file || dir) return walk_cwl(v, dir, depth);
      for (const auto& [k, e] : v.items()) walk(e, depth + 1);
    }
  }

 private:
  // A CWL File or Directory: its location (or url) when that names the storage; else a Directory's listing.
  void walk_cwl(const nlohmann::json& v, bool dir, int depth) {
    std::string shown;
    bool taken = false;
    for (const char* field : {"location", "url", "path"}) {
      const auto it = v.find(field);
      if (it == v.end() || !it->is_string()) continue;
      const auto& s = it->get_ref<const std::string&>();
      if (std::string_view(field) != "path" && !dir && is_presigned_url(s)) {
        presigned(s);
        taken = true;
        break;
      }
      if (std::string_view(field) != "path" && take(s, dir)) {
        taken = true;
        break;
      }
      if (shown.empty()) shown = s;
    }
    if (const auto sec = v.find("secondaryFiles"); sec != v.end()) walk(*sec, depth + 1);
    if (taken) return;
    if (const auto listing = v.find("listing"); dir && listing != v.end() && listing->is_array()) return walk(*listing, depth + 1);
    if (!shown.empty()) skip(shown, why_outside(shown));
  }

  // Records `url` when it names the storage (as a folder when `folder`); false when it does not.
  bool take(const std::string& url, bool folder) {
    std::optional<Location> loc;
    try {
      loc = storage_location(url, endpoint_);
    } catch (const Error& e) {
      skip(url, e.what());
      return true;
    }
    if (!loc) return false;
    if (folder && !loc->key.empty() && loc->key.back() != '/') loc->key += '/';
    if (seen_.insert(loc->bucket + '/' + loc->key).second) out.objects.push_back({*loc, url});
    return true;
  }
  void presigned(const std::string& url) {
    if (seen_.insert('\n' + url).second) out.presigned.push_back(url);
  }
  void skip(const std::string& url, std::string reason) {
    if (seen_.insert('\n' + url).second) out.skipped.push_back({url, std::move(reason), ""});
  }

  std::string_view endpoint_;
  std::set<std::string> seen_;
};

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void to_json(nlohmann::json& j, const SkippedOutput& s) { j = {{"url", s.url}, {"reason", s.reason}}; }

std::optional<Location> storage_location(std::string_view url, std::string_view endpoint) {
  if (auto loc = parse_s3_uri(url)) return loc;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return std::nullopt;
  const auto u = Url::parse(url), e = Url::parse(endpoint);
  if (!u || !e || !same_origin(*u, *e) || u->path.size() < 2) return std::nullopt;
  try {
    return parse_s3_uri("s3://" + percent_decode(std::string_view(u->path).substr(1)));
  } catch (const Error&) {
    return std::nullopt;  // a path on the storage's host that is no bucket (a console page, ...)
  }
}

RunOutputs find_output_objects(const nlohmann::json& outputs, std::string_view endpoint) {
  Walker w(endpoint);
  w.walk(outputs);
  return std::move(w.out);
}

std::string common_folder(const std::vector<std::string>& keys) {
  std::optional<std::string> common;
  for (std::string_view name : keys) {
    if (!name.empty() && name.back() == '/') name.remove_suffix(1);
    const auto cut = name.rfind('/');
    const std::string_view parent = cut == std::string_view::npos ? std::string_view() : name.substr(0, cut + 1);
    if (!common) {
      common = std::string(parent);
      continue;
    }
    std::size_t n = 0;
    while (n < common->size() && n < parent.size() && (*common)[n] == parent[n]) ++n;
    common->resize(n);
  }
  if (!common) return {};
  const auto cut = common->rfind('/');
  return cut == std::string::npos ? std::string() : common->substr(0, cut + 1);
}

ResolvedOutputs resolve_outputs(S3Client& s3, RunOutputs& found, const std::string& preferred) {
  ResolvedOutputs res;
  if (found.objects.empty()) return res;
  const bool in_preferred = std::any_of(found.objects.begin(), found.objects.end(),
                                        [&](const OutputRef& o) { return o.where.bucket == preferred; });
  res.bucket = in_preferred ? preferred : found.objects.front().where.bucket;
  std::vector<const OutputRef*> mine;
  std::vector<std::string> names;
  for (const auto& o : found.objects) {
    if (o.where.bucket != res.bucket) {
      found.skipped.push_back({o.url, fmt::format("in bucket {}, not {}", o.where.bucket, res.bucket),
                               fmt::format("s3://{}/{}", o.where.bucket, o.where.key)});
      continue;
    }
    mine.push_back(&o);
    names.push_back(o.where.key);
  }
  if (names.size() > kMaxNamedObjects)
    throw Error(ErrorKind::protocol, fmt::format("the run's outputs name {} objects, more than {}", names.size(), kMaxNamedObjects),
                "download the folder that holds them instead")
        .with_remedy(Remedy::results_download_url)
        .with_fact("url", fmt::format("s3://{}/{}", res.bucket, common_folder(names)));
  res.prefix = common_folder(names);
  std::set<std::string> have;
  auto add = [&](ObjectInfo o) {
    if (have.insert(o.key).second) res.objects.push_back(std::move(o));
  };
  for (const OutputRef* o : mine) {
    const std::string& key = o->where.key;
    if (key.empty() || key.back() == '/') {
      auto listed = s3.list(res.bucket, key);
      if (listed.empty()) found.skipped.push_back({o->url, "nothing under this folder in the storage", ""});
      for (auto& ob : listed) add(std::move(ob));
      continue;
    }
    try {
      add(s3.head(res.bucket, key));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
      found.skipped.push_back({o->url, "no such object in the storage", ""});
    }
  }
  std::sort(res.objects.begin(), res.objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return res;
}

PresignedOutputs resolve_presigned(const std::vector<std::string>& urls, const http::Options& http,
                                   std::vector<SkippedOutput>& skipped) {
  PresignedOutputs res;
  if (urls.size() > kMaxNamedObjects)
    throw Error(ErrorKind::protocol, fmt::format("the run's outputs name {} presigned URLs, more than {}", urls.size(), kMaxNamedObjects));
  std::vector<std::string> keys;
  for (const auto& url : urls) {
    const auto u = Url::parse(url);
    std::string key = u ? percent_decode(u->path) : std::string();
    while (!key.empty() && key.front() == '/') key.erase(0, 1);
    if (key.empty() || key.back() == '/') {
      skipped.push_back({url, "a presigned URL that names no object", ""});
      continue;
    }
    if (!res.urls.emplace(key, url).second) {
      skipped.push_back({url, "another output has the same path", ""});
      continue;
    }
    keys.push_back(std::move(key));
  }
  std::optional<Error> first;
  for (const auto& key : keys) {
    const std::string& url = res.urls.at(key);
    try {
      ObjectInfo o = probe_presigned(url, http);
      o.key = key;
      res.objects.push_back(std::move(o));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      if (!first) first = e;
      skipped.push_back({url, e.what(), ""});
    }
  }
  if (res.objects.empty() && first) throw *first;
  std::vector<std::string> names;
  for (const auto& o : res.objects) names.push_back(o.key);
  res.prefix = common_folder(names);
  std::sort(res.objects.begin(), res.objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return res;
}

}  // namespace impact::storage
