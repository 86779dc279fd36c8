// Helpers for the reactor's tests: a handler that records what it hears, a
// logger that keeps its lines, a blocking raw-socket client for misbehaving
// peers, and synchronous wrappers around Connect. Every wait has a deadline;
// nothing sleeps to synchronize.

#ifndef TROUPE_NET_IO_REACTOR_TEST_UTIL_H_
#define TROUPE_NET_IO_REACTOR_TEST_UTIL_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "net/io/reactor.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"

namespace troupe::net::testing {

// How long a test waits for something that should happen at once.
inline constexpr absl::Duration kWait = absl::Seconds(10);

using Bytes = std::vector<uint8_t>;

// Polls `condition` every 2 ms until it holds (true) or `timeout` passes
// (false): for state another thread reaches on its own time, such as a
// counter the sending I/O thread bumps after the peer already read.
template <class Condition>
bool Eventually(Condition condition, absl::Duration timeout = kWait) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// A logger that keeps its last lines, for asserting what was logged.
struct TestLog {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
  TestLog();
  // Lines logged so far that contain every one of `parts`.
  int CountLines(const std::vector<std::string>& parts) const;
  std::string All() const;
};

// Joins threads still running when a test returns early (a failed ASSERT),
// instead of std::terminate; every thread here ends by a deadline.
class JoinOnExit {
 public:
  explicit JoinOnExit(std::vector<std::thread>& threads) : threads_(threads) {}
  ~JoinOnExit() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::vector<std::thread>& threads_;
};

// ReactorOptions for a test: `threads` I/O threads, lines to `log`.
ReactorOptions LoggedReactorOptions(const TestLog& log, int threads = 1, std::string name = "test-io");

// Records frames and the close reason. `on_frame`, if set, also runs for
// each frame (on the I/O thread), e.g. to echo it.
class RecordingHandler : public ConnectionHandler {
 public:
  std::function<void(Connection&, absl::Span<const uint8_t>)> on_frame;

  void OnFrame(Connection& connection, absl::Span<const uint8_t> payload) override;
  void OnReadDone(Connection& connection) override;
  void OnClosed(Connection& connection, const absl::Status& reason) override;

  // Waits until at least `n` frames arrived; false at the deadline.
  bool WaitForFrames(size_t n, absl::Duration timeout = kWait);
  // Waits for OnClosed; its reason, or DeadlineExceeded("test: ...").
  absl::Status WaitForClose(absl::Duration timeout = kWait);
  bool closed();
  std::vector<Bytes> frames();
  size_t frame_count();
  int closed_calls();
  int frames_after_close();
  int misaligned();
  // OnReadDone calls so far, those that came with no frame since the
  // previous one, and the frames that had arrived at the latest one.
  int read_dones();
  int empty_read_dones();
  size_t frames_at_read_done();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Bytes> frames_;
  int closed_calls_ = 0;
  int frames_after_close_ = 0;
  int misaligned_ = 0;
  int read_dones_ = 0;
  int empty_read_dones_ = 0;
  size_t frames_at_read_done_ = 0;
  absl::Status reason_;
};

// Echoes every frame back on its connection.
std::shared_ptr<RecordingHandler> EchoHandler();

// Listens on 127.0.0.1:0; every accepted connection gets a fresh handler
// from `make` and is remembered. Waits have deadlines.
class TestServer {
 public:
  TestServer(Reactor& reactor, ConnectionOptions options,
             std::function<std::shared_ptr<RecordingHandler>()> make = [] { return std::make_shared<RecordingHandler>(); },
             std::string address = "127.0.0.1:0");
  const std::string& address() const { return address_; }
  const absl::Status& listen_status() const { return listen_status_; }
  // Waits for the n-th accepted connection (0-based) and its handler.
  bool WaitForAccepted(size_t n, absl::Duration timeout = kWait);
  std::shared_ptr<Connection> connection(size_t i);
  std::shared_ptr<RecordingHandler> handler(size_t i);

 private:
  // Shared with the AcceptFn, which may outlive this object until the
  // reactor shuts down.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::shared_ptr<Connection>> connections;
    std::vector<std::shared_ptr<RecordingHandler>> handlers;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  absl::Status listen_status_;
  std::string address_;
};

// Connect, waiting for the outcome (with a deadline).
absl::StatusOr<std::shared_ptr<Connection>> ConnectAndWait(Reactor& reactor, const std::string& address,
                                                           ConnectionOptions options,
                                                           std::shared_ptr<ConnectionHandler> handler);

// A frame's payload: `seq` in the first 8 bytes, then `size - 8` bytes
// derived from it (size >= 8).
OutFrame NumberedFrame(uint64_t seq, size_t size = 32);
uint64_t FrameNumber(absl::Span<const uint8_t> payload);
// A payload of `size` bytes derived from `seed`.
Bytes Pattern(size_t size, uint64_t seed);
// The wire bytes of a frame holding `payload`.
Bytes Wire(absl::Span<const uint8_t> payload);

// A blocking client socket on loopback, for peers that misbehave.
class RawClient {
 public:
  // Connects to `address` ("127.0.0.1:port"); `receive_buffer` > 0 sets
  // SO_RCVBUF before connecting.
  explicit RawClient(const std::string& address, int receive_buffer = 0);
  ~RawClient();
  bool connected() const { return fd_ >= 0; }
  // The socket (blocking), e.g. for a TLS session of the test's own.
  int fd() const { return fd_; }
  // Writes all of `bytes`; false on error.
  bool Write(absl::Span<const uint8_t> bytes);
  bool Write(const std::string& text);
  // Reads until the peer closes (EOF or reset) or the deadline passes; true
  // if it closed. Bytes read are appended to `received` if given.
  bool WaitForPeerClose(absl::Duration timeout = kWait, Bytes* received = nullptr);
  // Reads exactly n bytes, or fails at the deadline.
  bool ReadExactly(size_t n, Bytes& out, absl::Duration timeout = kWait);
  // Reads one frame and sets `payload` to it, or fails at the deadline.
  bool ReadFrame(Bytes& payload, absl::Duration timeout = kWait);
  void Close();
  // "ip:port" of this client, as the server sees it.
  std::string local_address() const;

 private:
  int fd_ = -1;
};

// A server connection whose peer reads nothing: a listener on `reactor`
// with `options` (pin send_buffer_bytes to keep the kernel's share small)
// and a raw client with a 4 KiB receive buffer that never reads.
class SilentPeer {
 public:
  SilentPeer(Reactor& reactor, ConnectionOptions options);
  // The server's side, once accepted; nullptr if not within kWait.
  const std::shared_ptr<Connection>& connection() const { return connection_; }
  std::shared_ptr<RecordingHandler> handler() { return server_.handler(0); }
  RawClient& raw() { return raw_; }

 private:
  TestServer server_;
  RawClient raw_;
  std::shared_ptr<Connection> connection_;
};

// A loopback port with no listener: a socket bound to it and never listening
// holds it, so nothing else takes it while the test runs.
class PortWithoutListener {
 public:
  PortWithoutListener();
  ~PortWithoutListener();
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

}  // namespace troupe::net::testing

#endif  // TROUPE_NET_IO_REACTOR_TEST_UTIL_H_
