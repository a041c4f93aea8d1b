// impact encrypt | decrypt: Crypt4GH files, streaming between files, stdin and stdout in bounded memory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <CLI/CLI.hpp>

#include "context.hpp"
#include "file_input.hpp"
#include "impact/cancel.hpp"
#include "impact/crypt4gh.hpp"
#include "impact/error.hpp"
#include "passphrase.hpp"

namespace impact::cli {
namespace c4gh = crypt4gh;
namespace fs = std::filesystem;
namespace {

std::string errno_text() { return std::strerror(errno); }

// Writes stdout ("-") or FILE; a file is written beside its path under a temporary name and renamed into
// place only by commit(), so a failure never leaves a file at the path. The streams hand over large pieces
// (about 1 MiB), which go to the file descriptor in one write each (standard output too, when the terminal's
// stream is std::cout, once what it holds is flushed).
class Output {
 public:
  Output(Context& ctx, const std::string& path, bool binary) : ctx_(ctx), path_(path) {
    if (path == "-") {
      if (binary && ctx.term().out_tty())
        throw Error(ErrorKind::usage, "refusing to write encrypted bytes to the terminal", "pass -o FILE or redirect");
      if (&ctx.term().out() == &std::cout) {
        std::cout.flush();
        stdout_ = true;
      }
      return;
    }
    fs::path target(path);
    fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::string tmpl = (dir / ("." + target.filename().string() + ".impact-tmp-XXXXXX")).string();
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) throw Error(ErrorKind::io, fmt::format("cannot create a file in {}: {}", dir.string(), errno_text()));
    tmp_ = tmpl;
  }
  ~Output() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void write(std::string_view data) {
    if (stdout_) return write_fd(1, data, "standard output");
    if (fd_ < 0) {
      ctx_.term().out().write(data.data(), static_cast<std::streamsize>(data.size()));
      if (!ctx_.term().out()) throw Error(ErrorKind::io, "cannot write to standard output");
      return;
    }
    write_fd(fd_, data, path_);
  }

  void commit() {
    if (stdout_) return;
    if (fd_ < 0) {
      ctx_.term().out().flush();
      return;
    }
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      ::unlink(tmp_.c_str());
      throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", path_, errno_text()));
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp_.c_str());
      throw Error(ErrorKind::io, fmt::format("cannot move the output into place at {}: {}", path_, std::strerror(e)));
    }
  }

 private:
  static void write_fd(int fd, std::string_view data, const std::string& name) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(ErrorKind::io, fmt::format("cannot write {}: {}", name, errno_text()));
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  Context& ctx_;
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool stdout_ = false;  // "-" straight to file descriptor 1
};

void encrypt(Context& ctx, const std::string& in, const std::vector<std::string>& recipients, const std::string& out) {
  std::vector<c4gh::Key> keys;
  for (const auto& r : recipients) keys.push_back(c4gh::load_public_key(r));
  FileInput input(in);
  Output output(ctx, out, /*binary=*/true);
  c4gh::Encryptor enc(keys, [&](std::string_view b) { output.write(b); });
  // Whole 64 KiB segments per chunk: sealed straight from the buffer.
  input.each([&](std::string_view chunk) { enc.update(chunk); }, 16 * c4gh::segment_size);
  enc.finish();
  output.commit();
}

void decrypt(Context& ctx, const std::string& in, std::string key, const std::string& out) {
  if (key.empty()) key = default_key_name();
  c4gh::KeyPair reader = c4gh::load_private_key(key, passphrase_source("Crypt4GH key '" + key + "'"));
  FileInput input(in);
  Output output(ctx, out, /*binary=*/false);
  c4gh::Decryptor dec(reader, [&](std::string_view b) { output.write(b); });
  try {
    input.each([&](std::string_view chunk) { dec.update(chunk); }, 16 * c4gh::cipher_segment_size);
    dec.finish();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::forbidden)
      throw Error(e.kind(), fmt::format("{}: {}", in == "-" ? "standard input" : in, e.what()),
                  "decrypt with the key the file was encrypted for: --key NAME|FILE (see: impact keys list)");
    throw Error(e.kind(), fmt::format("{}: {}", in == "-" ? "standard input" : in, e.what()), e.hint());
  }
  output.commit();
}

}  // namespace

void register_encrypt(CLI::App& app, Context& ctx) {
  struct EncOptions { std::string in, out = "-"; std::vector<std::string> recipients; };
  auto e = std::make_shared<EncOptions>();
  auto* enc = add_command(app, "encrypt");
  enc->add_option("file", e->in, "File to encrypt, or - for standard input")->required();
  enc->add_option("-r,--recipient", e->recipients, "Public key of a reader: a stored key's NAME, a key FILE, or base64 (repeatable)")
      ->required();
  enc->add_option("-o,--output", e->out, "Where to write (default: standard output)");
  enc->footer("Examples:\n  impact encrypt sample.bam -r alice.pub -r bob -o sample.bam.c4gh\n"
              "  tar c results | impact encrypt - -r ToQrpj4UfuLgxZRe1wSGIZtXC19fOEHUHe3RQy63qwM= > results.tar.c4gh");
  enc->callback(ctx.action([&ctx, e] { encrypt(ctx, e->in, e->recipients, e->out); }));
}

void register_decrypt(CLI::App& app, Context& ctx) {
  struct DecOptions { std::string in, key, out = "-"; };
  auto d = std::make_shared<DecOptions>();
  auto* dec = add_command(app, "decrypt");
  dec->add_option("file", d->in, "File to decrypt, or - for standard input")->required();
  dec->add_option("-k,--key", d->key, "Private key: a stored key's NAME or a key FILE (default: the only, or 'default')");
  dec->add_option("-o,--output", d->out, "Where to write (default: standard output); a file appears only when complete");
  dec->footer("A passphrase comes from IMPACT_C4GH_PASSPHRASE or a prompt on the terminal.\n\n"
              "Examples:\n  impact decrypt sample.bam.c4gh -o sample.bam\n"
              "  impact decrypt - --key ega < data.vcf.gz.c4gh | zcat | head");
  dec->callback(ctx.action([&ctx, d] { decrypt(ctx, d->in, d->key, d->out); }));
}

}  // namespace impact::cli
