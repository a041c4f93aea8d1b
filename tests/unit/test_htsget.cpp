// htsget: regions, tickets, data: URIs, and the assembly of blocks against the loopback server.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "client_fixture.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "temp_dir.hpp"

using namespace impact;
using namespace impact::test;
using nlohmann::json;

namespace {

std::string content(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

// Serves `data` with Range support (206 + Content-Range) for a Range header, else 200 with all of it.
Reply ranged(const std::string& data, const SeenRequest& r) {
  auto it = r.headers.find("range");
  if (it == r.headers.end()) return reply(200, data);
  auto spec = htsget::parse_byte_range(it->second);
  REQUIRE(spec);
  const auto last = std::min<std::uint64_t>(spec->second, data.size() - 1);
  const std::string body = data.substr(spec->first, last - spec->first + 1);
  return reply(206, body,
               "Content-Range: bytes " + std::to_string(spec->first) + "-" + std::to_string(last) + "/" +
                   std::to_string(data.size()) + "\r\n");
}

json block(const std::string& url, json headers = json::object(), const std::string& cls = "") {
  json b{{"url", url}};
  if (!headers.empty()) b["headers"] = std::move(headers);
  if (!cls.empty()) b["class"] = cls;
  return b;
}

std::string range(std::uint64_t a, std::uint64_t b) { return "bytes=" + std::to_string(a) + "-" + std::to_string(b); }

struct Collected {
  std::string bytes;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view b) { bytes.append(b); };
  }
};

}  // namespace

TEST_CASE("htsget regions: samtools' 1-based inclusive form becomes 0-based half-open") {
  auto r = htsget::parse_region("chr1:1000-2000");
  CHECK(r.reference == "chr1");
  CHECK(r.start == 999u);
  CHECK(r.end == 2000u);
  r = htsget::parse_region("chr1");
  CHECK(r.reference == "chr1");
  CHECK_FALSE(r.start);
  CHECK_FALSE(r.end);
  r = htsget::parse_region("chr1:1000-");
  CHECK(r.start == 999u);
  CHECK_FALSE(r.end);
  r = htsget::parse_region("chr1:1000");
  CHECK(r.start == 999u);
  CHECK_FALSE(r.end);
  r = htsget::parse_region("chr1:1,000-2,000");
  CHECK(r.start == 999u);
  CHECK(r.end == 2000u);
  r = htsget::parse_region("chrUn:KI270");  // the part after ':' is not a range: all of it is the name
  CHECK(r.reference == "chrUn:KI270");
  r = htsget::parse_region("chr1:-500");
  CHECK_FALSE(r.start);
  CHECK(r.end == 500u);
  CHECK(htsget::to_string(r) == "chr1:-500");
  r = htsget::parse_region("{HLA:1}:5-9");
  CHECK(r.reference == "HLA:1");
  CHECK(r.start == 4u);
  CHECK(r.end == 9u);
  CHECK(htsget::to_string(htsget::parse_region("chr2:5-10")) == "chr2:5-10");
  CHECK(htsget::to_string(htsget::parse_region("1:1-1")) == "1:1-1");

  for (const char* bad : {"", "chr1:0-5", "chr1:10-5", ":1-5", "chr 1", "{x:1-2", "{a b}:1-2", "{}"}) {
    CAPTURE(bad);
    try {
      htsget::parse_region(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }
}

TEST_CASE("htsget ticket requests: GET query and POST body") {
  htsget::Query q;
  q.endpoint = htsget::Endpoint::reads;
  q.id = "data/NA 12878";
  q.format = "BAM";
  q.header_only = false;
  q.fields = {"QNAME", "POS"};
  q.notags = {"OQ"};
  auto r = htsget::parse_region("chr1:1-100");
  CHECK(htsget::ticket_url("https://h.example/", q, &r) ==
        "https://h.example/reads/data/NA%2012878?format=BAM&referenceName=chr1&start=0&end=100&fields=QNAME%2CPOS&notags=OQ");
  q.public_key = "PEM";
  q.header_only = true;
  CHECK(htsget::ticket_url("https://h.example", q, nullptr) ==
        "https://h.example/reads/data/NA%2012878?format=BAM&class=header&fields=QNAME%2CPOS&notags=OQ&encryptionScheme=C4GH");
  q.regions = {htsget::parse_region("chr1:1-100"), htsget::parse_region("chr2")};
  json body = htsget::post_body(q);
  CHECK(body["format"] == "BAM");
  CHECK(body["class"] == "header");
  CHECK(body["regions"] == json::parse(R"([{"referenceName":"chr1","start":0,"end":100},{"referenceName":"chr2"}])"));
  CHECK(body["fields"] == json::array({"QNAME", "POS"}));
  CHECK(body["encryptionScheme"] == "C4GH");
  CHECK(htsget::base_url_of("http://h:1/api/reads/") == "http://h:1/api");
  CHECK(htsget::base_url_of("http://h:1/api/variants") == "http://h:1/api");
  CHECK(htsget::base_url_of("http://h:1/readsx") == "http://h:1/readsx");
}

TEST_CASE("htsget data: URIs, base64 and percent-encoded") {
  CHECK(htsget::decode_data_uri("data:application/vnd.ga4gh.bam;base64,SGVsbG8sIFdvcmxkIQ==") == "Hello, World!");
  CHECK(htsget::decode_data_uri("data:;base64,QkFNAQ==") == std::string("BAM\x01"));
  CHECK(htsget::decode_data_uri("data:,a%20b%00c") == std::string("a b\0c", 5));
  CHECK(htsget::decode_data_uri("DATA:text/plain,plain") == "plain");
  CHECK_THROWS_AS(htsget::decode_data_uri("data:;base64,@@@"), Error);
  CHECK_THROWS_AS(htsget::decode_data_uri("data:,bad%2"), Error);
  CHECK_THROWS_AS(htsget::decode_data_uri("data:nocomma"), Error);
}

TEST_CASE("htsget tickets are parsed with bounds and unsafe blocks refused") {
  json t{{"htsget",
          {{"format", "bam"},
           {"md5", "abc"},
           {"urls",
            {block("data:;base64,QkFNAQ==", json::object(), "header"),
             block("https://data.example/f.bam", {{"Range", "bytes=10-19"}, {"Authorization", "Bearer ticket-secret-123"}}, "body")}}}}};
  auto ticket = htsget::parse_ticket(t, "test");
  CHECK(ticket.format == "BAM");
  REQUIRE(ticket.blocks.size() == 2);
  CHECK(ticket.blocks[0].data == std::string("BAM\x01"));
  CHECK(ticket.blocks[0].data_class == "header");
  CHECK(ticket.blocks[1].range == transfer::Range{10, 19});
  CHECK(ticket.blocks[1].headers.size() == 2);

  auto refused = [](json doc) {
    try {
      htsget::parse_ticket(doc, "test");
      return false;
    } catch (const Error& e) {
      return e.kind() == ErrorKind::protocol;
    }
  };
  CHECK(refused(json::object()));
  CHECK(refused(json{{"htsget", {{"format", "BAM"}}}}));
  CHECK(refused(json{{"htsget", {{"urls", {block("file:///etc/passwd")}}}}}));
  CHECK(refused(json{{"htsget", {{"urls", {block("ftp://x.example/a")}}}}}));
  CHECK(refused(json{{"htsget", {{"urls", {block("https://x.example/a", {{"X-A", "v\r\nInjected: 1"}})}}}}}));
  CHECK(refused(json{{"htsget", {{"urls", {block("https://x.example/a", {{"Bad Name", "v"}})}}}}}));
  CHECK(refused(json{{"htsget", {{"urls", {block("data:;base64,!!!")}}}}}));
  json many = json::object();
  for (int i = 0; i < 65; ++i) many["X-H" + std::to_string(i)] = "v";
  CHECK(refused(json{{"htsget", {{"urls", {block("https://x.example/a", many)}}}}}));
  // Other Range forms are kept as headers, with no range to split.
  auto open = htsget::parse_ticket(json{{"htsget", {{"urls", {block("https://x.example/a", {{"Range", "bytes=5-"}})}}}}}, "t");
  CHECK_FALSE(open.blocks[0].range);
}

TEST_CASE("htsget tickets of several regions: the header blocks of all but the first are left out") {
  htsget::Ticket a, b;
  a.format = b.format = "BAM";
  htsget::Block h, body1, body2;
  h.data = "H";
  h.data_class = "header";
  body1.data = "1";
  body1.data_class = "body";
  body2.data = "2";
  body2.data_class = "body";
  a.blocks = {h, body1};
  b.blocks = {h, body2};
  auto order = htsget::assemble_order({a, b});
  REQUIRE(order.size() == 3);
  CHECK(*order[0].data == "H");
  CHECK(*order[1].data == "1");
  CHECK(*order[2].data == "2");
  b.blocks[0].data_class.clear();
  b.blocks[1].data_class.clear();
  CHECK_THROWS_AS(htsget::assemble_order({a, b}), Error);

  // Neighbouring regions share compressed blocks: what an earlier ticket covers is not written again, and
  // tickets go in file order whatever the order of the regions.
  auto ranged_block = [](std::uint64_t first, std::uint64_t last) {
    htsget::Block blk;
    blk.url = "https://data.example/f.bam";
    blk.data_class = "body";
    blk.range = transfer::Range{first, last};
    blk.headers = {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}, {"X-T", "t"}};
    return blk;
  };
  htsget::Ticket later, earlier;
  earlier.blocks = {h, ranged_block(100, 199), ranged_block(300, 399)};
  later.blocks = {h, ranged_block(350, 499), ranged_block(320, 340)};
  order = htsget::assemble_order({later, earlier});
  REQUIRE(order.size() == 4);
  CHECK(*order[0].data == "H");
  CHECK(order[1].range == transfer::Range{100, 199});
  CHECK(order[2].range == transfer::Range{300, 399});
  CHECK(order[3].range == transfer::Range{400, 499});
  CHECK(order[3].headers[0].value == "bytes=400-499");
  CHECK(order[3].headers[1].value == "t");
}

TEST_CASE("htsget fetch: blocks in parallel, written in ticket order, with exactly their headers") {
  const std::string data = content(300'000);
  std::mutex m;
  std::vector<SeenRequest> seen;
  MiniServer server([&](const SeenRequest& r) {
    {
      std::lock_guard l(m);
      seen.push_back(r);
    }
    // The first block is answered last-ish: later blocks finish first and must wait for it.
    if (r.target == "/f?slow=1") std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return ranged(data, r);
  });
  json t{{"htsget",
          {{"format", "BAM"},
           {"urls",
            {block("data:;base64,QkFNAQ=="),
             block(server.url("/f?slow=1"), {{"Range", range(0, 999)}, {"X-Block", "one"}}),
             block(server.url("/f"), {{"Range", range(1000, 249'999)}, {"Authorization", "Bearer block-token-abc"}}),
             block(server.url("/f"), {{"Range", range(250'000, 299'999)}}),
             block("data:,tail")}}}}};
  auto ticket = htsget::parse_ticket(t, "test");
  htsget::FetchOptions o;
  o.part_size = 64u << 10;  // the 249 000-byte block goes in 4 sub-ranges
  Collected out;
  auto summary = htsget::fetch(ticket.blocks, fast(), o, out.sink());
  CHECK(out.bytes == std::string("BAM\x01") + data + "tail");
  CHECK(summary.blocks == 5);
  CHECK(summary.bytes == out.bytes.size());
  CHECK(summary.requests == 1 + 4 + 1);
  for (const auto& r : seen) {
    CAPTURE(r.target);
    const bool first = r.target == "/f?slow=1";
    CHECK((r.headers.count("x-block") == 1) == first);
    const auto auth = r.headers.find("authorization");
    if (auth != r.headers.end()) {
      CHECK(auth->second == "Bearer block-token-abc");
      auto rr = htsget::parse_byte_range(r.headers.at("range"));
      REQUIRE(rr);
      CHECK(rr->first >= 1000);
      CHECK(rr->second <= 249'999);
    }
  }
  // Only the block whose ticket lists Authorization carried one.
  int with_auth = 0;
  for (const auto& r : seen) with_auth += r.headers.count("authorization") ? 1 : 0;
  CHECK(with_auth == 4);
}

TEST_CASE("htsget client: the user's token goes to the ticket server only, never to a block on the same origin") {
  const std::string data = content(5000);
  std::mutex m;
  std::vector<SeenRequest> blocks;
  MiniServer* self = nullptr;
  MiniServer server([&](const SeenRequest& r) {
    if (r.target.rfind("/htsget/reads/s1", 0) == 0) {
      json t{{"htsget", {{"format", "BAM"}, {"urls", {block(self->url("/blocks/s1"), {{"Range", range(0, 4999)}})}}}}};
      return js(200, t);
    }
    std::lock_guard l(m);
    blocks.push_back(r);
    return ranged(data, r);
  });
  self = &server;
  http::Client http(fast());
  htsget::Client client(http, server.url("/htsget"), [] { return std::string("user-token-xyz-123"); });
  htsget::Query q;
  q.id = "s1";
  auto tickets = client.tickets(q);
  REQUIRE(tickets.size() == 1);
  Collected out;
  htsget::fetch(htsget::assemble_order(tickets), fast(), {}, out.sink());
  CHECK(out.bytes == data);
  REQUIRE(blocks.size() == 1);
  CHECK(blocks[0].headers.count("authorization") == 0);
  const auto reqs = server.requests();
  CHECK(reqs.front().headers.at("authorization") == "Bearer user-token-xyz-123");
}

TEST_CASE("htsget fetch: redirects keep the block's headers, but its credentials never cross origins") {
  const std::string data = content(3000);
  std::mutex m;
  std::vector<SeenRequest> other_seen;
  MiniServer other([&](const SeenRequest& r) {
    std::lock_guard l(m);
    other_seen.push_back(r);
    return ranged(data, r);
  });
  MiniServer first([&](const SeenRequest& r) {
    if (r.target == "/away") return reply(302, "", "Location: " + other.url("/moved") + "\r\n");
    if (r.target == "/here") return reply(307, "", "Location: /moved-here\r\n");
    return ranged(data, r);
  });
  json t{{"htsget",
          {{"urls",
            {block(first.url("/away"), {{"Range", range(0, 999)}, {"Authorization", "Bearer block-secret-1"}, {"X-Trace", "t1"}}),
             block(first.url("/here"), {{"Range", range(1000, 2999)}, {"Authorization", "Bearer block-secret-2"}})}}}}};
  Collected out;
  htsget::fetch(htsget::parse_ticket(t, "t").blocks, fast(), {}, out.sink());
  CHECK(out.bytes == data);
  REQUIRE(other_seen.size() == 1);
  CHECK(other_seen[0].headers.at("range") == "bytes=0-999");
  CHECK(other_seen[0].headers.at("x-trace") == "t1");
  CHECK(other_seen[0].headers.count("authorization") == 0);
  bool same_origin_kept = false;
  for (const auto& r : first.requests())
    if (r.target == "/moved-here") same_origin_kept = r.headers.count("authorization") && r.headers.at("authorization") == "Bearer block-secret-2";
  CHECK(same_origin_kept);
}

TEST_CASE("htsget client: one POST for several regions, GETs when the server refuses POST") {
  std::atomic<bool> allow_post{true};
  MiniServer server([&](const SeenRequest& r) {
    if (r.method == "POST") {
      if (!allow_post) return reply(405, "");
      auto body = json::parse(r.body);
      CHECK(body["regions"].size() == 2);
      return js(200, json{{"htsget", {{"format", "VCF"}, {"urls", {block("data:,post")}}}}});
    }
    const bool second = r.target.find("referenceName=chr2") != std::string::npos;
    return js(200, json{{"htsget",
                         {{"format", "VCF"},
                          {"urls", {block("data:,H", json::object(), "header"), block(second ? "data:,2" : "data:,1", json::object(), "body")}}}}});
  });
  http::Client http(fast());
  htsget::Client client(http, server.url(""));
  htsget::Query q;
  q.endpoint = htsget::Endpoint::variants;
  q.id = "v";
  q.regions = {htsget::parse_region("chr1:1-10"), htsget::parse_region("chr2:1-10")};
  auto t = client.tickets(q);
  REQUIRE(t.size() == 1);
  CHECK(*t[0].blocks[0].data == "post");
  allow_post = false;
  t = client.tickets(q);
  REQUIRE(t.size() == 2);
  Collected out;
  htsget::fetch(htsget::assemble_order(t), fast(), {}, out.sink());
  CHECK(out.bytes == "H12");
}

TEST_CASE("htsget client: an htsget error answer becomes an error of its kind with the server's words") {
  MiniServer server([&](const SeenRequest&) {
    return js(404, json{{"htsget", {{"error", "NotFound"}, {"message", "No such accession 'X'"}}}});
  });
  http::Client http(fast());
  htsget::Client client(http, server.url(""));
  htsget::Query q;
  q.id = "X";
  try {
    client.tickets(q);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::not_found);
    CHECK(std::string(e.what()).find("No such accession") != std::string::npos);
  }
}

TEST_CASE("htsget fetch: a short body is detected and fetched again") {
  const std::string data = content(10'000);
  std::atomic<int> calls{0};
  MiniServer server([&](const SeenRequest& r) {
    if (++calls == 1) {  // a consistent but short 206: Content-Length matches what is sent
      return reply(206, data.substr(0, 4000), "Content-Range: bytes 0-3999/10000\r\n");
    }
    return ranged(data, r);
  });
  json t{{"htsget", {{"urls", {block(server.url("/f"), {{"Range", range(0, 9999)}})}}}}};
  Collected out;
  auto s = htsget::fetch(htsget::parse_ticket(t, "t").blocks, fast(), {}, out.sink());
  CHECK(out.bytes == data);
  CHECK(s.requests == 2);

  // Always short: the block fails after the bounded number of attempts.
  MiniServer always([&](const SeenRequest&) { return reply(206, data.substr(0, 10), "Content-Range: bytes 0-9/10000\r\n"); });
  json t2{{"htsget", {{"urls", {block(always.url("/f"), {{"Range", range(0, 9999)}})}}}}};
  Collected out2;
  htsget::FetchOptions o;
  o.max_attempts = 3;
  try {
    htsget::fetch(htsget::parse_ticket(t2, "t").blocks, fast(), o, out2.sink());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::protocol);
    CHECK(std::string(e.what()).find("block 1 of 1") != std::string::npos);
  }
  CHECK(always.requests().size() == 3);

  // A server that ignores Range for a block that does not start at 0 is refused, not written.
  MiniServer ignores([&](const SeenRequest&) { return reply(200, data); });
  json t3{{"htsget", {{"urls", {block(ignores.url("/f"), {{"Range", range(100, 199)}})}}}}};
  Collected out3;
  CHECK_THROWS_AS(htsget::fetch(htsget::parse_ticket(t3, "t").blocks, fast(), {}, out3.sink()), Error);
  CHECK(out3.bytes.empty());
}

TEST_CASE("htsget fetch: the md5 of the ticket is checked") {
  json t{{"htsget", {{"md5", "00000000000000000000000000000000"}, {"urls", {block("data:,abc")}}}}};
  auto ticket = htsget::parse_ticket(t, "t");
  Collected out;
  CHECK_THROWS_AS(htsget::fetch(ticket.blocks, fast(), {}, out.sink(), nullptr, ticket.md5), Error);
  Collected ok;
  auto s = htsget::fetch(ticket.blocks, fast(), {}, ok.sink(), nullptr, "900150983cd24fb0d6963f7d28e17f72");
  CHECK(s.md5 == "900150983cd24fb0d6963f7d28e17f72");
}

TEST_CASE("htsget fetch: a ticket whose ranges would need too many parts is refused before any request") {
  int requests = 0;
  MiniServer server([&](const SeenRequest&) {
    ++requests;
    return reply(200, "x");
  });
  json t{{"htsget", {{"urls", {block(server.url("/huge"), {{"Range", "bytes=0-999999999999999999"}})}}}}};
  auto ticket = htsget::parse_ticket(t, "t");
  Collected out;
  try {
    htsget::fetch(ticket.blocks, fast(), {}, out.sink());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::protocol);
    CHECK(std::string(e.what()).find("more than") != std::string::npos);
  }
  CHECK(requests == 0);
}

TEST_CASE("htsget: two outputs to one path never share a temporary; the last commit wins whole") {
  TempDir dir;
  const auto path = dir.path() / "out.bam";
  {
    htsget::AtomicFile a(path);
    htsget::AtomicFile b(path);
    a.write("first");
    b.write("second");
    a.commit();
    b.commit();
  }
  std::ifstream in(path);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(got == "second");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("htsget fetch: a failed block fails the output, and nothing is left at the path") {
  TempDir dir;
  const auto path = dir.path() / "out.bam";
  MiniServer server([&](const SeenRequest& r) {
    if (r.target == "/bad") return reply(403, "no");
    return ranged(content(1000), r);
  });
  json t{{"htsget",
          {{"urls", {block(server.url("/good"), {{"Range", range(0, 999)}}), block(server.url("/bad"), {{"Range", range(0, 9)}})}}}}};
  {
    htsget::AtomicFile file(path);
    try {
      htsget::fetch(htsget::parse_ticket(t, "t").blocks, fast(), {}, [&](std::string_view b) { file.write(b); });
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::forbidden);
      CHECK(std::string(e.what()).find("block 2 of 2") != std::string::npos);
    }
  }
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(std::filesystem::is_empty(dir.path()));
  {
    htsget::AtomicFile file(path);
    file.write("abc");
    file.commit();
  }
  std::ifstream in(path);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(got == "abc");
}

TEST_CASE("htsget fetch: memory stays within the window while the first block is slow") {
  const std::string data = content(2'000'000);
  std::atomic<int> in_flight{0}, most{0};
  MiniServer server([&](const SeenRequest& r) {
    int now = ++in_flight;
    int prev = most.load();
    while (now > prev && !most.compare_exchange_weak(prev, now)) {
    }
    if (r.headers.at("range").rfind("bytes=0-", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Reply rep = ranged(data, r);
    --in_flight;
    return rep;
  });
  json urls = json::array();
  for (std::uint64_t a = 0; a < data.size(); a += 100'000) urls.push_back(block(server.url("/f"), {{"Range", range(a, a + 99'999)}}));
  json t{{"htsget", {{"urls", urls}}}};
  htsget::FetchOptions o;
  o.parallel = 8;
  o.window = 300'000;  // at most 3 blocks of 100 000 bytes ahead of the output
  Collected out;
  htsget::fetch(htsget::parse_ticket(t, "t").blocks, fast(), o, out.sink());
  CHECK(out.bytes == data);
  CHECK(most.load() <= 4);  // the front block plus what the window allows
}
