#include "impact/retry.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace impact::http {

bool is_retryable_status(long status) noexcept {
  switch (status) {
    case 408: case 429: case 500: case 502: case 503: case 504: return true;
    default: return false;
  }
}

std::chrono::milliseconds backoff(const RetryPolicy& policy, int attempt_number, std::mt19937_64& rng) {
  using std::chrono::milliseconds;
  long long d = policy.base.count();
  for (int i = 1; i < attempt_number && d < policy.cap.count(); ++i) d *= 2;
  d = std::min<long long>(d, policy.cap.count());
  std::uniform_int_distribution<long long> dist(d / 2, std::max<long long>(d / 2, d));
  return milliseconds(dist(rng));
}

RetryDecision decide_retry(const RetryPolicy& policy, const Attempt& a,
                           std::chrono::system_clock::time_point now, std::mt19937_64& rng) {
  RetryDecision no{};
  if (a.number >= policy.max_attempts) return no;
  const bool no_response = a.status == 0;
  if (no_response) {
    // Without a response we cannot know whether a non-idempotent request took effect, unless it never
    // left this machine (name resolution or the connection failed).
    bool never_sent = a.failed_in == NetPhase::dns || a.failed_in == NetPhase::connect;
    if (!a.idempotent && !never_sent) return no;
    return {true, backoff(policy, a.number, rng)};
  }
  if (!is_retryable_status(a.status)) return no;
  // 429 says the request was not processed; any other status is retried only when repeating is safe.
  if (!a.idempotent && a.status != 429) return no;
  auto wait = backoff(policy, a.number, rng);
  if (a.retry_after) {
    auto ra = parse_retry_after(*a.retry_after, now);
    if (ra) {
      auto ra_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*ra);
      if (ra_ms > policy.max_retry_after) return no;  // the caller reports the server's wish instead
      wait = ra_ms;
    }
  }
  return {true, wait};
}

namespace {

bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

int month_index(std::string_view m) {
  static constexpr std::array<std::string_view, 12> names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == m) return static_cast<int>(i) + 1;
  return 0;
}

bool parse_hms(std::string_view s, int& h, int& m, int& sec) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  return parse_int(s.substr(0, 2), h) && parse_int(s.substr(3, 2), m) && parse_int(s.substr(6, 2), sec) &&
         h < 24 && m < 60 && sec <= 60;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) parts.push_back(s.substr(i, j - i));
    i = j;
  }
  return parts;
}

std::optional<std::chrono::system_clock::time_point> make_time(int y, int mon, int d, int h, int mi, int s) {
  using namespace std::chrono;
  // system_clock counts nanoseconds in 64 bits: it ends in 2262. Later dates are refused, not wrapped.
  if (y < 1970 || y > 2200 || mon < 1 || mon > 12 || d < 1) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mon)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return system_clock::time_point(sys_days(ymd).time_since_epoch() + hours(h) + minutes(mi) + seconds(s));
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.size() > 64) return std::nullopt;
  auto p = split_ws(v);
  int d = 0, y = 0, h = 0, mi = 0, s = 0;
  if (p.size() == 6 && p[0].size() == 4 && p[0][3] == ',' && p[5] == "GMT") {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    int mon = month_index(p[2]);
    if (p[1].size() != 2 || p[3].size() != 4 || !parse_int(p[1], d) || !mon || !parse_int(p[3], y) ||
        !parse_hms(p[4], h, mi, s))
      return std::nullopt;
    return make_time(y, mon, d, h, mi, s);
  }
  if (p.size() == 4 && !p[0].empty() && p[0].back() == ',' && p[3] == "GMT") {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    auto dm = p[1];
    if (dm.size() != 9 || dm[2] != '-' || dm[6] != '-') return std::nullopt;
    int mon = month_index(dm.substr(3, 3));
    int yy = 0;
    if (!parse_int(dm.substr(0, 2), d) || !mon || !parse_int(dm.substr(7, 2), yy) || !parse_hms(p[2], h, mi, s))
      return std::nullopt;
    y = yy < 70 ? 2000 + yy : 1900 + yy;
    return make_time(y, mon, d, h, mi, s);
  }
  if (p.size() == 5) {
    // asctime: Sun Nov  6 08:49:37 1994
    int mon = month_index(p[1]);
    if (!mon || p[2].size() > 2 || !parse_int(p[2], d) || !parse_hms(p[3], h, mi, s) || p[4].size() != 4 ||
        !parse_int(p[4], y))
      return std::nullopt;
    return make_time(y, mon, d, h, mi, s);
  }
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v, std::chrono::system_clock::time_point now) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::chrono::seconds(999'999'999);  // absurdly long: caller will not wait
    int n = 0;
    if (!parse_int(v, n)) return std::nullopt;
    return std::chrono::seconds(n);
  }
  auto t = parse_http_date(v);
  if (!t) return std::nullopt;
  auto diff = std::chrono::duration_cast<std::chrono::seconds>(*t - now);
  return diff.count() < 0 ? std::chrono::seconds(0) : diff;
}

}  // namespace impact::http
