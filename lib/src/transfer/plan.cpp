// Planning one source: its path below the destination (refused when unsafe), whether an identical file is
// already there, how it is split into parts, and what an earlier run left to resume.
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/cancel.hpp"
#include "json_fields.hpp"
#include "transfer/job.hpp"

namespace impact::transfer {
namespace fs = std::filesystem;

namespace {

constexpr const char* kVersionXattr = "user.impact.etag";
// Segments impact's earlier DRS engine fetched large objects in ("<file>.impact-part.K", 64 MiB each).
constexpr std::uint64_t kOldSegment = 64u << 20;

std::string xattr_version(int fd) {
  char buf[256];
  const ssize_t n = ::fgetxattr(fd, kVersionXattr, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// The checksum a file already there is compared with: the strongest the source names.
std::optional<std::pair<std::string, std::string>> strongest(const Checksums& sums) {
  for (std::string_view want : {"sha512", "sha256", "sha1", "md5", "crc32c", "crc32"})
    for (const auto& [algo, value] : sums)
      if (!value.empty() && canonical_algorithm(algo) == want) return std::pair(std::string(want), value);
  return std::nullopt;
}

// Whether the file `rel` already holds this source: same size, and the version recorded at download time
// or the same checksum. A link there is never followed (stat says no).
bool identical(const SafeDir& root, const fs::path& rel, const Source& src, Result& r) {
  const auto st = root.stat(rel);
  if (!src.size || !st || !S_ISREG(st->st_mode) || static_cast<std::uint64_t>(st->st_size) != *src.size) return false;
  try {
    Fd fd = root.open_file(rel, O_RDONLY);
    if (!src.version.empty() && xattr_version(fd.get()) == src.version) return true;
    const auto sum = strongest(src.checksums);
    if (!sum) return false;
    Hasher h({sum->first});
    hash_file(fd.get(), *src.size, h);
    if (!digest_matches(h.final()[sum->first], sum->second)) return false;
    r.verified = "size," + sum->first;
    return true;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    return false;
  }
}

std::uint64_t choose_part_size(std::uint64_t size, const Options& o) {
  if (o.part_size) return size > o.part_size ? o.part_size : 0;
  if (size <= 16 * kMiB) return 0;
  // Small parts finish roughly in order, so the trailing hash keeps up and an interrupted run loses little;
  // at most ~1000 parts per object.
  const std::uint64_t part = std::max<std::uint64_t>(8 * kMiB, (size + 999) / 1000);
  return (part + kMiB - 1) / kMiB * kMiB;
}

// The parts a previous run finished, from "<file>.impact-state" when it describes this version and size.
std::set<std::size_t> load_state(Job& j) {
  std::set<std::size_t> done;
  try {
    auto s = impact::detail::parse_json(read_small(*j.root, j.state, 4u << 20));
    const auto st = j.root->stat(j.temp);
    if (s.at("etag") == j.src.version && s.at("size") == j.size && st && S_ISREG(st->st_mode) &&
        static_cast<std::uint64_t>(st->st_size) == j.size && s.at("part_size").get<std::uint64_t>() > 0) {
      j.part_size = s.at("part_size");
      for (const auto& i : s.at("done")) done.insert(i.get<std::size_t>());
    }
  } catch (...) {
    done.clear();  // no state, or a state for another version of the object: start over
  }
  return done;
}

// The length of a "<file>.impact-part" without a state: one request cut off, or a file impact's earlier
// DRS engine appended to. Its bytes are the start of the object (0 when there is no such prefix).
std::uint64_t prefix_on_disk(const Job& j) {
  const auto st = j.root->stat(j.temp);
  if (!st || !S_ISREG(st->st_mode)) return 0;
  const auto n = static_cast<std::uint64_t>(st->st_size);
  return n < j.size ? n : 0;  // a full-size file without a state may be a sparse one: not trusted
}

// Removes the "<file>.impact-part.K" segments impact's earlier DRS engine left (it no longer reads them):
// segment 0, which that engine always started first, says whether there are any.
void remove_old_segments(const Job& j) {
  const auto segment = [&](std::uint64_t k) { return fs::path(j.temp.string() + "." + std::to_string(k)); };
  if (!j.root->stat(segment(0))) return;
  for (std::uint64_t k = 0; k <= std::max<std::uint64_t>(j.size / kOldSegment, 16); ++k) j.root->remove(segment(k));
}

// A grid of parts, keeping a previous run's finished ones (recorded, or a prefix on disk).
void plan_grid(Job& j, std::uint64_t part_size) {
  std::set<std::size_t> done = load_state(j);
  const std::uint64_t prefix = done.empty() && !j.root->stat(j.state) ? prefix_on_disk(j) : 0;
  if (done.empty()) j.part_size = part_size;
  for (std::uint64_t off = 0; off < j.size; off += j.part_size) {
    Part p;
    p.first = off;
    p.last = std::min(j.size, off + j.part_size) - 1;
    p.done = done.count(j.parts.size()) != 0 || p.last < prefix;
    if (p.done) p.received = p.length();
    j.parts.push_back(p);
  }
  j.result.resumed = std::any_of(j.parts.begin(), j.parts.end(), [](const Part& p) { return p.done; });
}

// One request; or, after a prefix an earlier run left, one request for the rest.
void plan_single(Job& j) {
  const std::uint64_t prefix = j.size_known ? prefix_on_disk(j) : 0;
  if (prefix > 0) {
    Part kept;
    kept.last = prefix - 1;
    kept.received = prefix;
    kept.done = true;
    j.parts.push_back(kept);
    j.result.resumed = true;
  }
  Part rest;
  rest.first = prefix;
  rest.last = j.size_known ? (j.size ? j.size - 1 : 0) : ~std::uint64_t{0} - 1;
  rest.done = j.size_known && j.size == 0;
  j.parts.push_back(rest);
}

void plan_parts(Job& j, const Options& options) {
  if (!j.root->stat(j.state)) remove_old_segments(j);
  if (const auto ps = j.size_known ? choose_part_size(j.size, options) : 0) {
    plan_grid(j, ps);
    if (j.src.more_checksums) j.src.more_checksums(j.src.checksums);
  } else {
    plan_single(j);
  }
  for (const auto& [algo, value] : j.src.checksums) {
    const auto c = canonical_algorithm(algo);
    if (!c.empty() && !value.empty() && std::find(j.algos.begin(), j.algos.end(), c) == j.algos.end()) j.algos.push_back(c);
  }
}

void set_failed(Result& r, const Error& e) {
  r.status = Result::Status::failed;
  r.error = e.what();
  r.hint = e.hint();
  r.error_kind = e.kind();
}

}  // namespace

std::unique_ptr<Job> plan_job(Source src, std::size_t index, std::optional<SafeDir>& root, const Options& options,
                              Result& result) {
  result.id = src.id;
  result.size = src.size.value_or(0);
  auto j = std::make_unique<Job>();
  try {
    j->rel = check_path(src.path.string());
    result.path = j->rel.string();
    if (!root) root.emplace(SafeDir::open(options.dest, true));
    root->require_file_or_nothing(j->rel);  // a link at the final name or a folder on the way: refused
    if (identical(*root, j->rel, src, result)) {
      result.status = Result::Status::skipped;
      return nullptr;
    }
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    set_failed(result, e);
    return nullptr;
  }
  j->index = index;
  j->root = &*root;
  j->temp = j->rel.string() + std::string(kPartSuffix);
  j->state = j->rel.string() + std::string(kStateSuffix);
  j->size = src.size.value_or(0);
  j->size_known = src.size.has_value();
  j->src = std::move(src);
  j->result = result;
  try {
    plan_parts(*j, options);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    set_failed(result, e);
    return nullptr;
  }
  return j;
}

fs::path check_path(std::string_view rel, std::string_view name) {
  auto refuse = [&](std::string_view why) -> fs::path {
    std::string shown;
    for (char c : name.empty() ? rel : name) shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    throw Error(ErrorKind::protocol, fmt::format("refusing the name '{}': {}", shown, why),
                "it cannot be written safely under the destination folder");
  };
  if (rel.empty()) return refuse("it names no file");
  if (rel.front() == '/') return refuse("it is an absolute path");
  for (unsigned char c : rel)
    if (c < 0x20 || c == 0x7f) return refuse("it contains a control character or NUL");
  if (rel.find('\\') != std::string_view::npos) return refuse("it contains a backslash");
  static constexpr std::array<std::string_view, 22> reserved = {
      "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
      "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"};
  for (std::string_view rest = rel;;) {
    const auto slash = rest.find('/');
    const auto seg = rest.substr(0, slash);
    if (seg.empty()) return refuse("it has an empty path segment ('//')");
    if (seg == "..") return refuse("it contains '..'");
    if (seg == ".") return refuse("it contains '.' as a path segment");
    if (seg.size() > 255) return refuse("a path segment is longer than 255 bytes");
    if (is_temporary_name(seg)) return refuse("it is named like impact's own temporary files");
    const auto stem = seg.substr(0, seg.find('.'));
    for (auto r : reserved)
      if (stem.size() == r.size() && strncasecmp(stem.data(), r.data(), r.size()) == 0)
        return refuse("it uses a reserved device name (" + std::string(r) + ")");
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return fs::path(std::string(rel));
}

}  // namespace impact::transfer
