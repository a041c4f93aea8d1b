#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "impact/about.hpp"
#include "impact/http.hpp"
#include "impact/version.hpp"

namespace impact {
std::string user_agent() { return std::string("impact/") + version_string; }
std::string curl_version() { return http::curl_version(); }
std::string tls_version() { return OpenSSL_version(OPENSSL_VERSION); }
std::string curl_build_version() { return http::curl_build_version(); }
std::string tls_build_version() { return OPENSSL_VERSION_TEXT; }
std::string build_type() { return IMPACT_BUILD_TYPE; }
}  // namespace impact
