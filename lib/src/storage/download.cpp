// S3 objects and presigned URLs as sources of the download engine (impact/transfer.hpp): each object's
// request (signed, or the presigned URL), its ETag (the version: resume state, If-Match, skipping identical
// files; the MD5 of a single-part upload), and its x-amz-checksum-* (from HeadObject or the response).
#include <fnmatch.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/error.hpp"
#include "impact/storage.hpp"
#include "impact/transfer.hpp"

namespace impact::storage {
namespace fs = std::filesystem;

namespace {

bool is_md5_etag(std::string_view etag) {
  return etag.size() == 32 && etag.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool matches(const std::vector<std::string>& globs, const std::string& rel) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) { return ::fnmatch(g.c_str(), rel.c_str(), 0) == 0; });
}

// A composite checksum is a checksum of the parts' checksums ("...-N"): it cannot be computed from the file.
bool is_composite(std::string_view value) {
  const auto dash = value.rfind('-');
  return dash != std::string_view::npos && dash + 1 < value.size() &&
         value.find_first_not_of("0123456789", dash + 1) == std::string_view::npos;
}

// x-amz-checksum-<algo> headers as the engine's checksums; a composite one is declared with no value (noted,
// not checked). With `full_only`, only a declared full-object checksum (x-amz-checksum-type: FULL_OBJECT).
transfer::Checksums amz_checksums(const http::Headers& headers, bool full_only = false) {
  constexpr std::string_view kType = "x-amz-checksum-type";
  const auto type = [&](const char* t) {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const http::Header& h) { return h.name == kType && strcasecmp(h.value.c_str(), t) == 0; });
  };
  transfer::Checksums out;
  if (full_only && !type("FULL_OBJECT")) return out;
  const bool composite = type("COMPOSITE");
  for (const auto& h : checksum_headers(headers)) {
    if (h.name == kType) continue;
    out[h.name.substr(std::strlen("x-amz-checksum-"))] = composite || is_composite(h.value) ? "" : h.value;
  }
  return out;
}

std::string unquoted_etag(const http::Response& r) {
  std::string e(r.header("ETag").value_or(""));
  if (e.size() >= 2 && e.front() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

// What a response to a GET of `o` says: S3 errors as clear ones, a changed ETag, the checksums it declares.
transfer::Checksums inspect(const ObjectInfo& o, const http::Response& r, bool whole) {
  if (r.status == 412) throw Error(ErrorKind::protocol, "the object changed during the download", "run the command again");
  if (!r.ok()) throw_s3_error(r, "downloading " + o.key);
  const std::string etag = unquoted_etag(r);
  if (!etag.empty() && !o.etag.empty() && etag != o.etag)
    throw Error(ErrorKind::protocol, "the object changed since it was listed (ETag differs)", "run the command again");
  return amz_checksums(r.headers, !whole);
}

transfer::Source source_for(const ObjectInfo& o, fs::path rel, const RequestFactory& make_request, const DownloadOptions& opt) {
  transfer::Source s;
  s.id = o.key;
  s.path = std::move(rel);
  s.size = o.size;
  s.version = o.etag;
  if (is_md5_etag(o.etag)) s.checksums["md5"] = o.etag;
  for (auto& [algo, value] : amz_checksums(o.checksums)) s.checksums[algo] = value;
  s.request = [o, make = &make_request](std::optional<transfer::Range> range) {
    http::Request r = (*make)(o, range);
    if (range && !o.etag.empty()) r.headers.push_back({"If-Match", "\"" + o.etag + "\""});
    return r;
  };
  s.inspect = [o](const http::Response& r, bool whole) { return inspect(o, r, whole); };
  // For an object fetched in ranged parts whose listing names a checksum: HeadObject gives it.
  if (opt.full_checksum && !o.checksum_algorithm.empty() && o.checksums.empty())
    s.more_checksums = [obj = o, f = opt.full_checksum](transfer::Checksums& sums) mutable {
      f(obj);
      for (auto& [algo, value] : amz_checksums(obj.checksums)) sums[algo] = value;
    };
  return s;
}

FileResult refused(const ObjectInfo& o, const Error& e) {
  FileResult r;
  r.id = o.key;
  r.size = o.size;
  r.status = FileResult::Status::failed;
  r.error = e.what();
  r.hint = e.hint();
  r.error_kind = e.kind();
  return r;
}

}  // namespace

void to_json(nlohmann::json& j, const FileResult& f) {
  transfer::to_json(j, static_cast<const transfer::Result&>(f));
  j["key"] = f.id;
}

fs::path safe_relative_path(std::string_view key, std::string_view prefix) {
  std::string_view rel = key;
  if (!prefix.empty() && key.rfind(prefix, 0) == 0) {
    // Strip the prefix up to its last '/', so "runs/r1/" and "runs/r1/out.txt" both keep the file name.
    const auto cut = prefix.back() == '/' ? prefix.size() : prefix.rfind('/') + 1;
    rel = key.substr(prefix.rfind('/') == std::string_view::npos && prefix.back() != '/' ? 0 : cut);
  }
  return transfer::check_path(rel, key);
}

namespace {

// The engine's sources for `objects` (folder markers, and paths the filters leave out, dropped); a key that
// cannot be a local path is handed to `refuse`.
std::vector<transfer::Source> sources_for(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                                          const RequestFactory& make_request, const DownloadOptions& options,
                                          const std::function<void(FileResult)>& refuse) {
  std::vector<transfer::Source> sources;
  for (const auto& o : objects) {
    if (!o.key.empty() && o.key.back() == '/' && o.size == 0) continue;  // a "folder" marker, not a file
    fs::path rel;
    try {
      rel = safe_relative_path(o.key, prefix);
    } catch (const Error& e) {
      refuse(refused(o, e));
      continue;
    }
    if (!options.include.empty() && !matches(options.include, rel.string())) continue;
    if (matches(options.exclude, rel.string())) continue;
    sources.push_back(source_for(o, std::move(rel), make_request, options));
  }
  return sources;
}

transfer::Options engine_options(const DownloadOptions& options) {
  transfer::Options t;
  t.dest = options.dest;
  t.parallel = options.parallel;
  t.part_size = options.part_size;
  return t;
}

// Passes the engine's events on, keeping each result when asked to.
class Keeper final : public transfer::Observer {
 public:
  Keeper(transfer::Observer* inner, std::vector<FileResult>* files) : inner_(inner), files_(files) {}
  void on_plan(std::size_t items, std::uint64_t bytes) override {
    if (inner_) inner_->on_plan(items, bytes);
  }
  void on_bytes(std::uint64_t n) override {
    if (inner_) inner_->on_bytes(n);
  }
  void on_rewind(std::uint64_t n) override {
    if (inner_) inner_->on_rewind(n);
  }
  void on_item(const transfer::Result& r) override {
    if (files_) files_->push_back(FileResult{r});
    if (inner_) inner_->on_item(r);
  }

 private:
  transfer::Observer* inner_;
  std::vector<FileResult>* files_;
};

}  // namespace

DownloadSummary download(const std::vector<ObjectInfo>& objects, const std::string& prefix,
                         const RequestFactory& make_request, const http::Options& http_options,
                         const DownloadOptions& options, transfer::Observer* observer) {
  DownloadSummary summary;
  auto sources = sources_for(objects, prefix, make_request, options, [&](FileResult f) {
    ++summary.tally[static_cast<int>(FileResult::Status::failed)];
    summary.files.push_back(std::move(f));
    if (observer) observer->on_item(summary.files.back());
  });
  auto done = transfer::download(std::move(sources), http_options, engine_options(options), observer);
  for (auto& r : done.results) summary.files.push_back(FileResult{std::move(r)});
  for (int s = 0; s < 3; ++s) summary.tally[s] += done.tally[s];
  summary.bytes = done.bytes;
  summary.seconds = done.seconds;
  return summary;
}

DownloadSummary download(ObjectPages pages, const std::string& prefix, const RequestFactory& make_request,
                         const http::Options& http_options, const DownloadOptions& options,
                         transfer::Observer* observer) {
  DownloadSummary summary;
  Keeper keeper(observer, options.keep_files ? &summary.files : nullptr);
  transfer::SourceStream next = [&]() -> std::optional<std::vector<transfer::Source>> {
    auto page = pages();
    if (!page) return std::nullopt;
    return sources_for(*page, prefix, make_request, options, [&](const FileResult& f) {
      ++summary.tally[static_cast<int>(FileResult::Status::failed)];
      keeper.on_item(f);
    });
  };
  auto done = transfer::download(std::move(next), http_options, engine_options(options), &keeper);
  for (int s = 0; s < 3; ++s) summary.tally[s] += done.tally[s];
  std::sort(summary.files.begin(), summary.files.end(), [](const FileResult& a, const FileResult& b) { return a.id < b.id; });
  summary.bytes = done.bytes;
  summary.seconds = done.seconds;
  return summary;
}

}  // namespace impact::storage
