// DRS objects as sources of the download engine (impact/transfer.hpp): URIs resolved to objects (bundles
// expanded into folders), each object's name, checksum and access URL (asked for in bulk where offered, and
// asked again once when the URL is refused as expired); the engine does the transfer, resume and checks.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "impact/archive.hpp"
#include "impact/drs.hpp"
#include "impact/error.hpp"
#include "impact/transfer.hpp"

namespace impact::drs {
namespace {

namespace fs = std::filesystem;

struct Plan {
  std::string uri;
  Location where;
  std::optional<Object> object;
  fs::path rel;  // below the download folder: the object's name, else its id (checked by the engine)
  std::exception_ptr error;
  AccessUrl access;
  std::string access_id;  // set when `access` came from the access endpoint (it can be asked again)
  bool transfer = false;
  std::shared_ptr<const crypt4gh::Header> c4gh;  // a Crypt4GH stream decrypted on the way (its header)
  std::uint64_t header_length = 0;
};

template <class... A>
std::exception_ptr failure(ErrorKind k, fmt::format_string<A...> f, A&&... a) {
  return std::make_exception_ptr(Error(k, fmt::format(f, std::forward<A>(a)...)));
}

// The local name of an object: its name, else its id. Unsafe names are refused by the engine, not rewritten.
fs::path local_name(const std::string& name, const std::string& id) { return name.empty() ? id : name; }

// Runs `f`, recording an Error or a filesystem failure as the plan's error (Ctrl-C still ends everything).
template <class F>
void capture(Plan& p, F f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    p.error = std::current_exception();
  } catch (const fs::filesystem_error& e) {
    p.error = failure(ErrorKind::io, "{}: {}", p.uri, e.what());
  }
}

// Sorted usable access methods: available ones, https before http before anything else.
std::vector<const AccessMethod*> usable_methods(const Object& o) {
  std::vector<const AccessMethod*> out;
  for (const auto& m : o.access_methods)
    if (m.available && (m.access_url || !m.access_id.empty()) && (m.type == "https" || m.type == "http")) out.push_back(&m);
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->type == "https" && b->type != "https"; });
  return out;
}

// A request for an access URL with the headers it lists (and nothing else: no token ever goes there).
http::Request access_request(const AccessUrl& a) {
  http::Request req;
  req.url = a.url;
  req.server_url = true;
  for (const auto& h : a.headers)
    if (auto colon = h.find(':'); colon != std::string::npos && colon > 0) {
      std::string_view v = std::string_view(h).substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      req.headers.push_back({h.substr(0, colon), std::string(v)});
    }
  return req;
}

void expand_bundle(Client& c, const std::vector<ContentsObject>& items, const fs::path& rel, const Location& parent,
                   int depth, std::vector<Plan>& plans) {
  for (const auto& item : items) {
    Plan p;
    p.rel = rel / local_name(item.name, item.id);
    try {
      if (depth > 16) throw Error(ErrorKind::protocol, "bundle nested too deeply");
      if (!item.drs_uri.empty()) {
        p.uri = item.drs_uri.front();
        p.where = c.locate(parse_uri(p.uri));
      } else {
        if (item.id.empty()) throw Error(ErrorKind::protocol, "a bundle member has neither id nor drs_uri");
        p.where = parent;
        p.where.id = item.id;
        p.uri = item.id;
        p.where.uri = item.id;
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      p.error = std::current_exception();
    }
    if (!item.contents.empty() && !p.error) {
      expand_bundle(c, item.contents, p.rel, p.where, depth + 1, plans);
      continue;
    }
    plans.push_back(std::move(p));
  }
}

std::vector<Plan> plan(Client& c, const std::vector<std::string>& uris) {
  std::vector<Plan> top(uris.size());
  std::vector<Location> locs;
  std::vector<std::size_t> located;
  for (std::size_t i = 0; i < uris.size(); ++i) {
    top[i].uri = uris[i];
    try {
      top[i].where = c.locate(parse_uri(uris[i]));
      locs.push_back(top[i].where);
      located.push_back(i);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      top[i].error = std::current_exception();
    }
  }
  auto fetched = c.objects(locs, true);
  std::vector<Plan> plans;
  for (std::size_t k = 0; k < fetched.size(); ++k) {
    Plan& p = top[located[k]];
    p.error = fetched[k].error;
    p.object = std::move(fetched[k].object);
  }
  for (auto& p : top) {
    if (p.object) p.rel = local_name(p.object->name, p.object->id);
    if (p.object && p.object->bundle) expand_bundle(c, p.object->contents, p.rel, p.where, 0, plans);
    else plans.push_back(std::move(p));
  }
  // Bundle members are fetched now, all at once (bulk where the server offers it).
  std::vector<Location> more;
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (!plans[i].object && !plans[i].error) {
      more.push_back(plans[i].where);
      idx.push_back(i);
    }
  auto members = c.objects(more, false);
  for (std::size_t k = 0; k < members.size(); ++k) {
    Plan& p = plans[idx[k]];
    p.error = members[k].error;
    p.object = std::move(members[k].object);
    if (p.object && p.object->bundle)
      p.error = failure(ErrorKind::protocol, "{}: a bundle inside a bundle was not expanded by the server", p.uri);
  }
  return plans;
}

std::string offered(const std::vector<std::string>& types) {
  return types.empty() ? std::string("none") : fmt::format("{}", fmt::join(types, ", "));
}

// Refuses an object with no checksum impact can verify (unless allowed) and picks its access method.
void choose_access(Plan& p, DownloadResult& r, const DownloadOptions& opt) {
  const Object& o = *p.object;
  if (!verifiable_checksum(o.checksums) && !opt.allow_unverified) {
    std::vector<std::string> types;
    for (const auto& k : o.checksums) types.push_back(k.type);
    r.no_checksum = true;
    throw Error(ErrorKind::protocol,
                fmt::format("{}: the DRS object has no checksum impact can verify (offered: {}); not downloaded, so "
                            "that no unverified file gets its name",
                            p.uri, offered(types)),
                "ask the data provider to publish a sha-256 or md5 checksum");
  }
  const auto methods = usable_methods(o);
  if (methods.empty()) {
    std::vector<std::string> types;
    for (const auto& m : o.access_methods) types.push_back(m.type + (m.available ? "" : " (unavailable)"));
    throw Error(ErrorKind::protocol, fmt::format("{}: no access method impact can use (offered: {})", p.uri, offered(types)));
  }
  if (methods.front()->access_url) p.access = *methods.front()->access_url;
  else p.access_id = methods.front()->access_id;
  p.transfer = true;
}

// Names each file (one name for one object), chooses access methods, then gets the access URLs still
// missing (bulk where offered).
void prepare(Client& c, std::vector<Plan>& plans, std::vector<DownloadResult>& results, const DownloadOptions& opt) {
  std::set<fs::path> taken;
  std::vector<Client::AccessRequest> access;
  std::vector<std::size_t> access_idx;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    Plan& p = plans[i];
    if (!p.object) continue;
    results[i].object_id = p.object->id;
    results[i].size = p.object->size;
    results[i].path = p.rel.string();
    capture(p, [&] {
      if (!taken.insert(p.rel).second)
        throw Error(ErrorKind::usage, fmt::format("{}: another object of this download is also named {}", p.uri, p.rel.string()),
                    "download them into separate folders");
      choose_access(p, results[i], opt);
    });
    if (p.transfer && !p.access_id.empty()) {
      access.push_back({p.where, p.access_id});
      access_idx.push_back(i);
    }
  }
  auto urls = c.access_urls(access);
  for (std::size_t k = 0; k < urls.size(); ++k) {
    Plan& p = plans[access_idx[k]];
    if (urls[k].url) p.access = *urls[k].url;
    else {
      p.error = urls[k].error;
      p.transfer = false;
    }
  }
}

// A plan as the engine's source: the object's strongest checksum, fetched from its access URL (renewed once
// through the access endpoint when refused).
transfer::Source source_for(Client& c, Plan& p) {
  const Object& o = *p.object;
  transfer::Source s;
  s.id = p.uri;
  s.path = p.rel;
  s.size = o.size;
  if (auto sum = verifiable_checksum(o.checksums)) {
    s.checksums[sum->type] = sum->checksum;
    s.version = sum->type + ":" + sum->checksum;
  }
  s.request = [&p](std::optional<transfer::Range> range) {
    http::Request req = access_request(p.access);
    if (range) req.headers.push_back({"Range", fmt::format("bytes={}-{}", range->first, range->second)});
    return req;
  };
  s.renew = [&c, &p] {
    if (p.access_id.empty()) return false;
    auto urls = c.access_urls({{p.where, p.access_id}});
    if (urls.at(0).error) std::rethrow_exception(urls.at(0).error);
    p.access = *urls.at(0).url;
    return true;
  };
  return s;
}

// With a key to decrypt with: whether the object is a Crypt4GH stream for it (its first bytes read once), and
// then the source gives the plaintext: its ranges map to whole encrypted segments past the header, decrypted
// on the fly. Checked by size and by each segment's MAC (the object's checksums are of the encrypted bytes).
void decrypting(Client& c, transfer::Source& s, Plan& p, const DownloadOptions& opt) {
  if (!opt.decrypt_with) return;
  http::Client http(c.settings().http);
  std::string header;
  auto h = archive::read_stream_header(
      [&](std::size_t want) {
        http::Request req = access_request(p.access);
        req.headers.push_back({"Range", fmt::format("bytes=0-{}", want - 1)});
        auto r = http.send(std::move(req));
        if (!r.ok()) http::throw_for_status(r, "reading the start of " + p.uri);
        if (r.status == 200 && r.body.size() > want) r.body.resize(want);
        return std::move(r.body);
      },
      *opt.decrypt_with, p.uri, &header);
  if (!h) return;
  const std::uint64_t size = *s.size;
  const auto plain = size >= header.size() ? archive::plaintext_size(size - header.size()) : std::nullopt;
  if (!plain)
    throw Error(ErrorKind::protocol, fmt::format("{}: {} bytes are not a Crypt4GH header and whole segments", p.uri, size));
  p.c4gh = h;
  p.header_length = header.size();
  const std::uint64_t body = size - header.size();
  if (p.rel.extension() == ".c4gh") p.rel.replace_extension();
  s.path = p.rel;
  s.size = *plain;
  s.checksums.clear();
  s.version = "c4gh:" + s.version;
  s.request = [&p, body](std::optional<transfer::Range> range) {
    http::Request req = access_request(p.access);
    const std::uint64_t h0 = p.header_length;
    if (range) {
      const auto enc = archive::segments_range(*range, body);
      req.headers.push_back({"Range", fmt::format("bytes={}-{}", h0 + enc.first, h0 + enc.second)});
    } else {
      req.headers.push_back({"Range", fmt::format("bytes={}-", h0)});
    }
    return req;
  };
  s.filter = [&p, plain](std::optional<transfer::Range> range) -> std::unique_ptr<transfer::Filter> {
    const std::uint64_t first = range ? range->first : 0;
    const std::uint64_t length = range ? range->second - range->first + 1 : *plain;
    return archive::decrypting_filter(p.c4gh, first / crypt4gh::segment_size, first % crypt4gh::segment_size, length);
  };
}

void set_error(DownloadResult& r, std::exception_ptr ep) {
  r.status = DownloadResult::Status::failed;
  try {
    std::rethrow_exception(ep);
  } catch (const Error& e) {
    r.error = e.what();
    r.hint = e.hint();
    r.error_kind = e.kind();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
}

}  // namespace

void to_json(nlohmann::json& j, const DownloadResult& r) {
  transfer::to_json(j, static_cast<const transfer::Result&>(r));
  j["uri"] = r.id;
  j["id"] = r.object_id;
}

std::vector<DownloadResult> download(Client& c, const std::vector<std::string>& uris, const DownloadOptions& opt,
                                     transfer::Observer* observer) {
  std::vector<std::string> unique;  // the same URI twice is one download
  for (const auto& u : uris)
    if (std::find(unique.begin(), unique.end(), u) == unique.end()) unique.push_back(u);
  std::vector<Plan> plans = plan(c, unique);
  std::vector<DownloadResult> results(plans.size());
  for (std::size_t i = 0; i < plans.size(); ++i) results[i].id = plans[i].uri;
  prepare(c, plans, results, opt);
  std::vector<transfer::Source> sources;
  std::vector<std::size_t> index;  // source -> plan
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].error || !plans[i].transfer) {
      set_error(results[i], plans[i].error ? plans[i].error : failure(ErrorKind::protocol, "{}: not downloaded", plans[i].uri));
      if (observer) observer->on_item(results[i]);
      continue;
    }
    try {
      transfer::Source s = source_for(c, plans[i]);
      decrypting(c, s, plans[i], opt);
      sources.push_back(std::move(s));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      set_error(results[i], std::current_exception());
      if (observer) observer->on_item(results[i]);
      continue;
    }
    index.push_back(i);
  }
  transfer::Options t;
  t.dest = opt.dest;
  t.parallel = opt.parallel;
  t.part_size = opt.part_size;
  auto done = transfer::download(std::move(sources), c.settings().http, t, observer);
  for (std::size_t k = 0; k < index.size(); ++k) {
    DownloadResult& r = results[index[k]];
    static_cast<transfer::Result&>(r) = std::move(done.results[k]);
    if (plans[index[k]].c4gh && r.status != transfer::Result::Status::failed) r.verified = "size,crypt4gh";
  }
  return results;
}

}  // namespace impact::drs
