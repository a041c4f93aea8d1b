// htsget: regions, service-info, tickets and data: URIs; pure functions over text and JSON.
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <set>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/redact.hpp"
#include "impact/url.hpp"
#include "internal.hpp"
#include "json_fields.hpp"
#include "text.hpp"

namespace impact::htsget {
using nlohmann::json;

namespace {

[[noreturn]] void bad_region(std::string_view text, std::string_view why) {
  throw Error(ErrorKind::usage, fmt::format("region '{}': {}", redact(text), why),
              "regions are written as samtools writes them: CHR, CHR:START-END or CHR:START- (1-based, inclusive)");
}

// A 1-based position with optional thousands commas; nullopt when `s` is not one.
std::optional<std::uint64_t> position(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  bool digit = false;
  for (char c : s) {
    if (c == ',') continue;
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (std::uint64_t{1} << 40)) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
    digit = true;
  }
  if (!digit) return std::nullopt;
  return v;
}

// Whether `s` looks like a range part ("1000", "1000-2000", "1000-", "-2000").
bool looks_like_range(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == ',' || c == '-'; }) &&
         std::count(s.begin(), s.end(), '-') <= 1 && s != "-";
}

void apply_range(Region& r, std::string_view text, std::string_view spec) {
  const auto dash = spec.find('-');
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = dash == std::string_view::npos ? std::string_view{} : spec.substr(dash + 1);
  if (!a.empty()) {
    auto s = position(a);
    if (!s) bad_region(text, "the start is not a number");
    if (*s == 0) bad_region(text, "positions start at 1");
    r.start = *s - 1;
  }
  if (!b.empty()) {
    auto e = position(b);
    if (!e) bad_region(text, "the end is not a number");
    if (*e == 0) bad_region(text, "positions start at 1");
    if (r.start && *e <= *r.start) bad_region(text, "the end comes before the start");
    r.end = *e;
  }
}

bool valid_header_name(std::string_view n) {
  if (n.empty()) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool valid_header_value(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) throw Error(ErrorKind::protocol, "a data: URI has a malformed %-escape");
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) throw Error(ErrorKind::protocol, "a data: URI has a malformed %-escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

std::string_view to_string(Endpoint e) noexcept { return e == Endpoint::reads ? "reads" : "variants"; }

Region parse_region(std::string_view text) {
  Region r;
  if (text.empty()) bad_region(text, "it is empty");
  if (text.size() > 1024) bad_region(text.substr(0, 40), "it is too long");
  if (text.front() == '{') {
    const auto close = text.find('}');
    if (close == std::string_view::npos || close == 1) bad_region(text, "a '{' without a name and '}'");
    r.reference = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !looks_like_range(rest.substr(1))) bad_region(text, "expected :START-END after the name");
      apply_range(r, text, rest.substr(1));
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos && looks_like_range(text.substr(colon + 1))) {
    r.reference = std::string(text.substr(0, colon));
    if (r.reference.empty()) bad_region(text, "no reference name");
    apply_range(r, text, text.substr(colon + 1));
  } else {
    r.reference = std::string(text);
  }
  if (std::any_of(r.reference.begin(), r.reference.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20; }))
    bad_region(text, "the reference name holds a space or a control character");
  return r;
}

std::string to_string(const Region& r) {
  std::string name = r.reference.find(':') != std::string::npos ? "{" + r.reference + "}" : r.reference;
  if (!r.start && !r.end) return name;
  std::string out = name + ":" + (r.start ? std::to_string(*r.start + 1) : std::string()) + "-";
  if (r.end) out += std::to_string(*r.end);
  return out;
}

EndpointInfo parse_endpoint_info(const json& doc, std::string_view origin) {
  if (!doc.is_object()) throw Error(ErrorKind::protocol, fmt::format("{}: service-info is not a JSON object", origin));
  EndpointInfo e;
  try {
    e.service = parse_service_info(doc, origin);
  } catch (const Error&) {
    // htsget-rs and others leave GA4GH fields empty or out: keep what is there.
    e.service.id = detail::string_member(doc, "id");
    e.service.name = detail::string_member(doc, "name");
    e.service.version = detail::string_member(doc, "version");
  }
  if (const json* h = detail::member(doc, "htsget", json::value_t::object)) {
    e.datatype = detail::string_member(*h, "datatype");
    if (const json* f = detail::member(*h, "formats", json::value_t::array)) {
      for (const auto& v : *f) {
        if (!v.is_string() || e.formats.size() >= 32) continue;
        std::string s = v.get<std::string>().substr(0, 32);
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        e.formats.push_back(s);
      }
    }
    e.fields_effective = detail::bool_member(*h, "fieldsParametersEffective");
    e.tags_effective = detail::bool_member(*h, "tagsParametersEffective");
  }
  return e;
}

std::string decode_data_uri(std::string_view uri) {
  if (uri.size() < 5 || !text::iequals(uri.substr(0, 5), "data:")) throw Error(ErrorKind::protocol, "not a data: URI");
  const auto comma = uri.find(',');
  if (comma == std::string_view::npos) throw Error(ErrorKind::protocol, "a data: URI without ','");
  const std::string_view meta = uri.substr(5, comma - 5);
  const std::string_view payload = uri.substr(comma + 1);
  const bool base64 = meta.size() >= 7 && text::iequals(meta.substr(meta.size() - 7), ";base64");
  if (!base64) return percent_decode(payload);
  std::string text = payload.find('%') != std::string_view::npos ? percent_decode(payload) : std::string(payload);
  std::string out;
  if (!crypt4gh::detail::base64_decode(text, out)) throw Error(ErrorKind::protocol, "a data: URI holds malformed base64");
  return out;
}

Ticket parse_ticket(const json& doc, std::string_view origin) {
  auto fail = [&](std::string_view why) -> Error {
    return Error(ErrorKind::protocol, fmt::format("{}: the htsget ticket {}", origin, why));
  };
  const json* h = doc.is_object() ? detail::member(doc, "htsget", json::value_t::object) : nullptr;
  if (!h) throw fail("has no \"htsget\" object");
  Ticket t;
  t.format = detail::string_member(*h, "format").substr(0, 32);
  std::transform(t.format.begin(), t.format.end(), t.format.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  t.md5 = detail::string_member(*h, "md5").substr(0, 64);
  const json* urls = detail::member(*h, "urls", json::value_t::array);
  if (!urls) throw fail("has no \"urls\" array");
  if (urls->size() > kMaxBlocks) throw fail(fmt::format("lists {} blocks (at most {} are accepted)", urls->size(), kMaxBlocks));
  std::size_t data_bytes = 0;
  for (std::size_t i = 0; i < urls->size(); ++i) {
    const json& u = (*urls)[i];
    if (!u.is_object()) throw fail(fmt::format("block {} is not an object", i + 1));
    const json* url = detail::member(u, "url", json::value_t::string);
    if (!url) throw fail(fmt::format("block {} has no url", i + 1));
    const std::string& s = url->get_ref<const std::string&>();
    Block b;
    b.data_class = detail::string_member(u, "class").substr(0, 16);
    if (s.size() >= 5 && text::iequals(std::string_view(s).substr(0, 5), "data:")) {
      if (s.size() > kMaxDataBytes * 4 / 3 + 1024) throw fail(fmt::format("block {} is a data: URI over {} MiB", i + 1, kMaxDataBytes >> 20));
      try {
        b.data = decode_data_uri(s);
      } catch (const Error& e) {
        throw fail(fmt::format("block {}: {}", i + 1, e.what()));
      }
      data_bytes += b.data->size();
      if (data_bytes > kMaxDataBytes) throw fail(fmt::format("holds more than {} MiB of inline data", kMaxDataBytes >> 20));
      t.blocks.push_back(std::move(b));
      continue;
    }
    if (s.size() > kMaxUrlBytes) throw fail(fmt::format("block {} has a URL over {} KiB", i + 1, kMaxUrlBytes >> 10));
    const auto parsed = Url::parse(s);
    if (!parsed || (parsed->scheme != "https" && parsed->scheme != "http"))
      throw fail(fmt::format("block {} has a URL that is neither http(s) nor data: ({})", i + 1, redact_url(s).substr(0, 200)));
    b.url = s;
    if (const json* hd = detail::member(u, "headers")) {
      if (!hd->is_object() && !hd->is_null()) throw fail(fmt::format("block {} has headers that are not an object", i + 1));
      if (hd->is_object()) {
        if (hd->size() > kMaxHeadersPerBlock) throw fail(fmt::format("block {} lists more than {} headers", i + 1, kMaxHeadersPerBlock));
        for (const auto& [name, value] : hd->items()) {
          std::string v = value.is_string() ? value.get<std::string>() : value.is_number() ? value.dump() : std::string("\x01");
          if (!valid_header_name(name) || !valid_header_value(v) || name.size() + v.size() > kMaxHeaderBytes)
            throw fail(fmt::format("block {} has a header that cannot be sent ({})", i + 1, redact(name).substr(0, 64)));
          if (is_sensitive_header(name)) {
            remember_secret(v);
            if (auto sp = v.find(' '); sp != std::string::npos) remember_secret(v.substr(sp + 1));
          }
          if (text::iequals(name, "range")) b.range = parse_byte_range(v);
          b.headers.push_back({name, std::move(v)});
        }
      }
    }
    t.blocks.push_back(std::move(b));
  }
  return t;
}

std::optional<std::uint64_t> parse_byte_offset(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

std::optional<transfer::Range> parse_byte_range(std::string_view v) {
  v = text::trim(v);
  if (v.size() < 7 || !text::iequals(v.substr(0, 6), "bytes=")) return std::nullopt;
  v.remove_prefix(6);
  const auto dash = v.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == v.size()) return std::nullopt;
  auto a = parse_byte_offset(v.substr(0, dash)), b = parse_byte_offset(v.substr(dash + 1));
  if (!a || !b || *b < *a) return std::nullopt;
  return transfer::Range{*a, *b};
}

std::string ticket_url(const std::string& base_url, const Query& q, const Region* region) {
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + "/" + std::string(to_string(q.endpoint)) + "/" + percent_encode(q.id, /*keep_slash=*/true);
  std::vector<std::string> params;
  auto add = [&](std::string_view k, const std::string& v) { params.push_back(std::string(k) + "=" + percent_encode(v)); };
  if (!q.format.empty()) add("format", q.format);
  if (q.header_only) add("class", "header");
  if (region) {
    add("referenceName", region->reference);
    if (region->start) add("start", std::to_string(*region->start));
    if (region->end) add("end", std::to_string(*region->end));
  }
  if (!q.fields.empty()) add("fields", join(q.fields));
  if (!q.tags.empty()) add("tags", join(q.tags));
  if (!q.notags.empty()) add("notags", join(q.notags));
  if (q.public_key) add("encryptionScheme", "C4GH");
  for (std::size_t i = 0; i < params.size(); ++i) url += (i == 0 ? "?" : "&") + params[i];
  return url;
}

json post_body(const Query& q) {
  json body = json::object();
  if (!q.format.empty()) body["format"] = q.format;
  if (q.header_only) body["class"] = "header";
  if (!q.fields.empty()) body["fields"] = q.fields;
  if (!q.tags.empty()) body["tags"] = q.tags;
  if (!q.notags.empty()) body["notags"] = q.notags;
  if (q.public_key) body["encryptionScheme"] = "C4GH";
  if (!q.regions.empty()) {
    json regions = json::array();
    for (const auto& r : q.regions) {
      json o{{"referenceName", r.reference}};
      if (r.start) o["start"] = *r.start;
      if (r.end) o["end"] = *r.end;
      regions.push_back(std::move(o));
    }
    body["regions"] = std::move(regions);
  }
  return body;
}

std::vector<Block> assemble_order(const std::vector<Ticket>& given) {
  if (given.size() == 1) return given[0].blocks;
  // File order: by the first byte range of a body block (tickets without one last, in the order given).
  std::vector<const Ticket*> tickets;
  for (const auto& t : given) tickets.push_back(&t);
  auto first_range = [](const Ticket* t) {
    for (const auto& b : t->blocks)
      if (b.range && b.data_class != "header") return b.range->first;
    return std::numeric_limits<std::uint64_t>::max();
  };
  std::stable_sort(tickets.begin(), tickets.end(), [&](const Ticket* a, const Ticket* b) { return first_range(a) < first_range(b); });
  std::map<std::string, std::uint64_t> covered;  // URL -> one past the last byte already written from it
  std::set<std::string> inline_seen;             // data: blocks already written (records the server recompressed)
  auto take = [&](std::vector<Block>& out, Block b, bool last) {
    if (b.data) {
      // The same inline block again (the records sharing the header's last block, an EOF marker) is left out,
      // but for the very last block: the file must end with its EOF marker.
      if (!inline_seen.insert(*b.data).second && !last) return;
    }
    if (b.range) {
      auto it = covered.find(b.url);
      if (it != covered.end() && b.range->first < it->second) {
        if (b.range->second < it->second) return;  // all of it written already
        b.range->first = it->second;
        for (auto& h : b.headers)
          if (text::iequals(h.name, "range")) h.value = fmt::format("bytes={}-{}", b.range->first, b.range->second);
      }
      auto& end = covered[b.url];
      end = std::max(end, b.range->second + 1);
    }
    out.push_back(std::move(b));
  };
  std::vector<Block> out;
  for (std::size_t k = 0; k < tickets.size(); ++k) {
    const Ticket& t = *tickets[k];
    if (k > 0 && !t.format.empty() && !tickets[0]->format.empty() && t.format != tickets[0]->format)
      throw Error(ErrorKind::protocol, fmt::format("the htsget server answered {} for one region and {} for another",
                                                   tickets[0]->format, t.format));
    if (k == 0) {
      for (const auto& b : t.blocks) take(out, b, false);
      continue;
    }
    const bool marked = std::any_of(t.blocks.begin(), t.blocks.end(), [](const Block& b) { return !b.data_class.empty(); });
    if (!marked)
      throw Error(ErrorKind::protocol,
                  "the htsget server does not mark the header blocks of its tickets, so the answers for several "
                  "regions cannot be joined into one file",
                  "ask for one region at a time");
    for (std::size_t i = 0; i < t.blocks.size(); ++i)
      if (t.blocks[i].data_class != "header") take(out, t.blocks[i], k + 1 == tickets.size() && i + 1 == t.blocks.size());
  }
  return out;
}

}  // namespace impact::htsget
