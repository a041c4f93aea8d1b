// impact htsget reads|variants ID [--region R]... [--format F] [--header-only] [--fields F] [--tags T]
//        [--notags T] [--encrypted [--keep-encrypted] [--key NAME|FILE]] [-o FILE|-] [--parallel N]
#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "impact/crypt4gh.hpp"
#include "impact/error.hpp"
#include "impact/htsget.hpp"
#include "impact/redact.hpp"
#include "passphrase.hpp"
#include "transfer_progress.hpp"

namespace impact::cli {
namespace c4gh = crypt4gh;
namespace {

struct Flags {
  std::string id, format, out = "-", key;
  std::vector<std::string> regions, fields, tags, notags;
  bool header_only = false, encrypted = false, keep_encrypted = false;
  std::size_t parallel = htsget::FetchOptions{}.parallel;
};

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::vector<std::string> split_commas(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::size_t at = 0;
    while (at <= item.size()) {
      const auto comma = item.find(',', at);
      std::string part = item.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  return out;
}

void check_format(htsget::Endpoint e, const std::string& format) {
  if (format.empty()) return;
  static const std::vector<std::string> reads{"BAM", "CRAM"}, variants{"VCF", "BCF"};
  const auto& allowed = e == htsget::Endpoint::reads ? reads : variants;
  if (std::find(allowed.begin(), allowed.end(), format) == allowed.end())
    throw Error(ErrorKind::usage, fmt::format("--format {} is not a {} format", format, htsget::to_string(e)),
                e == htsget::Endpoint::reads ? "use --format BAM or CRAM" : "use --format VCF or BCF");
}

void run(Context& ctx, htsget::Endpoint endpoint, const Flags& f) {
  htsget::Query q;
  q.endpoint = endpoint;
  q.id = f.id;
  q.format = upper(f.format);
  check_format(endpoint, q.format);
  q.header_only = f.header_only;
  for (const auto& r : f.regions) q.regions.push_back(htsget::parse_region(r));
  q.fields = split_commas(f.fields);
  q.tags = split_commas(f.tags);
  q.notags = split_commas(f.notags);
  if (!q.fields.empty() && endpoint == htsget::Endpoint::variants)
    throw Error(ErrorKind::usage, "--fields applies to reads only");
  if (q.header_only && (!q.regions.empty() || !q.fields.empty() || !q.tags.empty() || !q.notags.empty()))
    throw Error(ErrorKind::usage, "--header-only takes no --region, --fields, --tags or --notags",
                "the header is the same for every region");
  if (f.keep_encrypted && !f.encrypted) throw Error(ErrorKind::usage, "--keep-encrypted needs --encrypted");
  if (!f.key.empty() && !f.encrypted) throw Error(ErrorKind::usage, "--key needs --encrypted");
  if (ctx.json() && f.out == "-")
    throw Error(ErrorKind::usage, "--json prints a summary on standard output, where the data would go", "pass -o FILE");
  if (f.out == "-" && ctx.term().out_tty())
    throw Error(ErrorKind::usage, "refusing to write binary data to the terminal", "pass -o FILE or redirect");

  Config config = ctx.load_config();
  const Profile& p = ctx.profile(config);
  if (p.htsget.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no htsget service",
                "run: impact profile set " + p.name + " --htsget URL");

  // The key before any request: a wrong passphrase should cost nothing.
  std::optional<c4gh::KeyPair> reader;
  if (f.encrypted) {
    const std::string key = f.key.empty() ? default_key_name() : f.key;
    if (f.keep_encrypted) {
      q.public_key = c4gh::format_public_key(c4gh::load_public_key(key));
    } else {
      reader = c4gh::load_private_key(key, passphrase_source("Crypt4GH key '" + key + "'"));
      q.public_key = c4gh::format_public_key(reader->public_key);
    }
  }

  http::Options options = ctx.http_options();
  http::Client http(options);
  htsget::TokenFn token;
  if (auth::Credentials* creds = ctx.login_if_any(p)) token = [creds, url = p.htsget] { return creds->bearer_token(url); };
  htsget::Client client(http, p.htsget, std::move(token));

  // service-info is optional: it tells the formats before a ticket is asked for.
  try {
    const auto info = client.info(endpoint);
    const std::string want = q.format.empty() ? (endpoint == htsget::Endpoint::reads ? "BAM" : "VCF") : q.format;
    if (!info.formats.empty() && std::find(info.formats.begin(), info.formats.end(), want) == info.formats.end()) {
      std::string offered;
      for (const auto& s : info.formats) offered += (offered.empty() ? "" : ", ") + s;
      throw Error(ErrorKind::usage, fmt::format("the htsget server offers {} {} only, not {}", htsget::to_string(endpoint),
                                                offered, want),
                  "pass --format with one of them");
    }
    if (!q.fields.empty() && info.fields_effective == false)
      ctx.term().warn("the server says it ignores --fields: all fields will come");
    if ((!q.tags.empty() || !q.notags.empty()) && info.tags_effective == false)
      ctx.term().warn("the server says it ignores --tags/--notags: all tags will come");
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::usage || e.kind() == ErrorKind::cancelled || e.kind() == ErrorKind::auth_required) throw;
    if (ctx.globals.verbose) ctx.term().note(std::string("no usable service-info: ") + e.what());
  }

  const std::vector<htsget::Ticket> tickets = client.tickets(q);
  const std::vector<htsget::Block> blocks = htsget::assemble_order(tickets);
  const std::string md5 = tickets.size() == 1 ? tickets[0].md5 : std::string();

  std::unique_ptr<htsget::AtomicFile> file;
  if (f.out != "-") file = std::make_unique<htsget::AtomicFile>(f.out);
  std::uint64_t written = 0;
  auto write = [&](std::string_view bytes) {
    written += bytes.size();
    if (file) {
      file->write(bytes);
      return;
    }
    ctx.term().out().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!ctx.term().out()) throw Error(ErrorKind::io, "cannot write to standard output");
  };
  std::optional<c4gh::Decryptor> dec;
  if (reader) dec.emplace(*reader, write);
  std::function<void(std::string_view)> sink = [&](std::string_view bytes) {
    if (dec) dec->update(bytes);
    else write(bytes);
  };

  htsget::FetchOptions fo;
  fo.parallel = f.parallel;
  TransferProgress progress(ctx.term());
  htsget::FetchSummary summary;
  try {
    summary = htsget::fetch(blocks, options, fo, sink, &progress, md5);
    if (dec) dec->finish();
  } catch (const Error& e) {
    progress.finish();
    if (dec && e.kind() == ErrorKind::forbidden && !e.http_status())  // the key, not a refused block
      throw Error(e.kind(), fmt::format("the data is not encrypted for your key: {}", e.what()),
                  "the server must encrypt for the key you pass with --key");
    throw;
  }
  progress.finish();
  if (file) file->commit();
  else ctx.term().out().flush();

  if (ctx.json())
    ctx.term().print_json({{"id", q.id},
                           {"endpoint", std::string(htsget::to_string(endpoint))},
                           {"format", tickets.empty() ? std::string() : tickets[0].format},
                           {"output", f.out},
                           {"bytes", written},
                           {"bytes_fetched", summary.bytes},
                           {"blocks", summary.blocks},
                           {"requests", summary.requests},
                           {"tickets", tickets.size()},
                           {"md5_verified", !summary.md5.empty()},
                           {"encrypted", f.encrypted},
                           {"decrypted", reader.has_value()}});
}

}  // namespace

void register_htsget(CLI::App& app, Context& ctx) {
  auto* cmd = add_command(app, "htsget");
  cmd->require_subcommand(1);
  cmd->footer("Examples:\n  impact htsget reads NA12878 --region chr20:1000000-1100000 -o slice.bam\n"
              "  impact htsget variants sample1 --region chr1 --header-only -o -");
  for (const auto endpoint : {htsget::Endpoint::reads, htsget::Endpoint::variants}) {
    auto f = std::make_shared<Flags>();
    const bool reads = endpoint == htsget::Endpoint::reads;
    auto* sub = cmd->add_subcommand(std::string(htsget::to_string(endpoint)),
                                    reads ? "Fetch reads (BAM or CRAM) of one id, whole or by region"
                                          : "Fetch variants (VCF or BCF) of one id, whole or by region");
    sub->add_option("id", f->id, "The id the server knows the file by")->required();
    sub->add_option("-r,--region", f->regions,
                    "CHR, CHR:START-END or CHR:START- (1-based, inclusive, as samtools writes them; repeatable)");
    sub->add_option("--format", f->format, reads ? "BAM (default) or CRAM" : "VCF (default) or BCF");
    sub->add_flag("--header-only", f->header_only, "Only the header (class=header)");
    if (reads) sub->add_option("--fields", f->fields, "Fields to include, comma-separated (QNAME,FLAG,POS,...)");
    sub->add_option("--tags", f->tags, "Tags to include, comma-separated");
    sub->add_option("--notags", f->notags, "Tags to leave out, comma-separated");
    sub->add_flag("--encrypted", f->encrypted, "Ask for Crypt4GH data encrypted for your key, and decrypt it here");
    sub->add_flag("--keep-encrypted", f->keep_encrypted, "With --encrypted: write the Crypt4GH data as it came");
    sub->add_option("--key", f->key, "With --encrypted: the Crypt4GH key to use, a stored NAME or a FILE (default: your key)");
    sub->add_option("-o,--output", f->out, "File to write, or - for standard output (the default)");
    sub->add_option("--parallel", f->parallel, "Block requests at once (default 8)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{64}));
    sub->footer(reads ? "Examples:\n  impact htsget reads NA12878 --region chr20:1000000-1100000 -o slice.bam\n"
                        "  impact htsget reads NA12878 --header-only | samtools view -H -\n"
                        "  impact htsget reads NA12878 --encrypted -r chr1 -o chr1.bam"
                      : "Examples:\n  impact htsget variants sample1 --region chr1:10000-20000 -o slice.vcf.gz\n"
                        "  impact htsget variants sample1 --format BCF -r chr1 -r chr2 | bcftools view -");
    sub->callback(ctx.action([&ctx, endpoint, f] { run(ctx, endpoint, *f); }));
  }
}

}  // namespace impact::cli
