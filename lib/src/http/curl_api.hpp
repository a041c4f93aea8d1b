// libcurl, loaded on the first request rather than at start-up. Linking libcurl makes every start of impact
// load and relocate it and the ~30 libraries it pulls in (GnuTLS, Kerberos, LDAP, SSH, RTMP...), which costs
// more than everything else a command like `impact token` does. So libcurl.so.4 is opened with dlopen() the
// first time a handle is needed, and every call goes through the pointers below. Internal: only
// lib/src/http/ includes this header; curl/curl.h is used for its types and constants only.
#pragma once

#include <curl/curl.h>

namespace impact::http::detail {

// Every libcurl function impact calls (without the curl_ prefix: curl.h defines some names as macros).
#define IMPACT_CURL_FUNCTIONS(X)                                                                           \
  X(global_init) X(version_info) X(easy_strerror)                                                          \
  X(easy_init) X(easy_cleanup) X(easy_reset) X(easy_setopt) X(easy_getinfo) X(easy_perform)                \
  X(multi_init) X(multi_cleanup) X(multi_setopt) X(multi_add_handle) X(multi_remove_handle)                \
  X(multi_perform) X(multi_info_read) X(multi_poll)                                                        \
  X(slist_append) X(slist_free_all)                                                                        \
  X(mime_init) X(mime_free) X(mime_addpart) X(mime_name) X(mime_filedata) X(mime_filename) X(mime_data)    \
  X(mime_type)

struct CurlApi {
#define IMPACT_CURL_POINTER(name) decltype(&::curl_##name) name = nullptr;
  IMPACT_CURL_FUNCTIONS(IMPACT_CURL_POINTER)
#undef IMPACT_CURL_POINTER
};

// libcurl's functions, loaded (and curl_global_init run) on the first call, once per process. When
// libcurl.so.4 cannot be loaded, or lacks a function, throws Error(generic) naming the library; a later
// call tries again.
const CurlApi& curl_api();

}  // namespace impact::http::detail
