// A tiny loopback HTTP/1.1 server for testing the HTTP layer in-process: each test scripts the replies
// and then inspects what arrived. Binds 127.0.0.1 on a free port; every wait in it is bounded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace impact::test {

struct SeenRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  int connection = 0;
};

struct Reply {
  std::string bytes;          // raw response
  bool close = false;         // close the connection after sending
  bool stall = false;         // send `bytes`, then go silent until the server stops
  int trickle_ms = 0;         // with `stall`: send one more byte every this many ms instead of going silent
};

inline Reply reply(int status, const std::string& body = "", const std::string& extra_headers = "") {
  return {"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
              extra_headers + "\r\n" + body,
          false, false};
}

class MiniServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit MiniServer(Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0)
      throw std::runtime_error("mini server: bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~MiniServer() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : workers_) t.join();
    ::close(fd_);
  }
  MiniServer(const MiniServer&) = delete;
  MiniServer& operator=(const MiniServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<SeenRequest> requests() const {
    std::lock_guard l(mu_);
    return seen_;
  }
  int connections() const { return connections_; }
  int max_concurrent() const { return max_concurrent_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      int id = ++connections_;
      std::lock_guard l(mu_);
      workers_.emplace_back([this, c, id] { serve(c, id); });
    }
  }

  // Reads until `pred(buffer)` holds; false on close, error or stop.
  bool read_until(int c, std::string& buf, const std::function<bool(const std::string&)>& pred) {
    char tmp[8192];
    while (!pred(buf)) {
      if (stop_) return false;
      pollfd p{c, POLLIN, 0};
      int r = ::poll(&p, 1, 20);
      if (r == 0) continue;
      ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
    return true;
  }

  void serve(int c, int id) {
    int now = ++active_;
    int prev = max_concurrent_.load();
    while (now > prev && !max_concurrent_.compare_exchange_weak(prev, now)) {
    }
    std::string buf;
    while (!stop_) {
      if (!read_until(c, buf, [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; })) break;
      auto end = buf.find("\r\n\r\n");
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      SeenRequest rq;
      rq.connection = id;
      auto eol = head.find("\r\n");
      std::string line = head.substr(0, eol);
      auto sp1 = line.find(' '), sp2 = line.rfind(' ');
      rq.method = line.substr(0, sp1);
      rq.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::size_t pos = eol == std::string::npos ? head.size() : eol + 2;
      while (pos < head.size()) {
        auto e = head.find("\r\n", pos);
        std::string h = head.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
        pos = e == std::string::npos ? head.size() : e + 2;
        auto colon = h.find(':');
        if (colon == std::string::npos) continue;
        std::string name = h.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
        std::string value = h.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        rq.headers[name] = value;
      }
      std::size_t length = rq.headers.count("content-length") ? std::stoul(rq.headers["content-length"]) : 0;
      if (!read_until(c, buf, [&](const std::string& b) { return b.size() >= length; })) break;
      rq.body = buf.substr(0, length);
      buf.erase(0, length);
      {
        std::lock_guard l(mu_);
        seen_.push_back(rq);
      }
      Reply r = handler_(rq);
      if (!r.bytes.empty()) ::send(c, r.bytes.data(), r.bytes.size(), MSG_NOSIGNAL);
      if (r.stall) {
        auto next = std::chrono::steady_clock::now();
        while (!stop_) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          if (r.trickle_ms <= 0 || std::chrono::steady_clock::now() < next) continue;
          next += std::chrono::milliseconds(r.trickle_ms);
          if (::send(c, "x", 1, MSG_NOSIGNAL) != 1) break;
        }
        break;
      }
      if (r.close || r.bytes.empty()) break;
    }
    --active_;
    ::close(c);
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, active_{0}, max_concurrent_{0};
  mutable std::mutex mu_;
  std::vector<SeenRequest> seen_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace impact::test
