// Streaming Crypt4GH: bytes in any chunking, one segment in memory at a time.
#include <fmt/format.h>

#include <algorithm>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh {
using namespace detail;

Decryptor::Decryptor(const KeyPair& reader, Sink sink) : reader_(reader), sink_(std::move(sink)) {}

Decryptor::~Decryptor() { wipe(plain_); }

void Decryptor::update(std::string_view in) {
  if (finished_) throw Error(ErrorKind::generic, "Crypt4GH decryptor used after finish");
  if (!header_) {
    buffer_.append(in);
    std::size_t need = 0;
    header_ = parse_header(buffer_, reader_, &need);
    if (!header_) return;
    if (header_->edit_list) edit_left_ = (*header_->edit_list)[0];
    std::string rest = buffer_.substr(header_->length);
    buffer_.clear();
    update(rest);
    return;
  }
  if (!buffer_.empty()) {  // complete the segment begun by an earlier chunk
    std::size_t n = std::min(in.size(), cipher_segment_size - buffer_.size());
    buffer_.append(in.substr(0, n));
    in.remove_prefix(n);
    if (buffer_.size() < cipher_segment_size) return;
    take_segment(buffer_);
    buffer_.clear();
  }
  while (in.size() >= cipher_segment_size) {  // whole segments straight from the caller's bytes
    take_segment(in.substr(0, cipher_segment_size));
    in.remove_prefix(cipher_segment_size);
  }
  buffer_.assign(in);
}

void Decryptor::finish() {
  if (finished_) return;
  if (!header_) {
    std::size_t need = 0;
    header_ = parse_header(buffer_, reader_, &need);
    if (!header_)
      throw Error(ErrorKind::protocol, fmt::format("the Crypt4GH file is truncated: its header ends after {} of "
                                                   "at least {} bytes", buffer_.size(), need));
    buffer_.erase(0, header_->length);
  }
  if (!buffer_.empty()) take_segment(buffer_);  // the short last segment (or a truncated one: an error)
  buffer_.clear();
  finished_ = true;
}

void Decryptor::take_segment(std::string_view segment) {
  if (plain_.size() != segment_size) plain_.resize(segment_size);
  std::size_t n = detail::decrypt_segment_into(*header_, segment_index_, segment,
                                               reinterpret_cast<unsigned char*>(plain_.data()));
  ++segment_index_;
  emit(std::string_view(plain_.data(), n));
}

void Decryptor::emit(std::string_view plain) {
  if (!header_->edit_list) {
    if (!plain.empty()) sink_(plain);
    return;
  }
  const auto& el = *header_->edit_list;
  while (true) {
    while (edit_index_ < el.size() && edit_left_ == 0) {
      ++edit_index_;
      if (edit_index_ < el.size()) edit_left_ = el[edit_index_];
    }
    if (plain.empty()) return;
    if (edit_index_ >= el.size()) {
      if (el.size() % 2 == 1) sink_(plain);  // the list ended with a skip: the rest is kept
      return;
    }
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(edit_left_, plain.size()));
    if (edit_index_ % 2 == 1) sink_(plain.substr(0, n));
    plain.remove_prefix(n);
    edit_left_ -= n;
  }
}

Encryptor::Encryptor(const std::vector<Key>& recipients, Sink sink, const std::vector<std::uint64_t>* edit_list)
    : sink_(std::move(sink)) {
  random_bytes(data_key_.data(), data_key_.size());
  std::string header = make_header(recipients, data_key_, edit_list);
  sink_(header);
}

Encryptor::~Encryptor() {
  wipe(data_key_.data(), data_key_.size());
  wipe(buffer_);
}

void Encryptor::update(std::string_view plain) {
  if (finished_) throw Error(ErrorKind::generic, "Crypt4GH encryptor used after finish");
  if (!buffer_.empty()) {
    std::size_t n = std::min(plain.size(), segment_size - buffer_.size());
    buffer_.append(plain.substr(0, n));
    plain.remove_prefix(n);
    if (buffer_.size() < segment_size) return;
    seal(buffer_);
    wipe(buffer_);
  }
  while (plain.size() >= segment_size) {
    seal(plain.substr(0, segment_size));
    plain.remove_prefix(segment_size);
  }
  buffer_.append(plain);
}

void Encryptor::finish() {
  if (finished_) return;
  if (!buffer_.empty()) seal(buffer_);
  wipe(buffer_);
  finished_ = true;
}

void Encryptor::seal(std::string_view plain) {
  unsigned char nonce[12];
  random_bytes(nonce, sizeof nonce);
  out_.assign(reinterpret_cast<const char*>(nonce), sizeof nonce);
  aead_seal(data_key_.data(), nonce, plain, out_);
  sink_(out_);
}

}  // namespace impact::crypt4gh
