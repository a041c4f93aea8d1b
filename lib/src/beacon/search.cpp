// The federated Beacon search: metadata documents (cached), then one query per beacon, all in parallel on
// one http::Batch, each bounded by the per-beacon timeout; answers merged into one result.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "impact/beacon.hpp"
#include "impact/paths.hpp"
#include "impact/service_info.hpp"
#include "impact/url.hpp"
#include "json_fields.hpp"

namespace impact::beacon {

using nlohmann::json;

std::string_view to_string(Document d) noexcept {
  switch (d) {
    case Document::info: return "info";
    case Document::map: return "map";
    case Document::configuration: return "configuration";
    case Document::filtering_terms: return "filtering_terms";
  }
  return "info";
}

// ------------------------------------------------------------------ cache

namespace {

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::filesystem::path Cache::file(const std::string& base_url, Document d) const {
  std::string host = "beacon";
  if (auto u = Url::parse(base_url)) host = fmt::format("{}_{}", u->host, u->port);
  std::replace_if(host.begin(), host.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_'; }, '_');
  return dir_ / fmt::format("{}-{:016x}-{}.json", host, fnv1a(base_url), to_string(d));
}

std::optional<json> Cache::get(const std::string& base_url, Document d) const {
  try {
    const auto path = file(base_url, d);
    if (!std::filesystem::exists(path)) return std::nullopt;
    json j = impact::detail::parse_json(read_file(path));
    const auto age = now_seconds() - j.at("fetched").get<std::int64_t>();
    if (j.at("url").get<std::string>() != base_url || age < -60 || age >= ttl_.count()) return std::nullopt;
    return j.at("body");
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged or foreign cache file is a miss
  }
}

void Cache::put(const std::string& base_url, Document d, const json& body) const {
  try {
    ensure_private_dir(dir_);
    write_file_atomic(file(base_url, d), json{{"url", base_url}, {"fetched", now_seconds()}, {"body", body}}.dump());
  } catch (const std::exception&) {
    // The cache only saves requests; a read-only or full disk must not fail the search.
  }
}

// ------------------------------------------------------------------ documents

namespace {

http::Options batch_options(const Settings& s) {
  http::Options o = s.http;
  const auto ms = std::max<long long>(1, s.timeout.count());
  o.stall_seconds = std::max<long>(1, static_cast<long>(std::ceil(static_cast<double>(ms) / 1000.0)));
  o.connect_timeout_ms = std::min<long>(o.connect_timeout_ms, static_cast<long>(ms));
  o.total_timeout_ms = static_cast<long>(ms);  // a beacon that trickles bytes is cut off too
  o.retry.max_attempts = 1;  // a federated search answers now; a beacon that fails is reported, not retried
  return o;
}

http::Request request_for(const Target& t, std::string url) {
  http::Request r;
  r.url = std::move(url);
  r.headers.push_back({"Accept", "application/json"});
  if (!t.token.empty()) r.headers.push_back({"Authorization", "Bearer " + t.token});
  return r;
}

Error error_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err;
  } catch (const std::exception& ex) {
    return Error(ErrorKind::generic, ex.what());
  }
}

// The Error for a non-2xx answer, with the beacon's own message when it sent a beacon error body.
Error status_error(const http::Response& r, const Target& t) {
  std::string detail;
  try {
    if (auto m = error_message(impact::detail::parse_json(r.body))) detail = ": " + *m;
  } catch (const json::exception&) {
  }
  Error e(kind_for_status(r.status), fmt::format("beacon '{}' answered HTTP {}{}", t.name, r.status, detail));
  if (r.status == 401)
    e.with_hint(t.token.empty() ? "this beacon wants a login" : "your token was refused").with_remedy(Remedy::login);
  else if (r.status == 403)
    e.with_hint("you lack the permission (visa) this beacon asks for");
  e.with_status(r.status).with_url(r.url);
  return e;
}

}  // namespace

std::vector<Fetched> fetch_documents(const std::vector<Target>& targets, const std::vector<Document>& which,
                                     const Settings& settings) {
  std::vector<Fetched> out(targets.size());
  std::vector<std::pair<std::size_t, Document>> wanted;
  std::vector<http::Request> requests;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    for (auto d : which) {
      if (settings.cache) {
        if (auto hit = settings.cache->get(targets[i].url, d)) {
          out[i].docs[d] = std::move(*hit);
          continue;
        }
      }
      wanted.emplace_back(i, d);
      requests.push_back(request_for(targets[i], join_url(targets[i].url, to_string(d))));
    }
  }
  if (requests.empty()) return out;
  http::Batch batch(batch_options(settings), settings.max_parallel);
  auto outcomes = batch.run(std::move(requests));
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    const auto [i, d] = wanted[k];
    auto& f = out[i];
    auto& o = outcomes[k];
    if (o.error) {
      const Error e = error_of(o.error);
      if (e.kind() == ErrorKind::cancelled) throw e;
      if (!f.error) f.error = e;
      f.missing[d] = e.what();
      continue;
    }
    if (!o.response->ok()) {
      f.missing[d] = status_error(*o.response, targets[i]).what();
      continue;
    }
    try {
      json body = parse_json_body(*o.response, fmt::format("beacon '{}' /{}", targets[i].name, to_string(d)));
      json doc = body.is_object() && body.contains("response") ? body["response"] : body;
      if (settings.cache) settings.cache->put(targets[i].url, d, doc);
      f.docs[d] = std::move(doc);
    } catch (const Error& e) {
      f.missing[d] = e.what();
    }
  }
  return out;
}

std::vector<std::string> filter_ids(const json& terms) {
  std::vector<std::string> ids;
  const json* list = &terms;
  if (terms.is_object() && terms.contains("filteringTerms")) list = &terms["filteringTerms"];
  if (!list->is_array()) return ids;
  for (const auto& t : *list)
    if (const auto* id = detail::member(t, "id", json::value_t::string)) ids.push_back(id->get<std::string>());
  return ids;
}

std::string entry_url_from_map(const json& map, const EntryType& et) {
  if (!map.is_object() || !map.contains("endpointSets") || !map["endpointSets"].is_object()) return {};
  for (const auto& [key, set] : map["endpointSets"].items()) {
    const auto* root_member = detail::member(set, "rootUrl", json::value_t::string);
    if (root_member == nullptr) continue;
    const auto root = root_member->get<std::string>();
    const auto* type = detail::member(set, "entryType", json::value_t::string);
    const bool by_id = key == et.id || (type != nullptr && type->get<std::string>() == et.id);
    const bool by_path = root.size() > et.path.size() && root.compare(root.size() - et.path.size(), et.path.size(), et.path) == 0 &&
                         root[root.size() - et.path.size() - 1] == '/';
    if (by_id || by_path) return root;
  }
  return {};
}

// ------------------------------------------------------------------ search

std::size_t SearchResult::failed() const {
  return static_cast<std::size_t>(std::count_if(beacons.begin(), beacons.end(), [](const auto& b) { return b.error.has_value(); }));
}

namespace {

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

SearchResult search(const std::vector<Target>& targets, const Query& q, const Settings& settings) {
  const EntryType& et = entry_type(q.entry);
  q.variant.validate();
  SearchResult result;
  result.query = q;
  result.beacons.resize(targets.size());
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  // 1. What each beacon offers: its map (entry types and their URLs) and, for filters, its terms.
  std::vector<Document> docs = {Document::map};
  if (!q.filters.empty()) docs.push_back(Document::filtering_terms);
  auto fetched = fetch_documents(targets, docs, settings);

  std::vector<std::vector<std::string>> unknown(targets.size());  // filters the terms list does not have
  std::vector<std::string> urls(targets.size());
  std::vector<std::size_t> asked;
  std::vector<http::Request> requests;
  const std::string body = request_body(q).dump();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto& r = result.beacons[i];
    r.name = targets[i].name;
    r.url = targets[i].url;
    if (fetched[i].error) {  // it did not answer at all: do not wait for it a second time
      r.error = fetched[i].error;
      r.seconds = elapsed();
      continue;
    }
    if (auto m = fetched[i].docs.find(Document::map); m != fetched[i].docs.end()) {
      urls[i] = entry_url_from_map(m->second, et);
      if (urls[i].empty()) {
        r.supported = false;
        continue;
      }
    } else {
      urls[i] = join_url(targets[i].url, et.path);  // no /map: the conventional path
    }
    if (auto ft = fetched[i].docs.find(Document::filtering_terms); ft != fetched[i].docs.end()) {
      const auto ids = filter_ids(ft->second);
      for (const auto& f : q.filters)
        if (std::find(ids.begin(), ids.end(), f.id) == ids.end()) add_unique(unknown[i], f.id);
    }
    auto req = request_for(targets[i], urls[i]);
    req.method = http::Method::post;
    req.retry_safe = true;  // a query changes nothing on the server
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = body;
    asked.push_back(i);
    requests.push_back(std::move(req));
  }

  // 2. The queries, POST first; a beacon that refuses POST (405/501) is asked again with GET.
  http::Batch batch(batch_options(settings), settings.max_parallel);
  std::vector<std::size_t> get_again;
  auto settle = [&](std::size_t i, http::Outcome& o, const char* method) {
    auto& r = result.beacons[i];
    r.method = method;
    r.seconds = o.response ? o.response->timings.total : elapsed();
    if (o.error) {
      r.error = error_of(o.error);
      if (r.error->kind() == ErrorKind::cancelled) throw *r.error;
      return;
    }
    const auto& resp = *o.response;
    if (!resp.ok()) {
      if ((resp.status == 405 || resp.status == 501) && r.method == std::string("POST")) {
        get_again.push_back(i);
        return;
      }
      r.error = status_error(resp, targets[i]);
      return;
    }
    try {
      r.answer = parse_answer(parse_json_body(resp, fmt::format("beacon '{}'", r.name)), q);
      r.answered = true;
      for (const auto& f : unknown[i]) add_unique(r.answer.unknown_filters, f);
    } catch (const Error& e) {
      r.error = Error(e.kind(), fmt::format("beacon '{}': {}", r.name, e.what()), e.hint()).with_url(resp.url).with_remedy(e.remedy());
    }
  };
  auto outcomes = batch.run(std::move(requests));
  for (std::size_t k = 0; k < outcomes.size(); ++k) settle(asked[k], outcomes[k], "POST");

  if (!get_again.empty()) {
    std::vector<http::Request> gets;
    std::vector<std::size_t> which;
    for (auto i : get_again) {
      try {
        gets.push_back(request_for(targets[i], urls[i] + "?" + query_string(q)));
        which.push_back(i);
      } catch (const Error& e) {
        result.beacons[i].method = "GET";
        result.beacons[i].error =
            Error(e.kind(), fmt::format("beacon '{}' only answers GET: {}", targets[i].name, e.what()), e.hint()).with_remedy(e.remedy());
      }
    }
    auto again = batch.run(std::move(gets));
    for (std::size_t k = 0; k < again.size(); ++k) settle(which[k], again[k], "GET");
  }
  return result;
}

// ------------------------------------------------------------------ JSON

void to_json(json& j, const BeaconResult& r) {
  j = {{"name", r.name}, {"url", r.url}, {"answered", r.answered}, {"supported", r.supported},
       {"seconds", std::round(r.seconds * 1000) / 1000}};
  if (!r.method.empty()) j["method"] = r.method;
  if (r.answered) {
    const auto& a = r.answer;
    j["exists"] = a.exists;
    j["count"] = a.count ? json(*a.count) : json(nullptr);
    j["granularity"] = to_string(a.granularity);
    j["records"] = a.records;
    j["messages"] = a.messages;
    j["unknown_filters"] = a.unknown_filters;
    j["ignored_parameters"] = a.ignored_parameters;
  }
  if (r.error) {
    json e = {{"kind", to_string(r.error->kind())}, {"message", r.error->what()}};
    if (!r.error->hint().empty()) e["hint"] = r.error->hint();
    if (r.error->http_status()) e["status"] = *r.error->http_status();
    j["error"] = std::move(e);
  }
}

void to_json(json& j, const SearchResult& r) {
  std::size_t answered = 0;
  bool exists = false;
  std::optional<std::int64_t> count;
  for (const auto& b : r.beacons) {
    if (!b.answered) continue;
    ++answered;
    exists = exists || b.answer.exists;
    if (b.answer.count) count = count.value_or(0) + *b.answer.count;
  }
  j = {{"entry_type", r.query.entry},
       {"requested_granularity", to_string(r.query.granularity)},
       {"beacons", r.beacons},
       {"summary", {{"asked", r.beacons.size()}, {"answered", answered}, {"failed", r.failed()}, {"exists", exists},
                    {"count", count ? json(*count) : json(nullptr)}}}};
}

}  // namespace impact::beacon
