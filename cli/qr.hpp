// A QR code of a URL drawn with Unicode half blocks, for the device-flow login on a terminal. Empty when
// impact was built without libqrencode or the text does not fit a QR code.
#pragma once
#include <string>
#include <string_view>

namespace impact::cli {
std::string qr_code(std::string_view text);
}
