// Where a Crypt4GH passphrase comes from: $IMPACT_C4GH_PASSPHRASE, else a prompt on the terminal (echo off),
// never argv.
#pragma once

#include <string>

#include "impact/crypt4gh.hpp"

namespace impact::cli {

// For opening a key: asks once, when the library needs it.
crypt4gh::PassphraseSource passphrase_source(const std::string& what);
// The stored key to decrypt with when none is named: the only one with a secret, else the one named
// "default". Error(usage) with a hint naming --key otherwise.
std::string default_key_name();
// For a new key: the environment, or asked twice on the terminal. Error(usage) when neither is possible.
std::string new_passphrase();

}  // namespace impact::cli
