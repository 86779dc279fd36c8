// The reactor over loopback: round trips, ordering, concurrent senders,
// writev batching, closing, shutdown, connect errors, IPv6.
// Limits and timeouts: reactor_limits_test.cc.

#include "net/io/reactor.h"

#include <atomic>
#include <cstring>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/io/reactor_test_util.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::ConnectAndWait;
using testing::Eventually;
using testing::EchoHandler;
using testing::FrameNumber;
using testing::JoinOnExit;
using testing::LoggedReactorOptions;
using testing::NumberedFrame;
using testing::Pattern;
using testing::PortWithoutListener;
using testing::RecordingHandler;
using testing::TestLog;
using testing::TestServer;
using testing::kWait;

TEST(Reactor, ListenOnPortZeroReturnsTheBoundLoopbackAddress) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  absl::StatusOr<std::string> bound = reactor.Listen("127.0.0.1:0", {}, [](Connection&) { return nullptr; });
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_TRUE(absl::StartsWith(*bound, "127.0.0.1:"));
  EXPECT_NE(*bound, "127.0.0.1:0");
}

TEST(Reactor, AddressesThatDoNotParseAreInvalidArgumentNamingTheAddress) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  for (const std::string address : {"127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x", "::1:80", "[::1:80", "host:80",
                                    "", "1.2.3:80", "[zz]:80"}) {
    absl::StatusOr<std::string> bound = reactor.Listen(address, {}, [](Connection&) { return nullptr; });
    EXPECT_EQ(bound.status().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_TRUE(absl::StrContains(bound.status().message(), "\"" + address + "\"")) << bound.status();

    absl::StatusOr<std::shared_ptr<Connection>> connected =
        ConnectAndWait(reactor, address, {}, std::make_shared<RecordingHandler>());
    EXPECT_EQ(connected.status().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_TRUE(absl::StrContains(connected.status().message(), address)) << connected.status();
  }
}

TEST(Reactor, EchoRoundTripBetweenTwoReactors) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 1, "client"));
  TestServer server(server_reactor, {}, EchoHandler);
  ASSERT_TRUE(server.listen_status().ok()) << server.listen_status();

  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> connection = ConnectAndWait(client_reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->peer(), server.address());

  const std::vector<Bytes> payloads = {Pattern(1, 1), Pattern(0, 2), Pattern(100, 3), Pattern(70000, 4)};
  for (const Bytes& p : payloads) ASSERT_TRUE((*connection)->Send(OutFrame::Copy(p)).ok());
  ASSERT_TRUE(client->WaitForFrames(payloads.size()));
  EXPECT_EQ(client->frames(), payloads);
  EXPECT_EQ(client->misaligned(), 0);

  ASSERT_TRUE(server.WaitForAccepted(0));
  EXPECT_EQ(server.handler(0)->frames(), payloads);
  EXPECT_TRUE(absl::StartsWith(server.connection(0)->peer(), "127.0.0.1:")) << server.connection(0)->peer();
  const ConnectionStats stats = (*connection)->stats();
  EXPECT_EQ(stats.frames_out, payloads.size());
  EXPECT_EQ(stats.frames_in, payloads.size());
  EXPECT_EQ(client_reactor.stats().connected, 1u);
  EXPECT_EQ(server_reactor.stats().accepted, 1u);
  EXPECT_EQ((*connection)->outbound_bytes(), 0u);
}

TEST(Reactor, ZeroLengthFrameArrivesAsAnEmptyPayload) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  auto client = std::make_shared<RecordingHandler>();
  auto connection = ConnectAndWait(reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE((*connection)->Send(OutFrame::WithPayload(0)).ok());
  ASSERT_TRUE((*connection)->Send(OutFrame::Copy(Pattern(3, 3))).ok());
  ASSERT_TRUE(server.WaitForAccepted(0));
  ASSERT_TRUE(server.handler(0)->WaitForFrames(2));
  EXPECT_EQ(server.handler(0)->frames(), (std::vector<Bytes>{{}, Pattern(3, 3)}));
}

TEST(Reactor, EmptyOutFrameIsRefused) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  auto connection = ConnectAndWait(reactor, server.address(), {}, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->Send(OutFrame()).code(), absl::StatusCode::kInvalidArgument);
}

// Two reactors of `threads` I/O threads each, a TestServer on the first and
// a connection to it from the second.
struct TwoReactors {
  explicit TwoReactors(int threads)
      : server_reactor(LoggedReactorOptions(log, threads, "server")),
        client_reactor(LoggedReactorOptions(log, threads, "client")),
        server(server_reactor, {}),
        connection(ConnectAndWait(client_reactor, server.address(), {}, std::make_shared<RecordingHandler>())) {}

  // The server side's frames once `n` have come; fewer at the deadline.
  std::vector<Bytes> ReceivedFrames(size_t n) {
    if (!server.WaitForAccepted(0)) return {};
    std::shared_ptr<RecordingHandler> received = server.handler(0);
    (void)received->WaitForFrames(n);
    return received->frames();
  }

  TestLog log;
  Reactor server_reactor;
  Reactor client_reactor;
  TestServer server;
  absl::StatusOr<std::shared_ptr<Connection>> connection;
};

TEST(Reactor, ManyFramesOfMixedSizesArriveInOrderOnOneConnection) {
  TwoReactors pair(2);
  ASSERT_TRUE(pair.connection.ok()) << pair.connection.status();
  std::shared_ptr<Connection> connection = *pair.connection;
  constexpr uint64_t kFrames = 20000;
  for (uint64_t i = 0; i < kFrames; ++i) {
    const size_t size = 8 + (i * 37) % 3000;
    ASSERT_TRUE(connection->Send(NumberedFrame(i, size)).ok()) << i;
  }
  const std::vector<Bytes> frames = pair.ReceivedFrames(kFrames);
  ASSERT_EQ(frames.size(), kFrames);
  for (uint64_t i = 0; i < kFrames; ++i) {
    ASSERT_EQ(FrameNumber(frames[i]), i);
    ASSERT_EQ(frames[i].size(), 8 + (i * 37) % 3000);
  }
  EXPECT_EQ(pair.server.handler(0)->misaligned(), 0);
}

// A numbered frame (as NumberedFrame) written in place, counting the
// copies it was asked for.
class NumberedWriter final : public FrameWriter {
 public:
  NumberedWriter(uint64_t seq, size_t size) : seq_(seq), size_(size) {}
  size_t payload_size() const override { return size_; }
  void Write(uint8_t* payload) const override {
    ++writes;
    const OutFrame frame = NumberedFrame(seq_, size_);
    std::memcpy(payload, frame.payload(), size_);
  }
  mutable int writes = 0;

 private:
  const uint64_t seq_;
  const size_t size_;
};

// Frames written in place (SendInPlace, SendReservedInPlace) and frames
// sent as OutFrames, small and large, arrive whole and in send order, each
// written exactly once.
TEST(Reactor, FramesWrittenInPlaceArriveInOrderAmongOutFrames) {
  TwoReactors pair(1);
  ASSERT_TRUE(pair.connection.ok()) << pair.connection.status();
  std::shared_ptr<Connection> connection = *pair.connection;
  constexpr uint64_t kFrames = 6000;
  auto size_of = [](uint64_t i) -> size_t { return 8 + (i * 131) % 5000; };
  for (uint64_t i = 0; i < kFrames; ++i) {
    if (i % 3 == 0) {
      ASSERT_TRUE(connection->Send(NumberedFrame(i, size_of(i))).ok()) << i;
      continue;
    }
    NumberedWriter writer(i, size_of(i));
    const absl::Status sent =
        i % 3 == 1 ? connection->SendInPlace(writer) : connection->SendReservedInPlace(writer);
    ASSERT_TRUE(sent.ok()) << i << ": " << sent;
    ASSERT_LE(writer.writes, 1) << i;
  }
  const std::vector<Bytes> frames = pair.ReceivedFrames(kFrames);
  ASSERT_EQ(frames.size(), kFrames);
  for (uint64_t i = 0; i < kFrames; ++i) {
    const OutFrame expected = NumberedFrame(i, size_of(i));
    ASSERT_EQ(frames[i], Bytes(expected.payload(), expected.payload() + expected.payload_size())) << i;
  }
}

// A frame written in place is refused like a sent one: past the data
// lane's bound with ResourceExhausted, and Unavailable once closed.
TEST(Reactor, AFrameWrittenInPlaceIsRefusedPastTheBoundAndAfterClose) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  ConnectionOptions options;
  options.max_outbound_bytes = 1 << 10;
  auto connection = ConnectAndWait(reactor, server.address(), options, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();
  NumberedWriter too_big(1, 2 << 10);
  const absl::Status refused = (*connection)->SendInPlace(too_big);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_EQ(too_big.writes, 0);
  (*connection)->Close(absl::CancelledError("test"));
  NumberedWriter after(2, 64);
  const absl::Status closed = (*connection)->SendInPlace(after);
  EXPECT_TRUE(absl::IsUnavailable(closed)) << closed;
  EXPECT_EQ(after.writes, 0);
}

// Every read that completes frames ends with one OnReadDone, after them:
// 20000 small frames from a thread outside the reactor arrive in fewer
// reads than frames (the sender's frames are batched and the receiver
// reads many at once), and the last OnReadDone comes after the last frame.
TEST(Reactor, EachReadOfFramesEndsWithOneOnReadDone) {
  TwoReactors pair(1);
  ASSERT_TRUE(pair.connection.ok()) << pair.connection.status();
  std::shared_ptr<Connection> connection = *pair.connection;
  constexpr uint64_t kFrames = 20000;
  for (uint64_t i = 0; i < kFrames; ++i) ASSERT_TRUE(connection->Send(NumberedFrame(i, 40)).ok()) << i;
  ASSERT_TRUE(pair.server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> received = pair.server.handler(0);
  ASSERT_TRUE(received->WaitForFrames(kFrames));
  EXPECT_TRUE(Eventually([&] { return received->frames_at_read_done() == kFrames; }))
      << received->frames_at_read_done();
  EXPECT_EQ(received->empty_read_dones(), 0);
  EXPECT_GE(received->read_dones(), 1);
  EXPECT_LT(received->read_dones(), static_cast<int>(kFrames)) << "one read per frame";
  const std::vector<Bytes> frames = received->frames();
  for (uint64_t i = 0; i < kFrames; ++i) ASSERT_EQ(FrameNumber(frames[i]), i);
}

// Sends from inside the I/O thread (the Connect callback) are all queued
// before the thread flushes: the burst goes out in ceil(10000 / IOV_MAX)
// writev calls plus the ones a full socket buffer splits off.
TEST(Reactor, ABurstOfTenThousandSmallFramesCostsFewWritevCalls) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  constexpr int kFrames = 10000;
  std::promise<absl::StatusOr<std::shared_ptr<Connection>>> connected;
  reactor.Connect(server.address(), {}, std::make_shared<RecordingHandler>(),
                  [&](absl::StatusOr<std::shared_ptr<Connection>> c) {
                    if (c.ok()) {
                      for (int i = 0; i < kFrames; ++i) (void)(*c)->Send(NumberedFrame(i, 32));
                    }
                    connected.set_value(std::move(c));
                  });
  auto future = connected.get_future();
  ASSERT_EQ(future.wait_for(absl::ToChronoNanoseconds(kWait)), std::future_status::ready);
  std::shared_ptr<Connection> connection = *future.get();
  ASSERT_TRUE(server.WaitForAccepted(0));
  ASSERT_TRUE(server.handler(0)->WaitForFrames(kFrames));
  // The sender counts a frame after its write returns, which can be after
  // the server read it.
  EXPECT_TRUE(Eventually([&] { return connection->stats().frames_out == uint64_t{kFrames}; }))
      << connection->stats().frames_out;
  const ConnectionStats stats = connection->stats();
  EXPECT_LE(stats.writev_calls, 40u) << "frames: " << kFrames;
  std::printf("burst from the I/O thread: %llu writev calls for %d frames\n",
              static_cast<unsigned long long>(stats.writev_calls), kFrames);
}

// The same burst from another thread, while the connection's I/O thread is
// busy (its handler blocks until the burst is queued): the Sends wake the
// thread once, and the burst goes out in a few writev calls. (With the I/O
// thread idle the count depends on scheduling: the thread may wake and
// drain between any two Sends; docs/net-io.md has typical figures.)
TEST(Reactor, ABurstFromAnotherThreadWhileTheIoThreadIsBusyCostsFewWritevCalls) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 1, "client"));
  TestServer server(server_reactor, {}, EchoHandler);
  std::promise<void> blocked;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto client = std::make_shared<RecordingHandler>();
  client->on_frame = [&blocked, released](Connection&, absl::Span<const uint8_t> payload) {
    if (FrameNumber(payload) != 0) return;
    blocked.set_value();
    (void)released.wait_for(absl::ToChronoNanoseconds(kWait));
  };
  auto connection = ConnectAndWait(client_reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE((*connection)->Send(NumberedFrame(0, 32)).ok());
  ASSERT_EQ(blocked.get_future().wait_for(absl::ToChronoNanoseconds(kWait)), std::future_status::ready);
  const uint64_t before = (*connection)->stats().writev_calls;

  constexpr int kFrames = 10000;
  for (int i = 1; i <= kFrames; ++i) ASSERT_TRUE((*connection)->Send(NumberedFrame(i, 32)).ok());
  release.set_value();
  ASSERT_TRUE(server.WaitForAccepted(0));
  ASSERT_TRUE(server.handler(0)->WaitForFrames(kFrames + 1));
  const uint64_t calls = (*connection)->stats().writev_calls - before;
  EXPECT_LE(calls, 40u);
  std::printf("burst from another thread: %llu writev calls for %d frames\n",
              static_cast<unsigned long long>(calls), kFrames);
}

// A TSan stress test: four threads send at once on one connection; each
// thread's frames arrive in its order, none lost or repeated.
TEST(ReactorStress, ConcurrentSendsFromFourThreadsKeepPerThreadOrderAndLoseNothing) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 2, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 2, "client"));
  TestServer server(server_reactor, {});
  ConnectionOptions options;
  options.max_outbound_bytes = 64 << 10;  // small, so the bound is hit too
  auto connection = ConnectAndWait(client_reactor, server.address(), options, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();

  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 5000;
  std::latch start(kThreads);
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t seq = (uint64_t(t) << 32) | i;
        // Refused when the bound is reached: retried, at most this often.
        absl::Status s;
        for (int attempt = 0; attempt < 1000000; ++attempt) {
          s = (*connection)->Send(NumberedFrame(seq, 16 + (i % 5) * 8));
          if (s.code() != absl::StatusCode::kResourceExhausted) break;
          refused.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
        ASSERT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> received = server.handler(0);
  ASSERT_TRUE(received->WaitForFrames(kThreads * kPerThread)) << received->frame_count();
  std::vector<uint64_t> next(kThreads, 0);
  for (const Bytes& frame : received->frames()) {
    const uint64_t seq = FrameNumber(frame);
    const uint64_t t = seq >> 32;
    ASSERT_LT(t, uint64_t{kThreads});
    ASSERT_EQ(seq & 0xffffffffu, next[t]) << "thread " << t;
    ++next[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);
  EXPECT_EQ((*connection)->stats().rejected_sends, refused.load());
}

// Sends made one after another by different threads, each handing a token
// to the next (an actor that moves between workers), arrive in that order.
TEST(ReactorStress, SendsOrderedAcrossThreadsArriveInThatOrder) {
  TwoReactors pair(1);
  ASSERT_TRUE(pair.connection.ok()) << pair.connection.status();
  std::shared_ptr<Connection> connection = *pair.connection;

  constexpr int kThreads = 4;
  constexpr uint64_t kFrames = 8000;
  std::atomic<uint64_t> turn{0};  // frame number to send next
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t mine = t; mine < kFrames; mine += kThreads) {
        // Wait (futex, no sleep) for our turn; the previous sender's release
        // store orders its Send before ours.
        for (uint64_t seen = turn.load(std::memory_order_acquire); seen != mine;
             seen = turn.load(std::memory_order_acquire)) {
          turn.wait(seen, std::memory_order_acquire);
        }
        // EXPECT, not ASSERT: the turn must pass on even after a failure.
        EXPECT_TRUE(connection->Send(NumberedFrame(mine, 8)).ok());
        turn.store(mine + 1, std::memory_order_release);
        turn.notify_all();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const std::vector<Bytes> frames = pair.ReceivedFrames(kFrames);
  ASSERT_EQ(frames.size(), kFrames);
  for (uint64_t i = 0; i < kFrames; ++i) ASSERT_EQ(FrameNumber(frames[i]), i);
}

TEST(Reactor, PeerCloseGivesOnClosedUnavailable) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  testing::RawClient raw(server.address());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(server.WaitForAccepted(0));
  raw.Close();
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kUnavailable) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "peer closed the connection")) << reason;
  EXPECT_EQ(server.handler(0)->closed_calls(), 1);
  EXPECT_EQ(server.connection(0)->Send(NumberedFrame(1)).code(), absl::StatusCode::kUnavailable);
}

TEST(Reactor, CloseWritesWhatIsQueuedBeforeClosing) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  auto client = std::make_shared<RecordingHandler>();
  auto connection = ConnectAndWait(reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  constexpr uint64_t kFrames = 3000;
  for (uint64_t i = 0; i < kFrames; ++i) ASSERT_TRUE((*connection)->Send(NumberedFrame(i, 200)).ok());
  (*connection)->Close(absl::AbortedError("done sending"));
  (*connection)->Close(absl::InternalError("second close is ignored"));
  EXPECT_EQ((*connection)->Send(NumberedFrame(0)).code(), absl::StatusCode::kUnavailable);
  const absl::Status reason = client->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kAborted) << reason;
  ASSERT_TRUE(server.WaitForAccepted(0));
  EXPECT_EQ(server.handler(0)->WaitForClose().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.handler(0)->frame_count(), kFrames);
  EXPECT_EQ(client->closed_calls(), 1);
}

TEST(Reactor, CloseFromWithinOnFrameDeliversNoFurtherFrame) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {}, [] {
    auto handler = std::make_shared<RecordingHandler>();
    handler->on_frame = [](Connection& connection, absl::Span<const uint8_t> payload) {
      if (FrameNumber(payload) == 2) connection.Close(absl::DataLossError("bad frame"));
    };
    return handler;
  });
  // One write holding every frame, so they arrive in one read.
  Bytes all;
  for (uint64_t i = 0; i < 10; ++i) {
    const OutFrame frame = NumberedFrame(i, 16);
    all.insert(all.end(), frame.bytes().begin(), frame.bytes().end());
  }
  testing::RawClient raw(server.address());
  ASSERT_TRUE(raw.Write(all));
  ASSERT_TRUE(server.WaitForAccepted(0));
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kDataLoss) << reason;
  EXPECT_EQ(server.handler(0)->frame_count(), 3u);
  EXPECT_EQ(server.handler(0)->frames_after_close(), 0);
  EXPECT_TRUE(raw.WaitForPeerClose());
  EXPECT_EQ(log.CountLines({raw.local_address(), "bad frame"}), 1) << log.All();
}

// Close from another thread while four threads keep sending: every Send
// queued, was refused at the bound, or (from the close on) got Unavailable;
// OnClosed came once with the reason; what arrived is, per sender, an
// unbroken prefix of what it queued.
TEST(ReactorStress, CloseFromAnotherThreadWhileSendsAreInFlight) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 2, "client"));
  TestServer server(server_reactor, {});
  auto client = std::make_shared<RecordingHandler>();
  ConnectionOptions options;
  options.max_outbound_bytes = 64 << 10;  // senders meet the bound too
  auto connection = ConnectAndWait(client_reactor, server.address(), options, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> received = server.handler(0);

  constexpr int kThreads = 4;
  // Each sender goes on until it sees Unavailable, within these bounds.
  constexpr uint64_t kMaxAttempts = 50000000;
  const absl::Time deadline = absl::Now() + kWait;
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t seq = 0;  // advances only when a frame was queued
      for (uint64_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
        absl::Status s = (*connection)->Send(NumberedFrame((uint64_t(t) << 32) | seq, 24));
        if (s.ok()) {
          ++seq;
        } else if (s.code() == absl::StatusCode::kUnavailable) {
          unavailable.fetch_add(1);
          return;
        } else {
          ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
          std::this_thread::yield();
        }
        if (attempt % 1024 == 0 && absl::Now() > deadline) return;
      }
    });
  }
  ASSERT_TRUE(received->WaitForFrames(1000));
  (*connection)->Close(absl::AbortedError("closed by the test"));
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(client->WaitForClose().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(client->closed_calls(), 1);
  EXPECT_EQ(unavailable.load(), kThreads);
  EXPECT_EQ(received->WaitForClose().code(), absl::StatusCode::kUnavailable);
  std::vector<uint64_t> next(kThreads, 0);
  for (const Bytes& frame : received->frames()) {
    const uint64_t seq = FrameNumber(frame);
    const uint64_t t = seq >> 32;
    ASSERT_LT(t, uint64_t{kThreads});
    ASSERT_EQ(seq & 0xffffffffu, next[t]);
    ++next[t];
  }
}

TEST(Reactor, ShutdownClosesLiveConnectionsWithCancelled) {
  TestLog log;
  auto server_reactor = std::make_unique<Reactor>(LoggedReactorOptions(log, 2, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 1, "client"));
  TestServer server(*server_reactor, {});
  std::vector<std::shared_ptr<RecordingHandler>> clients;
  std::vector<std::shared_ptr<Connection>> connections;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_shared<RecordingHandler>());
    auto c = ConnectAndWait(client_reactor, server.address(), {}, clients.back());
    ASSERT_TRUE(c.ok()) << c.status();
    connections.push_back(*c);
  }
  ASSERT_TRUE(server.WaitForAccepted(3));
  server_reactor->Shutdown();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(server.handler(i)->WaitForClose(absl::ZeroDuration()).code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(server.handler(i)->closed_calls(), 1);
    EXPECT_EQ(server.connection(i)->Send(NumberedFrame(1)).code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(clients[i]->WaitForClose().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(server_reactor->stats().closed, 4u);
  server_reactor->Shutdown();  // idempotent
  EXPECT_EQ(server_reactor->Listen("127.0.0.1:0", {}, [](Connection&) { return nullptr; }).status().code(),
            absl::StatusCode::kFailedPrecondition);
  bool called = false;
  server_reactor->Connect(server.address(), {}, std::make_shared<RecordingHandler>(),
                          [&](absl::StatusOr<std::shared_ptr<Connection>> c) {
                            called = true;
                            EXPECT_EQ(c.status().code(), absl::StatusCode::kCancelled);
                          });
  EXPECT_TRUE(called);
  // Connections outlive their reactor.
  std::shared_ptr<Connection> kept = server.connection(0);
  server_reactor.reset();
  EXPECT_EQ(kept->Send(NumberedFrame(1)).code(), absl::StatusCode::kUnavailable);
}

TEST(ReactorStress, ShutdownWhileOtherThreadsSend) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  auto client_reactor = std::make_unique<Reactor>(LoggedReactorOptions(log, 2, "client"));
  TestServer server(server_reactor, {});
  ConnectionOptions options;
  options.max_outbound_bytes = 64 << 10;
  auto connection = ConnectAndWait(*client_reactor, server.address(), options, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(server.WaitForAccepted(0));
  constexpr int kThreads = 3;
  // Each sender goes on until it sees Unavailable, within these bounds.
  constexpr uint64_t kMaxAttempts = 50000000;
  const absl::Time deadline = absl::Now() + kWait;
  std::atomic<int> ended_unavailable{0};
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = 0; i < kMaxAttempts; ++i) {
        absl::Status s = (*connection)->Send(NumberedFrame(i, 64));
        if (s.code() == absl::StatusCode::kUnavailable) {
          ended_unavailable.fetch_add(1);
          return;
        }
        if (!s.ok()) std::this_thread::yield();
        if (i % 1024 == 0 && absl::Now() > deadline) return;
      }
    });
  }
  ASSERT_TRUE(server.handler(0)->WaitForFrames(100));
  client_reactor->Shutdown();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ended_unavailable.load(), kThreads);
  client_reactor.reset();
  EXPECT_EQ(server.handler(0)->WaitForClose().code(), absl::StatusCode::kUnavailable);
}

TEST(Reactor, ConnectToAPortWithNoListenerFailsThroughTheCallback) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  PortWithoutListener port;
  ASSERT_FALSE(port.address().empty());
  auto handler = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c = ConnectAndWait(reactor, port.address(), {}, handler);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), port.address())) << c.status();
  EXPECT_FALSE(handler->closed());
  EXPECT_EQ(reactor.stats().connected, 0u);
}

TEST(Reactor, AcceptFnReturningNoHandlerRefusesTheConnection) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  absl::StatusOr<std::string> bound = reactor.Listen("127.0.0.1:0", {}, [](Connection&) { return nullptr; });
  ASSERT_TRUE(bound.ok());
  testing::RawClient raw(*bound);
  ASSERT_TRUE(raw.connected());
  EXPECT_TRUE(raw.WaitForPeerClose());
}

TEST(Reactor, HandlerThatThrowsClosesItsConnectionWithInternal) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {}, [] {
    auto handler = std::make_shared<RecordingHandler>();
    handler->on_frame = [](Connection&, absl::Span<const uint8_t>) { throw std::runtime_error("boom"); };
    return handler;
  });
  auto client = std::make_shared<RecordingHandler>();
  auto connection = ConnectAndWait(reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok());
  ASSERT_TRUE((*connection)->Send(NumberedFrame(1)).ok());
  ASSERT_TRUE(server.WaitForAccepted(0));
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(reason.message(), "boom")) << reason;
  EXPECT_EQ(client->WaitForClose().code(), absl::StatusCode::kUnavailable);
}

TEST(Reactor, EchoOverIpv6Loopback) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log, 2));
  TestServer server(reactor, {}, EchoHandler, "[::1]:0");
  if (!server.listen_status().ok()) GTEST_SKIP() << "no IPv6 loopback: " << server.listen_status();
  EXPECT_TRUE(absl::StartsWith(server.address(), "[::1]:")) << server.address();
  auto client = std::make_shared<RecordingHandler>();
  auto connection = ConnectAndWait(reactor, server.address(), {}, client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE((*connection)->Send(OutFrame::Copy(Pattern(40, 6))).ok());
  ASSERT_TRUE(client->WaitForFrames(1));
  EXPECT_EQ(client->frames()[0], Pattern(40, 6));
  ASSERT_TRUE(server.WaitForAccepted(0));
  EXPECT_TRUE(absl::StartsWith(server.connection(0)->peer(), "[::1]:")) << server.connection(0)->peer();
}

}  // namespace
}  // namespace troupe::net
