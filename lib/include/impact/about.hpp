// What this build is made of, for `impact version` and the User-Agent.
#pragma once
#include <string>

namespace impact {
std::string user_agent();        // "impact/<version>"
std::string curl_version();      // e.g. "7.88.1"
std::string tls_version();       // e.g. "OpenSSL 3.0.19"
// The versions impact was built against, known without loading either library (`impact --version`).
std::string curl_build_version();
std::string tls_build_version();
std::string build_type();        // CMake build type
}  // namespace impact
