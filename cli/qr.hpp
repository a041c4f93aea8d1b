// A QR code of a URL drawn with Unicode half blocks, for the device-flow login on a terminal. Empty when
// libqrencode cannot be used (impact built without its header, or libqrencode.so.4 not installed: it is
// opened on first use) or the text does not fit a QR code.
#pragma once
#include <string>
#include <string_view>

namespace impact::cli {
std::string qr_code(std::string_view text);
// Whether qr_code can draw at all (libqrencode built in and loadable).
bool qr_available();
}
