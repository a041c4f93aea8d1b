// Crypt4GH headers and segments (crypt4gh.tex §3): parsing with bounds, packets for other readers skipped,
// several data keys, at most one edit list; segment decryption and random access.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh {
using namespace detail;

namespace {

constexpr std::string_view magic = "crypt4gh";
constexpr std::size_t packet_min = 4 + 4 + 32 + 12 + 16;  // length, method, writer key, nonce, MAC

[[noreturn]] void bad_header(std::string_view why) {
  throw Error(ErrorKind::protocol, fmt::format("not a valid Crypt4GH file: {}", why));
}

}  // namespace

Header::~Header() {
  for (auto& k : data_keys) wipe(k.data(), k.size());
}

std::optional<Header> parse_header(std::string_view in, const KeyPair& reader, std::size_t* need) {
  auto want = [&](std::size_t n) -> bool {
    if (in.size() >= n) return true;
    if (need) *need = n;
    return false;
  };
  if (!in.empty() && in.substr(0, std::min(in.size(), magic.size())) != magic.substr(0, std::min(in.size(), magic.size())))
    bad_header("it does not start with the Crypt4GH magic bytes");
  if (!want(16)) return std::nullopt;
  std::uint32_t version = get_le32(bytes(in) + 8);
  if (version != 1) bad_header(fmt::format("version {} is not supported (only version 1)", version));
  std::uint32_t count = get_le32(bytes(in) + 12);
  if (count == 0 || count > max_header_packets)
    bad_header(fmt::format("the header claims {} packets (at least 1 and at most {} are possible)", count,
                           max_header_packets));
  Header h;
  h.packet_count = count;
  std::size_t pos = 16;
  bool edit_seen = false;
  std::string plain;
  struct WipePlain { std::string& s; ~WipePlain() { wipe(s); } } wipe_plain{plain};
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!want(pos + 4)) return std::nullopt;
    std::uint32_t len = get_le32(bytes(in) + pos);
    if (len < packet_min || len > max_packet_length)
      bad_header(fmt::format("header packet {} has an impossible length of {} bytes", i + 1, len));
    if (pos + len > max_header_bytes)
      bad_header(fmt::format("the header is longer than {} bytes", max_header_bytes));
    if (!want(pos + len)) return std::nullopt;
    const unsigned char* p = bytes(in) + pos;
    std::uint32_t method = get_le32(p + 4);
    pos += len;
    if (method != 0) continue;  // an encryption this reader cannot use: not for us
    Key writer{};
    std::copy(p + 8, p + 40, writer.begin());
    Key shared{};
    if (!shared_key(reader.secret, writer, reader.public_key, writer, shared)) continue;
    plain.clear();
    bool ok = aead_open(shared.data(), p + 40, std::string_view(reinterpret_cast<const char*>(p + 52), len - 52), plain);
    wipe(shared.data(), shared.size());
    if (!ok) continue;  // for another reader
    if (plain.size() < 4) bad_header(fmt::format("header packet {} is too short", i + 1));
    std::uint32_t type = get_le32(bytes(plain));
    if (type == 0) {
      if (plain.size() < 8 + 32) bad_header(fmt::format("header packet {} is too short for a data key", i + 1));
      std::uint32_t data_method = get_le32(bytes(plain) + 4);
      if (data_method != 0)
        bad_header(fmt::format("data encryption method {} is not supported (only chacha20_ietf_poly1305)", data_method));
      Key k{};
      std::copy(bytes(plain) + 8, bytes(plain) + 40, k.begin());
      h.data_keys.push_back(k);
      wipe(k.data(), k.size());
    } else if (type == 1) {
      if (edit_seen) bad_header("the header holds more than one edit list");
      edit_seen = true;
      if (plain.size() < 8) bad_header("the edit list packet is too short");
      std::uint32_t n = get_le32(bytes(plain) + 4);
      if (n > max_edit_list_length)
        bad_header(fmt::format("the edit list claims {} entries (at most {})", n, max_edit_list_length));
      if (plain.size() < 8 + std::size_t(n) * 8)
        bad_header(fmt::format("the edit list claims {} entries but holds {}", n, (plain.size() - 8) / 8));
      std::vector<std::uint64_t> list;
      for (std::uint32_t j = 0; j < n; ++j) list.push_back(get_le64(bytes(plain) + 8 + 8 * std::size_t(j)));
      if (!list.empty()) h.edit_list = std::move(list);  // an empty list edits nothing
    }
    // other packet types are for future versions: ignored
  }
  if (h.data_keys.empty())
    throw Error(ErrorKind::forbidden, fmt::format("none of the {} header packets is for key {}", count,
                                                  fingerprint(reader.public_key)));
  h.length = pos;
  return h;
}

std::string make_header(const std::vector<Key>& recipients, const Key& data_key,
                        const std::vector<std::uint64_t>* edit_list) {
  if (recipients.empty()) throw Error(ErrorKind::usage, "encryption needs at least one recipient");
  std::string key_packet;
  put_le32(key_packet, 0);
  put_le32(key_packet, 0);
  key_packet.append(reinterpret_cast<const char*>(data_key.data()), data_key.size());
  std::string edit_packet;
  if (edit_list) {
    if (edit_list->size() > max_edit_list_length) throw Error(ErrorKind::usage, "the edit list is too long");
    put_le32(edit_packet, 1);
    put_le32(edit_packet, static_cast<std::uint32_t>(edit_list->size()));
    for (auto v : *edit_list) put_le64(edit_packet, v);
  }
  std::string out(magic);
  put_le32(out, 1);
  std::size_t packets = recipients.size() * (edit_list ? 2 : 1);
  if (packets > max_header_packets) throw Error(ErrorKind::usage, "too many recipients");
  put_le32(out, static_cast<std::uint32_t>(packets));
  for (const Key& reader : recipients) {
    KeyPair writer = generate_key_pair();  // a fresh writer key per reader, discarded after use
    Key shared{};
    if (!shared_key(writer.secret, reader, reader, writer.public_key, shared))
      throw Error(ErrorKind::usage, "a recipient's public key is not usable (a low-order point)");
    auto add = [&](const std::string& plain) {
      unsigned char nonce[12];
      random_bytes(nonce, sizeof nonce);
      std::string packet;
      put_le32(packet, static_cast<std::uint32_t>(packet_min + plain.size()));
      put_le32(packet, 0);
      packet.append(reinterpret_cast<const char*>(writer.public_key.data()), 32);
      packet.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
      aead_seal(shared.data(), nonce, plain, packet);
      out += packet;
    };
    add(key_packet);
    if (edit_list) add(edit_packet);
    wipe(shared.data(), shared.size());
  }
  wipe(key_packet);
  return out;
}

std::size_t detail::decrypt_segment_into(const Header& header, std::uint64_t index, std::string_view segment,
                                         unsigned char* dst) {
  if (segment.size() < segment_overhead)
    throw Error(ErrorKind::protocol,
                fmt::format("the Crypt4GH file is truncated: segment {} has only {} bytes", index, segment.size()));
  if (segment.size() > cipher_segment_size)
    throw Error(ErrorKind::generic, fmt::format("segment {} is longer than a Crypt4GH segment", index));
  for (const Key& k : header.data_keys)
    if (aead_open_into(k.data(), bytes(segment), segment.substr(12), dst)) return segment.size() - segment_overhead;
  throw Error(ErrorKind::protocol,
              fmt::format("segment {} of the Crypt4GH file failed authentication: the file is damaged or was changed",
                          index));
}

SegmentRange segments_for(std::uint64_t header_length, std::uint64_t offset, std::uint64_t length) {
  SegmentRange r;
  r.first_segment = offset / segment_size;
  r.skip = offset % segment_size;
  std::uint64_t end = length > std::numeric_limits<std::uint64_t>::max() - offset ? std::numeric_limits<std::uint64_t>::max()
                                                                                  : offset + length;
  std::uint64_t last = end == offset ? r.first_segment : (end - 1) / segment_size + 1;
  r.segment_count = last - r.first_segment;
  r.cipher_offset = header_length + r.first_segment * cipher_segment_size;
  r.cipher_length = r.segment_count * cipher_segment_size;
  return r;
}

void decrypt_segment(const Header& header, std::uint64_t index, std::string_view segment, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + segment_size);
  try {
    out.resize(old + decrypt_segment_into(header, index, segment, reinterpret_cast<unsigned char*>(out.data() + old)));
  } catch (...) {
    out.resize(old);
    throw;
  }
}

void decrypt_segments(const Header& header, std::uint64_t first_segment, std::string_view cipher, std::string& out) {
  std::uint64_t index = first_segment;
  while (!cipher.empty()) {
    std::string_view seg = cipher.substr(0, cipher_segment_size);
    decrypt_segment(header, index++, seg, out);
    cipher.remove_prefix(seg.size());
  }
}

std::string read_range(const Header& header, std::uint64_t offset, std::uint64_t length,
                       const std::function<std::string(std::uint64_t, std::size_t)>& read_at) {
  constexpr std::uint64_t unbounded = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t want_end = length > unbounded - offset ? unbounded : offset + length;
  // The pieces of the underlying plaintext that the requested output range covers.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> raw;  // start, length
  auto overlap = [&](std::uint64_t out_start, std::uint64_t out_len, std::uint64_t raw_start) {
    std::uint64_t out_end = out_len > unbounded - out_start ? unbounded : out_start + out_len;
    std::uint64_t s = std::max(out_start, offset), e = std::min(out_end, want_end);
    if (s < e) raw.emplace_back(raw_start + (s - out_start), e - s);
  };
  if (!header.edit_list) {
    overlap(0, unbounded, 0);
  } else {
    const auto& el = *header.edit_list;
    std::uint64_t out_pos = 0, raw_pos = 0;
    for (std::size_t i = 0; i < el.size(); ++i) {
      if (i % 2 == 0) {
        raw_pos += el[i];
      } else {
        overlap(out_pos, el[i], raw_pos);
        out_pos += el[i];
        raw_pos += el[i];
      }
    }
    if (el.size() % 2 == 1) overlap(out_pos, unbounded - out_pos, raw_pos);
  }
  std::string result, plain;
  for (auto [start, len] : raw) {
    SegmentRange r = segments_for(header.length, start, len);
    std::uint64_t index = r.first_segment;
    std::uint64_t skip = r.skip, left = len;
    for (std::uint64_t s = 0; s < r.segment_count && left > 0; ++s, ++index) {
      std::string cipher = read_at(header.length + index * cipher_segment_size, cipher_segment_size);
      if (cipher.empty()) return result;  // past the end of the file
      plain.clear();
      decrypt_segment(header, index, cipher, plain);
      if (skip >= plain.size()) return result;
      std::uint64_t take = std::min<std::uint64_t>(left, plain.size() - skip);
      result.append(plain, static_cast<std::size_t>(skip), static_cast<std::size_t>(take));
      left -= take;
      skip = 0;
      if (cipher.size() < cipher_segment_size) return result;  // the last segment
    }
  }
  return result;
}

}  // namespace impact::crypt4gh
