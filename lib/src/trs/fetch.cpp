// Fetching a workflow version's descriptor and relative files from a TRS registry into a folder: paths
// checked, every file written below a descriptor-held folder, atomically, after its checksum was verified.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fs/safe_dir.hpp"
#include "impact/error.hpp"
#include "impact/trs.hpp"

namespace impact::trs {
namespace {

std::string default_primary_name(const std::string& type) {
  if (type == "CWL") return "main.cwl";
  if (type == "WDL") return "main.wdl";
  if (type == "NFL") return "main.nf";
  if (type == "SMK") return "Snakefile";
  return "workflow.ga";
}

// The last component of a URL's path, when it is a usable file name.
std::string url_file_name(const std::string& url) {
  auto end = url.find_first_of("?#");
  std::string path = url.substr(0, end);
  auto slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  auto safe = safe_relative_path(name);
  return safe ? *safe : std::string();
}

void write_all(int fd, std::string_view data, const std::string& shown) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", shown, std::strerror(errno)));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0) throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", shown, std::strerror(errno)));
}

// Writes `content` to `rel` below `root`: NAME.impact-part first, renamed over NAME when complete.
void write_file(const SafeDir& root, const std::string& rel, std::string_view content) {
  const std::filesystem::path p(rel);
  const SafeDir folder = root.dir(p.parent_path(), true);
  const std::string name = p.filename().string();
  const std::string part = name + ".impact-part";
  folder.require_file_or_nothing(name);
  {
    Fd fd = folder.open_file(part, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    try {
      write_all(fd.get(), content, root.path_of(rel).string());
    } catch (...) {
      folder.remove(part);
      throw;
    }
  }
  folder.rename(part, name);
}

struct Item {
  std::string path, file_type, content;
  std::string verified;
};

}  // namespace

void to_json(nlohmann::json& j, const Fetched& f) {
  j = nlohmann::json{{"id", f.id}, {"version", f.version}, {"type", f.type}, {"primary", f.primary},
                     {"descriptor_checksum", f.descriptor_checksum}, {"notes", f.notes}};
  j["files"] = nlohmann::json::array();
  for (const auto& x : f.files)
    j["files"].push_back({{"path", x.path}, {"file_type", x.file_type}, {"size", x.size},
                          {"verified", x.verified}, {"sha256", x.sha256}});
}

Fetched fetch(Client& client, const std::string& id, const std::string& version, const std::string& type,
              const std::filesystem::path& dir, const FetchOptions& options) {
  Fetched out;
  out.id = id;
  out.version = version;
  out.type = type;

  // The primary descriptor first: it also tells a missing version or type apart from a missing /files.
  const FileWrapper primary = client.descriptor(id, version, type);
  if (!primary.content)
    throw Error(ErrorKind::protocol,
                fmt::format("TRS registry '{}' gives the descriptor of '{}:{}' only as a URL, not its content",
                            client.registry().name, id, version));
  const auto listed = client.files(id, version, type);

  std::vector<Item> items;
  std::vector<Checksum> primary_sums = primary.checksums;
  std::string primary_path;
  if (listed) {
    for (const auto& f : *listed)
      if (f.file_type == "PRIMARY_DESCRIPTOR") {
        primary_path = f.path;
        primary_sums.insert(primary_sums.end(), f.checksums.begin(), f.checksums.end());
        break;
      }
  }
  if (primary_path.empty()) primary_path = url_file_name(primary.url);
  if (primary_path.empty()) primary_path = default_primary_name(type);
  const auto safe_primary = safe_relative_path(primary_path);
  if (!safe_primary)
    throw Error(ErrorKind::protocol, fmt::format("TRS registry '{}' names the primary descriptor '{}', which is not a "
                                                 "safe relative path", client.registry().name, primary_path));
  const std::string what_primary = fmt::format("the descriptor {} of '{}:{}'", *safe_primary, id, version);
  items.push_back({*safe_primary, "PRIMARY_DESCRIPTOR", *primary.content, verify(*primary.content, primary_sums, what_primary)});

  std::uint64_t total = primary.content->size();
  if (listed) {
    for (const auto& f : *listed) {
      if (f.file_type == "PRIMARY_DESCRIPTOR" && f.path == primary_path) continue;
      const auto safe = safe_relative_path(f.path);
      if (!safe)
        throw Error(ErrorKind::protocol, fmt::format("TRS registry '{}' lists the file '{}', which is not a safe "
                                                     "relative path: nothing was written",
                                                     client.registry().name, f.path));
      bool dup = false;
      for (const auto& i : items) dup = dup || i.path == *safe;
      if (dup) {
        out.notes.push_back(fmt::format("{}: listed twice; fetched once", *safe));
        continue;
      }
      if (items.size() >= options.max_files)
        throw Error(ErrorKind::protocol, fmt::format("TRS registry '{}' lists more than {} files for '{}:{}'",
                                                     client.registry().name, options.max_files, id, version));
      FileWrapper w = client.descriptor(id, version, type, f.path);
      if (!w.content) {
        out.notes.push_back(fmt::format("{}: the registry gives only a URL for it; not fetched", *safe));
        continue;
      }
      total += w.content->size();
      if (total > options.max_total)
        throw Error(ErrorKind::protocol, fmt::format("the files of '{}:{}' exceed {} bytes", id, version, options.max_total));
      std::vector<Checksum> sums = w.checksums;
      sums.insert(sums.end(), f.checksums.begin(), f.checksums.end());
      const std::string what = fmt::format("the file {} of '{}:{}'", *safe, id, version);
      std::string verified = verify(*w.content, sums, what);
      items.push_back({*safe, f.file_type, std::move(*w.content), std::move(verified)});
    }
  }
  // A path that is both a file and a folder of another ("a" and "a/b") cannot be written.
  for (const auto& a : items)
    for (const auto& b : items)
      if (b.path.size() > a.path.size() && b.path.compare(0, a.path.size(), a.path) == 0 && b.path[a.path.size()] == '/')
        throw Error(ErrorKind::protocol, fmt::format("TRS registry '{}' lists '{}' both as a file and as a folder",
                                                     client.registry().name, a.path));

  // Everything checked: now write.
  const SafeDir root = SafeDir::open(dir, true);
  for (const auto& i : items) {
    write_file(root, i.path, i.content);
    FetchedFile ff;
    ff.path = i.path;
    ff.file_type = i.file_type;
    ff.size = i.content.size();
    ff.verified = i.verified;
    ff.sha256 = *digest(i.content, "sha-256");
    if (i.file_type == "PRIMARY_DESCRIPTOR") {
      out.primary = i.path;
      out.descriptor_checksum = "sha-256:" + ff.sha256;
    }
    out.files.push_back(std::move(ff));
  }
  return out;
}

}  // namespace impact::trs
