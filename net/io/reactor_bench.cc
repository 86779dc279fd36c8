// Loopback benchmark of the reactor: one-way frame throughput and ping-pong
// round-trip time, between two Reactors in one process. Figures:
// docs/net-io.md.
//
//   ./tools/bazel run -c opt //net/io:reactor_bench
//
// One-way: a sender thread sends --frames frames of --payload bytes on one
// connection as fast as Send takes them (a refused Send, the outbound bound
// reached, is retried after a yield); the receiver counts them. The time runs
// from the first Send to the last frame received.
//
// Ping-pong: one frame in flight; the client's handler sends the next frame
// as soon as the echo arrives (on its I/O thread), and records each round
// trip.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "net/io/reactor.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/stdout_sinks.h"

ABSL_FLAG(int64_t, frames, 2000000, "frames per one-way run");
ABSL_FLAG(int64_t, payload, 32, "payload bytes per frame");
ABSL_FLAG(int64_t, pings, 20000, "round trips per ping-pong run");
ABSL_FLAG(int, reps, 3, "runs of each measurement (the median is reported)");
ABSL_FLAG(int64_t, max_outbound_bytes, 4 << 20, "the sending connection's outbound bound");

namespace troupe::net {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(120);

std::shared_ptr<spdlog::logger> Logger() {
  auto logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(spdlog::level::warn);
  return logger;
}

ReactorOptions Options(const std::string& name) {
  ReactorOptions options;
  options.name = name;
  options.logger = Logger();
  return options;
}

// Counts frames; fulfils `done` at `expected`.
class CountingHandler : public ConnectionHandler {
 public:
  explicit CountingHandler(int64_t expected) : expected_(expected) {}
  void OnFrame(Connection&, absl::Span<const uint8_t> payload) override {
    bytes_ += static_cast<int64_t>(payload.size());
    if (++count_ == expected_) done_.set_value();
  }
  void OnClosed(Connection&, const absl::Status&) override {}
  std::future<void> done() { return done_.get_future(); }
  int64_t bytes() const { return bytes_; }

 private:
  const int64_t expected_;
  int64_t count_ = 0;  // the I/O thread only
  int64_t bytes_ = 0;
  std::promise<void> done_;
};

class EchoHandler : public ConnectionHandler {
 public:
  void OnFrame(Connection& connection, absl::Span<const uint8_t> payload) override {
    (void)connection.Send(OutFrame::Copy(payload));
  }
  void OnClosed(Connection&, const absl::Status&) override {}
};

// Sends the next ping when the echo of the last one arrives.
class PingHandler : public ConnectionHandler {
 public:
  PingHandler(int64_t pings, size_t payload) : pings_(pings), payload_(payload) { rtts_.reserve(pings); }
  void Start(Connection& connection) {
    sent_at_ = Clock::now();
    (void)connection.Send(OutFrame::WithPayload(payload_));
  }
  void OnFrame(Connection& connection, absl::Span<const uint8_t>) override {
    const Clock::time_point now = Clock::now();
    rtts_.push_back(std::chrono::duration<double, std::micro>(now - sent_at_).count());
    if (static_cast<int64_t>(rtts_.size()) == pings_) {
      done_.set_value();
      return;
    }
    sent_at_ = Clock::now();
    (void)connection.Send(OutFrame::WithPayload(payload_));
  }
  void OnClosed(Connection&, const absl::Status&) override {}
  std::future<void> done() { return done_.get_future(); }
  // Valid once done() is ready.
  std::vector<double>& rtts() { return rtts_; }

 private:
  const int64_t pings_;
  const size_t payload_;
  Clock::time_point sent_at_;
  std::vector<double> rtts_;
  std::promise<void> done_;
};

std::shared_ptr<Connection> ConnectOrDie(Reactor& reactor, const std::string& address, ConnectionOptions options,
                                         std::shared_ptr<ConnectionHandler> handler) {
  std::promise<absl::StatusOr<std::shared_ptr<Connection>>> promise;
  auto future = promise.get_future();
  reactor.Connect(address, options, std::move(handler),
                  [&promise](absl::StatusOr<std::shared_ptr<Connection>> c) { promise.set_value(std::move(c)); });
  if (future.wait_for(kDeadline) != std::future_status::ready) {
    std::fprintf(stderr, "connect: no answer\n");
    std::exit(1);
  }
  absl::StatusOr<std::shared_ptr<Connection>> c = future.get();
  if (!c.ok()) {
    std::fprintf(stderr, "connect: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return *c;
}

std::string ListenOrDie(Reactor& reactor, std::function<std::shared_ptr<ConnectionHandler>()> make) {
  absl::StatusOr<std::string> bound =
      reactor.Listen("127.0.0.1:0", {}, [make](Connection&) -> std::shared_ptr<ConnectionHandler> { return make(); });
  if (!bound.ok()) {
    std::fprintf(stderr, "listen: %s\n", bound.status().ToString().c_str());
    std::exit(1);
  }
  return *bound;
}

struct OneWay {
  double seconds = 0;
  double frames_per_second = 0;
  double megabytes_per_second = 0;  // payload bytes, 10^6
  double frames_per_write = 0;
  uint64_t refused = 0;
};

OneWay RunOneWay(int64_t frames, size_t payload) {
  Reactor server(Options("bench-srv"));
  Reactor client(Options("bench-cli"));
  auto counter = std::make_shared<CountingHandler>(frames);
  std::future<void> done = counter->done();
  const std::string address = ListenOrDie(server, [counter] { return counter; });
  ConnectionOptions options;
  options.max_outbound_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_outbound_bytes));
  std::shared_ptr<Connection> connection = ConnectOrDie(client, address, options, std::make_shared<EchoHandler>());

  uint64_t refused = 0;
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < frames; ++i) {
    OutFrame frame = OutFrame::WithPayload(payload);
    std::memset(frame.payload(), static_cast<int>(i), payload);
    // Bounded by the deadline: a refused Send waits for the I/O thread to
    // make room.
    for (;;) {
      absl::Status s = connection->Send(std::move(frame));
      if (s.ok()) break;
      if (s.code() != absl::StatusCode::kResourceExhausted || Clock::now() - start > kDeadline) {
        std::fprintf(stderr, "send: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      ++refused;
      std::this_thread::yield();
      frame = OutFrame::WithPayload(payload);
    }
  }
  if (done.wait_for(kDeadline) != std::future_status::ready) {
    std::fprintf(stderr, "one-way: frames did not all arrive\n");
    std::exit(1);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const ConnectionStats stats = connection->stats();
  OneWay r;
  r.seconds = seconds;
  r.frames_per_second = static_cast<double>(frames) / seconds;
  r.megabytes_per_second = static_cast<double>(counter->bytes()) / seconds / 1e6;
  r.frames_per_write = static_cast<double>(stats.frames_out) / static_cast<double>(std::max<uint64_t>(1, stats.writev_calls));
  r.refused = refused;
  return r;
}

struct PingPong {
  double p50_us = 0, p99_us = 0, mean_us = 0;
};

PingPong RunPingPong(int64_t pings, size_t payload) {
  Reactor server(Options("bench-srv"));
  Reactor client(Options("bench-cli"));
  const std::string address = ListenOrDie(server, [] { return std::make_shared<EchoHandler>(); });
  auto pinger = std::make_shared<PingHandler>(pings, payload);
  std::future<void> done = pinger->done();
  std::shared_ptr<Connection> connection = ConnectOrDie(client, address, {}, pinger);
  pinger->Start(*connection);
  if (done.wait_for(kDeadline) != std::future_status::ready) {
    std::fprintf(stderr, "ping-pong: did not finish\n");
    std::exit(1);
  }
  std::vector<double>& rtts = pinger->rtts();
  std::sort(rtts.begin(), rtts.end());
  PingPong r;
  r.p50_us = rtts[rtts.size() / 2];
  r.p99_us = rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)];
  double sum = 0;
  for (double x : rtts) sum += x;
  r.mean_us = sum / static_cast<double>(rtts.size());
  return r;
}

template <class T, class F>
T Median(std::vector<T> runs, F key) {
  std::sort(runs.begin(), runs.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
  return runs[runs.size() / 2];
}

}  // namespace
}  // namespace troupe::net

int main(int argc, char** argv) {
  using namespace troupe::net;
  absl::ParseCommandLine(argc, argv);
  const int64_t frames = absl::GetFlag(FLAGS_frames);
  const auto payload = static_cast<size_t>(absl::GetFlag(FLAGS_payload));
  const int64_t pings = absl::GetFlag(FLAGS_pings);
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));

  (void)RunOneWay(std::min<int64_t>(frames, 100000), payload);  // warm-up, untimed
  std::vector<OneWay> one_way;
  for (int i = 0; i < reps; ++i) one_way.push_back(RunOneWay(frames, payload));
  std::vector<PingPong> ping_pong;
  for (int i = 0; i < reps; ++i) ping_pong.push_back(RunPingPong(pings, payload));

  std::printf("reactor_bench: loopback, 1 I/O thread per reactor, %zu-byte payloads, %d runs (median)\n", payload,
              reps);
  for (const OneWay& r : one_way) {
    std::printf("  one-way run: %.2f M frames/s, %.1f MB/s, %.0f frames per write, %llu refused sends\n",
                r.frames_per_second / 1e6, r.megabytes_per_second, r.frames_per_write,
                static_cast<unsigned long long>(r.refused));
  }
  const OneWay m = Median(one_way, [](const OneWay& r) { return r.frames_per_second; });
  std::printf("one-way:   %.2f M frames/s  %.1f MB/s payload  %.0f frames per write\n", m.frames_per_second / 1e6,
              m.megabytes_per_second, m.frames_per_write);
  for (const PingPong& r : ping_pong) {
    std::printf("  ping-pong run: p50 %.1f us, p99 %.1f us, mean %.1f us\n", r.p50_us, r.p99_us, r.mean_us);
  }
  const PingPong p = Median(ping_pong, [](const PingPong& r) { return r.p50_us; });
  std::printf("ping-pong: RTT p50 %.1f us  p99 %.1f us  (%lld round trips per run)\n", p.p50_us, p.p99_us,
              static_cast<long long>(pings));
  return 0;
}
