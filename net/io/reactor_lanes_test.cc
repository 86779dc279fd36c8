// The two outbound lanes: control frames (SendControl) overtake queued data
// frames (Send), each lane keeps its own order and its own bound; a
// reserved send (SendReserved) keeps its place among data frames and is not
// refused for a full data lane.

#include <atomic>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/io/reactor.h"
#include "net/io/reactor_test_util.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::ConnectAndWait;
using testing::Eventually;
using testing::FrameNumber;
using testing::JoinOnExit;
using testing::LoggedReactorOptions;
using testing::NumberedFrame;
using testing::RawClient;
using testing::RecordingHandler;
using testing::SilentPeer;
using testing::TestLog;
using testing::TestServer;
using testing::kWait;

// Control frames in these tests are this size; data frames are larger.
constexpr size_t kControlPayload = 16;

// 10 MiB of data is queued to a peer that has not read yet (small, fixed
// kernel buffers on both sides); three control frames sent after it reach
// the peer after only what was already on its way: the kernel buffers and
// at most one partly written data frame.
TEST(ReactorLanes, ControlFramesOvertakeTenMiBOfDataQueuedToAPeerThatReadsLate) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.send_buffer_bytes = 64 << 10;
  TestServer server(reactor, options);
  RawClient raw(server.address(), /*receive_buffer=*/64 << 10);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<Connection> connection = server.connection(0);

  constexpr uint64_t kDataFrames = 160;  // of 64 KiB: 10 MiB
  constexpr size_t kDataPayload = 64 << 10;
  for (uint64_t i = 0; i < kDataFrames; ++i) ASSERT_TRUE(connection->Send(NumberedFrame(i, kDataPayload)).ok());
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(connection->SendControl(NumberedFrame(1000 + i, kControlPayload)).ok());

  std::vector<uint64_t> data;
  std::vector<uint64_t> control;
  size_t data_before_control = 0;
  for (uint64_t i = 0; i < kDataFrames + 3; ++i) {
    Bytes payload;
    ASSERT_TRUE(raw.ReadFrame(payload)) << "frame " << i;
    if (payload.size() == kControlPayload) {
      if (control.empty()) data_before_control = data.size();
      control.push_back(FrameNumber(payload));
    } else {
      ASSERT_EQ(payload.size(), kDataPayload);
      data.push_back(FrameNumber(payload));
    }
  }
  EXPECT_EQ(control, (std::vector<uint64_t>{1000, 1001, 1002}));
  // Kernel buffers of some 256 KiB plus one frame in flight: a few frames
  // of 160. Behind the whole queue it would be all of them.
  EXPECT_LT(data_before_control, kDataFrames / 4) << data_before_control << " data frames came first";
  ASSERT_EQ(data.size(), kDataFrames);
  for (uint64_t i = 0; i < kDataFrames; ++i) ASSERT_EQ(data[i], i);
  // The I/O thread counts a frame after its write returns, which can be
  // after the peer read it.
  EXPECT_TRUE(Eventually([&] { return connection->stats().control_frames_out == 3u; }))
      << connection->stats().control_frames_out;
}

// Four threads each interleave data and control frames, with a data bound
// small enough to be hit over and over: each lane keeps every thread's
// order, nothing is lost. Run under TSan.
TEST(ReactorLanesStress, EachLaneKeepsPerThreadOrderUnderConcurrentSenders) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 2, "client"));
  TestServer server(server_reactor, {});
  ConnectionOptions options;
  options.max_outbound_bytes = 4 << 10;
  options.max_control_bytes = 1 << 20;  // more than all control frames: never closes
  auto connection = ConnectAndWait(client_reactor, server.address(), options, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();

  constexpr int kThreads = 4;
  constexpr uint64_t kPerLane = 1000;
  constexpr uint64_t kControlBit = uint64_t{1} << 40;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  const absl::Time deadline = absl::Now() + kWait;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (uint64_t i = 0; i < kPerLane; ++i) {
        const uint64_t seq = (uint64_t(t) << 32) | i;
        ASSERT_TRUE((*connection)->SendControl(NumberedFrame(kControlBit | seq, kControlPayload)).ok());
        // Refused while the data bound is reached: retried until the deadline.
        absl::Status s;
        do {
          s = (*connection)->Send(NumberedFrame(seq, 24 + (i % 4) * 8));
          if (s.code() == absl::StatusCode::kResourceExhausted) std::this_thread::yield();
        } while (s.code() == absl::StatusCode::kResourceExhausted && absl::Now() < deadline);
        ASSERT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> received = server.handler(0);
  ASSERT_TRUE(received->WaitForFrames(2 * kThreads * kPerLane)) << received->frame_count();
  std::vector<uint64_t> next_data(kThreads, 0), next_control(kThreads, 0);
  for (const Bytes& frame : received->frames()) {
    const uint64_t seq = FrameNumber(frame);
    const bool control = (seq & kControlBit) != 0;
    const uint64_t t = (seq & ~kControlBit) >> 32;
    ASSERT_LT(t, uint64_t{kThreads});
    ASSERT_EQ(control, frame.size() == kControlPayload);
    std::vector<uint64_t>& next = control ? next_control : next_data;
    ASSERT_EQ(seq & 0xffffffffu, next[t]) << (control ? "control" : "data") << " lane, thread " << t;
    ++next[t];
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(next_data[t], kPerLane);
    EXPECT_EQ(next_control[t], kPerLane);
  }
  EXPECT_TRUE(Eventually([&] { return (*connection)->stats().control_frames_out == kThreads * kPerLane; }))
      << (*connection)->stats().control_frames_out;
}

// A peer that reads nothing, not even replies: once max_control_bytes is
// queued, SendControl fails and the connection closes, both naming the peer.
TEST(ReactorLanes, FullControlLaneClosesTheConnectionWithResourceExhausted) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.max_control_bytes = 64 << 10;
  options.send_buffer_bytes = 16 << 10;
  options.close_timeout = absl::Milliseconds(100);
  SilentPeer peer(reactor, options);
  const std::shared_ptr<Connection> connection = peer.connection();
  ASSERT_NE(connection, nullptr);

  // The kernel buffers hold some 50 KiB: 16 MiB of control frames must fill
  // the lane.
  absl::Status refused;
  for (int i = 0; i < 1024 && refused.ok(); ++i) refused = connection->SendControl(OutFrame::WithPayload(16 << 10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), connection->peer())) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "limit 65536")) << refused;
  // Closing already: nothing more is queued on either lane.
  EXPECT_EQ(connection->SendControl(OutFrame::WithPayload(8)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(connection->Send(OutFrame::WithPayload(8)).code(), absl::StatusCode::kUnavailable);

  const absl::Status reason = peer.handler()->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kResourceExhausted) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), connection->peer())) << reason;
  EXPECT_TRUE(peer.raw().WaitForPeerClose());
  EXPECT_EQ(log.CountLines({connection->peer(), "control queue", "does not read"}), 1) << log.All();
}

TEST(ReactorLanes, EmptyControlFrameIsRefused) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  auto connection = ConnectAndWait(reactor, server.address(), {}, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->SendControl(OutFrame()).code(), absl::StatusCode::kInvalidArgument);
}

// A reactor with one connection to a peer that does not read yet, small
// kernel send buffers, and the given bounds on the data and control lanes.
struct SilentLink {
  SilentLink(size_t max_outbound_bytes, size_t max_control_bytes)
      : reactor(LoggedReactorOptions(log)), peer(reactor, Options(max_outbound_bytes, max_control_bytes)) {}
  static ConnectionOptions Options(size_t max_outbound_bytes, size_t max_control_bytes) {
    ConnectionOptions options;
    options.max_outbound_bytes = max_outbound_bytes;
    options.max_control_bytes = max_control_bytes;
    options.send_buffer_bytes = 16 << 10;
    return options;
  }
  TestLog log;
  Reactor reactor;
  SilentPeer peer;
};

// Data frames of this size fill a data lane in FillDataLane.
constexpr size_t kDataPayload = 16 << 10;

// Sends numbered data frames until the data lane refuses one
// (ResourceExhausted); returns how many were queued, 0 if it never did.
uint64_t FillDataLane(Connection& connection) {
  for (uint64_t sent = 0; sent < 1024; ++sent) {
    absl::Status s = connection.Send(NumberedFrame(sent, kDataPayload));
    if (absl::IsResourceExhausted(s)) return sent;
    if (!s.ok()) return 0;
  }
  return 0;
}

// The data lane is full (Send refuses); SendControl still queues, and the
// control frame reaches the peer ahead of the data queued before it.
TEST(ReactorLanes, FullDataLaneDoesNotBlockControlFrames) {
  SilentLink link(256 << 10, ConnectionOptions().max_control_bytes);
  SilentPeer& peer = link.peer;
  const std::shared_ptr<Connection> connection = peer.connection();
  ASSERT_NE(connection, nullptr);

  const uint64_t sent = FillDataLane(*connection);
  ASSERT_GT(sent, 0u);
  EXPECT_TRUE(connection->SendControl(NumberedFrame(7777, kControlPayload)).ok());
  EXPECT_EQ(connection->Send(NumberedFrame(sent, kDataPayload)).code(), absl::StatusCode::kResourceExhausted);

  uint64_t data_before_control = 0;
  for (uint64_t i = 0; i <= sent; ++i) {
    Bytes payload;
    ASSERT_TRUE(peer.raw().ReadFrame(payload)) << "frame " << i;
    if (payload.size() == kControlPayload) {
      EXPECT_EQ(FrameNumber(payload), 7777u);
      break;
    }
    ASSERT_EQ(FrameNumber(payload), data_before_control);
    ++data_before_control;
  }
  // Only what the kernel already held, and one frame partly written.
  EXPECT_LT(data_before_control, sent / 2) << "of " << sent;
  EXPECT_FALSE(peer.handler()->closed());
}

// A full data lane refuses Send, but a reserved send is still queued, and
// after every data frame queued before it; past the reserve too, the
// connection closes.
TEST(ReactorLanes, AReservedSendPassesAFullDataLaneAndKeepsItsPlaceAmongData) {
  SilentLink link(256 << 10, 64 << 10);
  SilentPeer& peer = link.peer;
  const std::shared_ptr<Connection> connection = peer.connection();
  ASSERT_NE(connection, nullptr);

  const uint64_t sent = FillDataLane(*connection);
  ASSERT_GT(sent, 0u);
  ASSERT_TRUE(connection->SendReserved(NumberedFrame(7777, kControlPayload)).ok());
  for (uint64_t i = 0; i <= sent; ++i) {
    Bytes payload;
    ASSERT_TRUE(peer.raw().ReadFrame(payload)) << "frame " << i;
    if (i < sent) {
      ASSERT_EQ(payload.size(), kDataPayload) << "the reserved frame overtook data frame " << i;
      ASSERT_EQ(FrameNumber(payload), i);
    } else {
      EXPECT_EQ(FrameNumber(payload), 7777u);
    }
  }
  EXPECT_FALSE(peer.handler()->closed());
}

TEST(ReactorLanes, AReservedSendPastTheReserveClosesTheConnection) {
  SilentLink link(64 << 10, 64 << 10);
  const std::shared_ptr<Connection> connection = link.peer.connection();
  ASSERT_NE(connection, nullptr);
  absl::Status refused;
  for (int i = 0; i < 1024 && refused.ok(); ++i) refused = connection->SendReserved(OutFrame::WithPayload(16 << 10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "the peer does not read")) << refused;
  EXPECT_EQ(connection->Send(OutFrame::WithPayload(16)).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace troupe::net
