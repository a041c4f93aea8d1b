// Streaming Crypt4GH: bytes in any chunking, one segment in memory at a time.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "crypt4gh/internal.hpp"
#include "impact/error.hpp"

namespace impact::crypt4gh {
using namespace detail;

// A thread that runs one job at a time for the decryptor: start() hands it over, wait() returns when it is
// done. Jobs catch their own exceptions. The destructor stops and joins the thread.
struct Decryptor::Worker {
  Worker() : thread_([this] { run(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = std::move(job);
      pending_ = true;
      done_ = false;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || pending_; });
      if (!pending_) return;  // stopped with nothing to do
      std::function<void()> job = std::move(job_);
      pending_ = false;
      lock.unlock();
      job();  // noexcept by contract
      job = nullptr;
      lock.lock();
      done_ = true;
      cv_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool pending_ = false, done_ = false, stop_ = false;
  std::thread thread_;  // last: starts once the fields above exist
};

Decryptor::Decryptor(const KeyPair& reader, Sink sink) : reader_(reader), sink_(std::move(sink)) {}

Decryptor::~Decryptor() {
  worker_.reset();
  wipe(out_);
  wipe(buffer_);
}

void Decryptor::update(std::string_view in) {
  if (finished_) throw Error(ErrorKind::generic, "Crypt4GH decryptor used after finish");
  feed(in);
  flush();
}

void Decryptor::feed(std::string_view in) {
  if (!header_) {
    buffer_.append(in);
    std::size_t need = 0;
    header_ = parse_header(buffer_, reader_, &need);
    if (!header_) return;
    if (header_->edit_list) edit_left_ = (*header_->edit_list)[0];
    std::string rest = buffer_.substr(header_->length);
    buffer_.clear();
    feed(rest);
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
    if (out_.size() != batch_size) out_.resize(batch_size);
    std::size_t room = (batch_size - out_len_) / segment_size;
    if (room == 0) {
      flush();
      room = batch_size / segment_size;
    }
    const std::size_t count = std::min(in.size() / cipher_segment_size, room);
    if (!header_->edit_list && count >= parallel_min_segments) {
      take_segments(in.substr(0, count * cipher_segment_size), count);
      in.remove_prefix(count * cipher_segment_size);
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        take_segment(in.substr(0, cipher_segment_size));
        in.remove_prefix(cipher_segment_size);
      }
    }
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
  flush();
  finished_ = true;
}

// Each segment is decrypted straight into the batch, where the edit list (if any) squeezes out what it skips.
void Decryptor::take_segment(std::string_view segment) {
  if (out_.size() != batch_size) out_.resize(batch_size);
  if (batch_size - out_len_ < segment_size) flush();
  char* dst = out_.data() + out_len_;
  std::size_t n = 0;
  try {
    n = detail::decrypt_segment_into(*header_, segment_index_, segment, reinterpret_cast<unsigned char*>(dst));
  } catch (...) {
    flush();  // what came before the bad segment, as when each segment was handed over on its own
    throw;
  }
  ++segment_index_;
  out_len_ += keep(dst, n);
}

// `count` whole segments (room for them in the batch, no edit list), shared by this thread and the worker: each
// takes the next segment not yet taken, with its own cipher context, so a thread the scheduler holds back does
// less. A failure stops the taking of later segments; every earlier one is still decrypted. On failure the
// plaintext before the first bad segment is handed over and that segment's error thrown, as one at a time.
void Decryptor::take_segments(std::string_view run, std::size_t count) {
  struct Failure {
    std::size_t index = static_cast<std::size_t>(-1);
    std::exception_ptr error;
  };
  unsigned char* dst = reinterpret_cast<unsigned char*>(out_.data() + out_len_);
  const std::uint64_t first = segment_index_;
  const Header& header = *header_;
  std::atomic<std::size_t> next{0}, limit{count};
  auto work = [&](Failure& failure) noexcept {
    for (std::size_t i = next.fetch_add(1); i < limit.load(); i = next.fetch_add(1)) {
      try {
        detail::decrypt_segment_into(header, first + i, run.substr(i * cipher_segment_size, cipher_segment_size),
                                     dst + i * segment_size);
      } catch (...) {
        if (i < failure.index) failure = {i, std::current_exception()};
        std::size_t seen = limit.load();
        while (i < seen && !limit.compare_exchange_weak(seen, i)) {
        }
      }
    }
  };
  Failure mine, theirs;
  if (!worker_) worker_ = std::make_unique<Worker>();
  worker_->start([&] { work(theirs); });
  work(mine);
  worker_->wait();  // always: `theirs`, `next`, `limit` and `dst` are shared until the worker is done
  const Failure& bad = mine.index < theirs.index ? mine : theirs;
  const std::size_t good = bad.error ? bad.index : count;
  segment_index_ += good;
  out_len_ += good * segment_size;
  if (bad.error) {
    flush();
    std::rethrow_exception(bad.error);
  }
}

void Decryptor::flush() {
  if (out_len_ == 0) return;
  const std::size_t n = out_len_;
  out_len_ = 0;
  sink_(std::string_view(out_.data(), n));
}

std::size_t Decryptor::keep(char* plain, std::size_t n) {
  if (!header_->edit_list) return n;
  const auto& el = *header_->edit_list;
  std::size_t kept = 0, pos = 0;
  while (true) {
    while (edit_index_ < el.size() && edit_left_ == 0) {
      ++edit_index_;
      if (edit_index_ < el.size()) edit_left_ = el[edit_index_];
    }
    if (pos == n) return kept;
    if (edit_index_ >= el.size()) {  // the list ended with a skip (an odd length): the rest is kept
      if (el.size() % 2 == 0) return kept;
      std::memmove(plain + kept, plain + pos, n - pos);
      return kept + (n - pos);
    }
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(edit_left_, n - pos));
    if (edit_index_ % 2 == 1) {
      std::memmove(plain + kept, plain + pos, take);
      kept += take;
    }
    pos += take;
    edit_left_ -= take;
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
  flush();
}

void Encryptor::finish() {
  if (finished_) return;
  if (!buffer_.empty()) seal(buffer_);
  wipe(buffer_);
  flush();
  finished_ = true;
}

// nonce || ciphertext || MAC, sealed straight into the batch.
void Encryptor::seal(std::string_view plain) {
  if (out_.size() != batch_size) out_.resize(batch_size);
  if (batch_size - out_len_ < plain.size() + segment_overhead) flush();
  auto* dst = reinterpret_cast<unsigned char*>(out_.data() + out_len_);
  random_bytes(dst, 12);
  aead_seal_into(data_key_.data(), dst, plain, dst + 12);
  out_len_ += plain.size() + segment_overhead;
}

void Encryptor::flush() {
  if (out_len_ == 0) return;
  const std::size_t n = out_len_;
  out_len_ = 0;
  sink_(std::string_view(out_.data(), n));
}

}  // namespace impact::crypt4gh
