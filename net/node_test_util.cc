#include "net/node_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace troupe::nettest {

NodeOptions Options(std::string name, std::string secret) {
  NodeOptions o;
  o.name = std::move(name);
  o.cluster_secret = std::move(secret);
  return o;
}

namespace {

std::shared_ptr<spdlog::logger> RingLogger(const std::string& name,
                                           const std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt>& sink) {
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_level(spdlog::level::info);
  return logger;
}

}  // namespace

LoggedSystem::LoggedSystem(const std::string& name)
    : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)),
      system(ActorSystemOptions{.workers = 1, .name = name, .logger = RingLogger(name, sink)}) {}

int LoggedSystem::CountLines(const std::vector<std::string>& parts) const {
  int n = 0;
  for (const std::string& line : sink->last_formatted()) {
    bool all = true;
    for (const std::string& p : parts) all = all && absl::StrContains(line, p);
    n += all ? 1 : 0;
  }
  return n;
}

std::string LoggedSystem::All() const { return absl::StrJoin(sink->last_formatted(), ""); }

void EventLog::Add(std::string line, uint64_t incarnation) {
  std::lock_guard<std::mutex> lock(mu_);
  lines_.emplace_back(std::move(line), incarnation);
  changed_.notify_all();
}

int EventLog::WaitFor(const std::string& line, absl::Duration timeout, size_t from) {
  const absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    for (size_t i = from; i < lines_.size(); ++i) {
      if (lines_[i].first == line) return static_cast<int>(i);
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return -1;
    changed_.wait_for(lock, absl::ToChronoMilliseconds(left) + std::chrono::milliseconds(1));
  }
}

std::vector<std::string> EventLog::Lines() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [line, incarnation] : lines_) out.push_back(line);
  return out;
}

uint64_t EventLog::IncarnationAt(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  return index < lines_.size() ? lines_[index].second : 0;
}

size_t EventLog::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_.size();
}

std::shared_ptr<EventLog> Record(ActorSystem& sys, Node& node) {
  auto log = std::make_shared<EventLog>();
  node.Subscribe(sys.Spawn<Recorder>(log));
  return log;
}

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  return sa;
}

}  // namespace

TcpRelay::TcpRelay() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(0);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  listen(listen_fd_, 16);
  socklen_t length = sizeof(sa);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &length);
  address_ = absl::StrCat("127.0.0.1:", ntohs(sa.sin_port));
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { Run(); });
}

TcpRelay::~TcpRelay() {
  stop_.store(true);
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void TcpRelay::SetTarget(const std::string& target) {
  std::pair<std::string, std::string> hp = absl::StrSplit(target, absl::MaxSplits(':', 1));
  int port = 0;
  (void)absl::SimpleAtoi(hp.second, &port);
  target_port_.store(port);
}

void TcpRelay::Pause() {
  paused_.store(true);
  Wake();
}

void TcpRelay::Resume() { paused_.store(false); }

void TcpRelay::Wake() {
  const char c = 'x';
  (void)!write(wake_[1], &c, 1);
}

void TcpRelay::Run() {
  std::vector<std::pair<int, int>> pairs;  // accepted, dialled
  char buffer[65536];
  auto close_all = [&pairs] {
    for (const auto& [a, b] : pairs) {
      shutdown(a, SHUT_RDWR);
      shutdown(b, SHUT_RDWR);
      close(a);
      close(b);
    }
    pairs.clear();
  };
  while (!stop_.load()) {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& [a, b] : pairs) {
      fds.push_back({a, POLLIN, 0});
      fds.push_back({b, POLLIN, 0});
    }
    if (poll(fds.data(), fds.size(), -1) <= 0) continue;
    if (fds[0].revents != 0) {
      while (read(wake_[0], buffer, sizeof(buffer)) > 0) {
      }
      if (paused_.load()) close_all();
      continue;
    }
    std::vector<std::pair<int, int>> alive;
    for (size_t i = 0; i < pairs.size(); ++i) {
      bool open = true;
      for (int side = 0; side < 2 && open; ++side) {
        const pollfd& p = fds[2 + 2 * i + side];
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int from = side == 0 ? pairs[i].first : pairs[i].second;
        const int to = side == 0 ? pairs[i].second : pairs[i].first;
        const ssize_t n = read(from, buffer, sizeof(buffer));
        if (n <= 0) {
          open = false;
          break;
        }
        if (side == 0) {
          const uint64_t at = forwarded_.fetch_add(static_cast<uint64_t>(n));
          const uint64_t flip = flip_at_.load();
          if (flip >= at && flip < at + static_cast<uint64_t>(n)) buffer[flip - at] ^= 0x01;
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = send(to, buffer + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
          if (w <= 0) {
            open = false;
            break;
          }
          done += w;
        }
      }
      if (open) {
        alive.push_back(pairs[i]);
      } else {
        close(pairs[i].first);
        close(pairs[i].second);
      }
    }
    pairs.swap(alive);
    // After the loop above, which indexes fds by the pairs polled.
    if (fds[1].revents & POLLIN) {
      const int accepted = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted >= 0) {
        const int dialled = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa = Loopback(target_port_.load());
        if (!paused_.load() && connect(dialled, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
          pairs.emplace_back(accepted, dialled);
        } else {
          close(accepted);
          close(dialled);
        }
      }
    }
  }
  close_all();
}

}  // namespace troupe::nettest
