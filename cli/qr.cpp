#include "qr.hpp"

#ifdef IMPACT_HAVE_QRENCODE
#include <qrencode.h>

#include "impact/error.hpp"
#include "impact/lazy_library.hpp"
#endif

namespace impact::cli {

#ifdef IMPACT_HAVE_QRENCODE
namespace {
// libqrencode is opened when a login shows its first QR code (see impact/lazy_library.hpp); without it the
// login prints the URL and code alone, as when impact is built without its header.
struct Api {
  decltype(&::QRcode_encodeString) encode = nullptr;
  decltype(&::QRcode_free) free = nullptr;
};

const Api* api() {
  static const Api loaded = []() -> Api {
    try {
      const LazyLibrary lib("libqrencode.so.4", "cannot use libqrencode", "install libqrencode4");
      Api a;
      lib.bind("QRcode_encodeString", a.encode);
      lib.bind("QRcode_free", a.free);
      return a;
    } catch (const Error&) {
      return {};
    }
  }();
  return loaded.encode ? &loaded : nullptr;
}
}  // namespace
#endif

bool qr_available() {
#ifdef IMPACT_HAVE_QRENCODE
  return api() != nullptr;
#else
  return false;
#endif
}

std::string qr_code([[maybe_unused]] std::string_view text) {
#ifdef IMPACT_HAVE_QRENCODE
  const Api* a = api();
  if (a == nullptr) return {};
  std::string input(text);
  QRcode* qr = a->encode(input.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, 1);
  if (qr == nullptr) return {};
  const int n = qr->width;
  const int quiet = 2;
  auto dark = [&](int x, int y) {
    if (x < 0 || y < 0 || x >= n || y >= n) return false;
    return (qr->data[y * n + x] & 1) != 0;
  };
  // Light modules are drawn, dark ones left blank: reads well on the usual dark terminal background
  // and scanners accept the inverted code.
  std::string out;
  for (int y = -quiet; y < n + quiet; y += 2) {
    for (int x = -quiet; x < n + quiet; ++x) {
      bool top = !dark(x, y), bottom = !dark(x, y + 1) && y + 1 < n + quiet;
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += '\n';
  }
  a->free(qr);
  return out;
#else
  return {};
#endif
}

}  // namespace impact::cli
