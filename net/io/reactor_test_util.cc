#include "net/io/reactor_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace troupe::net::testing {
namespace {

std::chrono::nanoseconds Chrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

int RemainingMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

bool ParseLoopback(const std::string& address, sockaddr_in& out) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  out = {};
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  return inet_pton(AF_INET, address.substr(0, colon).c_str(), &out.sin_addr) == 1;
}

std::string SocketName(int fd) {
  sockaddr_in addr{};
  socklen_t length = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return "";
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
  return absl::StrCat(text, ":", ntohs(addr.sin_port));
}

}  // namespace

// --- TestLog ---------------------------------------------------------------

TestLog::TestLog()
    : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)),
      logger(std::make_shared<spdlog::logger>("test", sink)) {
  logger->set_level(spdlog::level::debug);
}

int TestLog::CountLines(const std::vector<std::string>& parts) const {
  int count = 0;
  for (const std::string& line : sink->last_formatted()) {
    bool all = true;
    for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
    count += all ? 1 : 0;
  }
  return count;
}

std::string TestLog::All() const {
  std::string all;
  for (const std::string& line : sink->last_formatted()) all += line;
  return all;
}

// --- RecordingHandler ------------------------------------------------------

void RecordingHandler::OnFrame(Connection& connection, absl::Span<const uint8_t> payload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_calls_ > 0) ++frames_after_close_;
    if (reinterpret_cast<uintptr_t>(payload.data()) % 8 != 0) ++misaligned_;
    frames_.emplace_back(payload.begin(), payload.end());
  }
  cv_.notify_all();
  if (on_frame) on_frame(connection, payload);
}

void RecordingHandler::OnReadDone(Connection&) {
  std::lock_guard<std::mutex> lock(mu_);
  ++read_dones_;
  if (frames_.size() == frames_at_read_done_) ++empty_read_dones_;
  frames_at_read_done_ = frames_.size();
}

int RecordingHandler::read_dones() {
  std::lock_guard<std::mutex> lock(mu_);
  return read_dones_;
}

int RecordingHandler::empty_read_dones() {
  std::lock_guard<std::mutex> lock(mu_);
  return empty_read_dones_;
}

size_t RecordingHandler::frames_at_read_done() {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_at_read_done_;
}

void RecordingHandler::OnClosed(Connection&, const absl::Status& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++closed_calls_;
    // A copy of its own, not sharing the reactor's: see docs/net-io.md on
    // absl::Status under TSan.
    reason_ = absl::Status(reason.code(), reason.message());
  }
  cv_.notify_all();
}

bool RecordingHandler::WaitForFrames(size_t n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, Chrono(timeout), [&] { return frames_.size() >= n; });
}

absl::Status RecordingHandler::WaitForClose(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, Chrono(timeout), [&] { return closed_calls_ > 0; })) {
    return absl::DeadlineExceededError("test: OnClosed did not come");
  }
  return reason_;
}

bool RecordingHandler::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_calls_ > 0;
}

std::vector<Bytes> RecordingHandler::frames() {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_;
}

size_t RecordingHandler::frame_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_.size();
}

int RecordingHandler::closed_calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_calls_;
}

int RecordingHandler::frames_after_close() {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_after_close_;
}

int RecordingHandler::misaligned() {
  std::lock_guard<std::mutex> lock(mu_);
  return misaligned_;
}

std::shared_ptr<RecordingHandler> EchoHandler() {
  auto handler = std::make_shared<RecordingHandler>();
  handler->on_frame = [](Connection& connection, absl::Span<const uint8_t> payload) {
    (void)connection.Send(OutFrame::Copy(payload));
  };
  return handler;
}

// --- TestServer ------------------------------------------------------------

TestServer::TestServer(Reactor& reactor, ConnectionOptions options,
                       std::function<std::shared_ptr<RecordingHandler>()> make, std::string address) {
  absl::StatusOr<std::string> bound = reactor.Listen(
      address, options, [state = state_, make](Connection& connection) -> std::shared_ptr<ConnectionHandler> {
        std::shared_ptr<RecordingHandler> handler = make();
        {
          std::lock_guard<std::mutex> lock(state->mu);
          state->connections.push_back(connection.shared_from_this());
          state->handlers.push_back(handler);
        }
        state->cv.notify_all();
        return handler;
      });
  if (bound.ok()) {
    address_ = *bound;
  } else {
    listen_status_ = bound.status();
  }
}

bool TestServer::WaitForAccepted(size_t n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, Chrono(timeout), [&] { return state_->connections.size() > n; });
}

std::shared_ptr<Connection> TestServer::connection(size_t i) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return i < state_->connections.size() ? state_->connections[i] : nullptr;
}

std::shared_ptr<RecordingHandler> TestServer::handler(size_t i) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return i < state_->handlers.size() ? state_->handlers[i] : nullptr;
}

// --- Connect ---------------------------------------------------------------

absl::StatusOr<std::shared_ptr<Connection>> ConnectAndWait(Reactor& reactor, const std::string& address,
                                                           ConnectionOptions options,
                                                           std::shared_ptr<ConnectionHandler> handler) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<std::shared_ptr<Connection>>>>();
  std::future<absl::StatusOr<std::shared_ptr<Connection>>> result = promise->get_future();
  reactor.Connect(address, options, std::move(handler),
                  [promise](absl::StatusOr<std::shared_ptr<Connection>> outcome) {
                    promise->set_value(std::move(outcome));
                  });
  if (result.wait_for(Chrono(kWait)) != std::future_status::ready) {
    return absl::DeadlineExceededError("test: Connect's callback did not come");
  }
  return result.get();
}

// --- Frames ----------------------------------------------------------------

Bytes Pattern(size_t size, uint64_t seed) {
  Bytes bytes(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = static_cast<uint8_t>(x);
  }
  return bytes;
}

OutFrame NumberedFrame(uint64_t seq, size_t size) {
  OutFrame frame = OutFrame::WithPayload(size);
  std::memcpy(frame.payload(), &seq, sizeof(seq));
  const Bytes rest = Pattern(size - sizeof(seq), seq);
  if (!rest.empty()) std::memcpy(frame.payload() + sizeof(seq), rest.data(), rest.size());
  return frame;
}

uint64_t FrameNumber(absl::Span<const uint8_t> payload) {
  uint64_t seq = ~uint64_t{0};
  if (payload.size() >= sizeof(seq)) std::memcpy(&seq, payload.data(), sizeof(seq));
  return seq;
}

Bytes Wire(absl::Span<const uint8_t> payload) {
  const OutFrame frame = OutFrame::Copy(payload);
  return Bytes(frame.bytes().begin(), frame.bytes().end());
}

// --- RawClient -------------------------------------------------------------

RawClient::RawClient(const std::string& address, int receive_buffer) {
  sockaddr_in addr;
  if (!ParseLoopback(address, addr)) return;
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  if (receive_buffer > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) Close();
}

RawClient::~RawClient() { Close(); }

void RawClient::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool RawClient::Write(absl::Span<const uint8_t> bytes) {
  size_t done = 0;
  // Bounded: each pass writes at least one byte or fails.
  while (done < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool RawClient::Write(const std::string& text) {
  return Write(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

bool RawClient::WaitForPeerClose(absl::Duration timeout, Bytes* received) {
  const absl::Time deadline = absl::Now() + timeout;
  uint8_t buffer[4096];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, RemainingMs(deadline));
    if (ready == 0) return false;
    if (ready < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == ECONNRESET || errno == EPIPE;
    }
    if (received != nullptr) received->insert(received->end(), buffer, buffer + n);
  }
}

bool RawClient::ReadExactly(size_t n, Bytes& out, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const size_t target = out.size() + n;
  uint8_t buffer[4096];
  while (out.size() < target) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, RemainingMs(deadline));
    if (ready == 0) return false;
    if (ready < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    const ssize_t got = recv(fd_, buffer, std::min(sizeof(buffer), target - out.size()), 0);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return false;
    }
    out.insert(out.end(), buffer, buffer + got);
  }
  return true;
}

bool RawClient::ReadFrame(Bytes& payload, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Bytes prefix;
  if (!ReadExactly(4, prefix, timeout)) return false;
  const size_t length = size_t{prefix[0]} | size_t{prefix[1]} << 8 | size_t{prefix[2]} << 16 | size_t{prefix[3]} << 24;
  payload.clear();
  return ReadExactly(length, payload, std::max(deadline - absl::Now(), absl::ZeroDuration()));
}

std::string RawClient::local_address() const { return SocketName(fd_); }

// --- PortWithoutListener ---------------------------------------------------

PortWithoutListener::PortWithoutListener() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (fd_ >= 0 && bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    address_ = SocketName(fd_);
  }
}

PortWithoutListener::~PortWithoutListener() {
  if (fd_ >= 0) ::close(fd_);
}

ReactorOptions LoggedReactorOptions(const TestLog& log, int threads, std::string name) {
  ReactorOptions options;
  options.threads = threads;
  options.name = std::move(name);
  options.logger = log.logger;
  return options;
}

SilentPeer::SilentPeer(Reactor& reactor, ConnectionOptions options)
    : server_(reactor, options), raw_(server_.address(), /*receive_buffer=*/4096) {
  if (raw_.connected() && server_.WaitForAccepted(0)) connection_ = server_.connection(0);
}

}  // namespace troupe::net::testing
