// Passphrases for Crypt4GH keys, read from the environment or /dev/tty with echo off.
#include "passphrase.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>
#include <openssl/crypto.h>

#include <fmt/format.h>

#include "impact/error.hpp"

namespace impact::cli {
namespace {

constexpr const char* env_var = "IMPACT_C4GH_PASSPHRASE";

std::string prompt(const std::string& text) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    throw Error(ErrorKind::usage, "a passphrase is needed and there is no terminal to ask on",
                std::string("set ") + env_var);
  struct Close { int fd; ~Close() { ::close(fd); } } closer{fd};
  termios old{};
  bool have_termios = ::tcgetattr(fd, &old) == 0;
  if (have_termios) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  if (::write(fd, text.data(), text.size()) < 0) { /* the prompt is a courtesy */ }
  std::string line;
  char c = 0;
  while (line.size() < 4096) {
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0 || c == '\n' || c == '\r') break;
    line.push_back(c);
  }
  if (have_termios) ::tcsetattr(fd, TCSAFLUSH, &old);
  if (::write(fd, "\n", 1) < 0) { /* as above */ }
  return line;
}

}  // namespace

crypt4gh::PassphraseSource passphrase_source(const std::string& what) {
  return [what]() -> std::string {
    if (const char* v = std::getenv(env_var)) return v;
    return prompt("Passphrase for " + what + ": ");
  };
}

std::string default_key_name() {
  std::vector<std::string> names;
  for (const auto& k : crypt4gh::list_keys())
    if (k.has_secret) names.push_back(k.name);
  if (names.size() == 1) return names[0];
  for (const auto& n : names)
    if (n == "default") return n;
  if (names.empty())
    throw Error(ErrorKind::usage, "no Crypt4GH private key to decrypt with",
                "create one (impact keys generate), import one (impact keys import FILE) or pass --key FILE");
  throw Error(ErrorKind::usage, std::to_string(names.size()) + " Crypt4GH keys are stored and none is named 'default'",
              "pass --key NAME (see: impact keys list)");
}

std::string new_passphrase() {
  if (const char* v = std::getenv(env_var)) {
    if (!*v) throw Error(ErrorKind::usage, std::string(env_var) + " is empty", "pass --no-passphrase for a key without one");
    return v;
  }
  std::string first = prompt("Passphrase for the new key: ");
  std::string second = prompt("The same passphrase again: ");
  bool same = first == second;
  OPENSSL_cleanse(second.data(), second.size());
  if (!same || first.empty()) {
    OPENSSL_cleanse(first.data(), first.size());
    throw Error(ErrorKind::usage, same ? "the passphrase is empty" : "the two passphrases differ",
                "pass --no-passphrase for a key without one");
  }
  return first;
}

}  // namespace impact::cli
