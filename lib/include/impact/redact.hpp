// One redaction function family: everything that may reach a log, an error message or the terminal
// passes through here, so no token, secret, passport or URL signature is ever printed.
#pragma once
#include <string>
#include <string_view>

namespace impact {

// Remember a secret value (a token, a client secret) for the life of the process: any later text that
// contains it is redacted. Values shorter than 8 characters are ignored (too likely to match by chance).
void remember_secret(std::string_view secret);
// Forgets every remembered secret (for fuzzers and tests that parse many tokens in one process).
void forget_secrets() noexcept;

// Replaces remembered secrets, JWT-shaped strings and bearer credentials in free text.
std::string redact(std::string_view text);

// A URL with user-info removed and the values of sensitive query parameters (signatures, credentials,
// tokens) replaced by "REDACTED". Also applies redact().
std::string redact_url(std::string_view url);

// A header value fit to print: sensitive headers become "REDACTED", others pass through redact().
std::string redact_header(std::string_view name, std::string_view value);

// True for header names whose values are credentials (Authorization, Cookie, X-Amz-Security-Token, ...).
bool is_sensitive_header(std::string_view name);

}  // namespace impact
