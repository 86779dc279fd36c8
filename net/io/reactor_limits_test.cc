// The reactor's limits and timeouts, driven by raw-socket peers that
// misbehave: a peer that does not read, bad lengths, garbage, trickled and
// missing bytes, silence, a connect that is never answered.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "net/io/reactor.h"
#include "net/io/reactor_test_util.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::ConnectAndWait;
using testing::EchoHandler;
using testing::LoggedReactorOptions;
using testing::NumberedFrame;
using testing::Pattern;
using testing::RawClient;
using testing::RecordingHandler;
using testing::SilentPeer;
using testing::TestLog;
using testing::TestServer;
using testing::Wire;

// The server sends to a raw client that never reads (small receive buffer):
// once the kernel buffers and the outbound bound are full, Send refuses,
// queues nothing, and counts.
TEST(ReactorLimits, OutboundBoundRefusesSendsWhenThePeerDoesNotRead) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.max_outbound_bytes = 256 << 10;
  options.send_buffer_bytes = 16 << 10;
  SilentPeer peer(reactor, options);
  const std::shared_ptr<Connection> connection = peer.connection();
  ASSERT_NE(connection, nullptr);

  // A frame bigger than the whole bound is always refused.
  EXPECT_EQ(connection->Send(OutFrame::WithPayload(options.max_outbound_bytes)).code(),
            absl::StatusCode::kResourceExhausted);

  // The kernel buffers hold some 50 KiB here: 64 MiB of sends must hit the
  // bound.
  constexpr int kMaxSends = 1024;
  absl::Status refused;
  int sent = 0;
  for (; sent < kMaxSends; ++sent) {
    refused = connection->Send(OutFrame::WithPayload(64 << 10));
    if (!refused.ok()) break;
  }
  ASSERT_LT(sent, kMaxSends) << "never refused";
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), connection->peer())) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "limit 262144")) << refused;
  EXPECT_LE(connection->outbound_bytes(), options.max_outbound_bytes);
  EXPECT_EQ(connection->stats().rejected_sends, 2u);
  EXPECT_EQ(reactor.stats().rejected_sends, 2u);
  EXPECT_FALSE(peer.handler()->closed());
}

// Then Close: what the peer does not take within close_timeout is dropped,
// and the connection closes with the reason given.
TEST(ReactorLimits, CloseGivesUpOnQueuedFramesAfterTheCloseTimeout) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.max_outbound_bytes = 256 << 10;
  options.close_timeout = absl::Milliseconds(200);
  // A fixed, small kernel buffer: most of what is queued cannot leave.
  options.send_buffer_bytes = 16 << 10;
  SilentPeer peer(reactor, options);
  const std::shared_ptr<Connection> connection = peer.connection();
  ASSERT_NE(connection, nullptr);
  for (int i = 0; i < 1024 && connection->Send(OutFrame::WithPayload(16 << 10)).ok(); ++i) {
  }
  ASSERT_GT(connection->outbound_bytes(), 0u);
  ASSERT_EQ(connection->stats().rejected_sends, 1u);
  const absl::Time start = absl::Now();
  connection->Close(absl::AbortedError("giving up on a slow reader"));
  const absl::Status reason = peer.handler()->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kAborted) << reason;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_EQ(connection->outbound_bytes(), 0u);
  EXPECT_EQ(log.CountLines({connection->peer(), "giving up on a slow reader", "queued frames dropped"}), 1)
      << log.All();
}

// A length over max_frame_bytes closes that connection (ResourceExhausted)
// with one log line; a well-behaved connection on the same reactor goes on.
TEST(ReactorLimits, OversizedLengthClosesOnlyThatConnection) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.max_frame_bytes = 1024;
  TestServer server(reactor, options, EchoHandler);

  auto good = std::make_shared<RecordingHandler>();
  auto good_connection = ConnectAndWait(reactor, server.address(), {}, good);
  ASSERT_TRUE(good_connection.ok());
  ASSERT_TRUE(server.WaitForAccepted(0));

  RawClient raw(server.address());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(server.WaitForAccepted(1));
  const uint8_t prefix[] = {0x01, 0x04, 0x00, 0x00};  // 1025
  ASSERT_TRUE(raw.Write(prefix));
  const absl::Status reason = server.handler(1)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kResourceExhausted) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "1025")) << reason;
  EXPECT_TRUE(raw.WaitForPeerClose());
  EXPECT_EQ(reactor.stats().oversized_frames, 1u);
  EXPECT_EQ(log.CountLines({raw.local_address(), "1025", "exceeds the limit"}), 1) << log.All();

  ASSERT_TRUE((*good_connection)->Send(OutFrame::Copy(Pattern(1024, 1))).ok());
  ASSERT_TRUE(good->WaitForFrames(1));
  EXPECT_EQ(good->frames()[0], Pattern(1024, 1));
  EXPECT_FALSE(server.handler(0)->closed());
}

// A connection started at a small limit (as the node does until its
// handshake completes) takes a large frame once OnFrame has raised it, even
// when both frames arrive in one read.
TEST(ReactorLimits, FrameLimitRaisedFromOnFrameAcceptsTheNextLargerFrame) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.max_frame_bytes = 1024;
  TestServer server(reactor, options, [] {
    auto handler = std::make_shared<RecordingHandler>();
    handler->on_frame = [](Connection& connection, absl::Span<const uint8_t>) {
      connection.SetMaxFrameBytes(size_t{1} << 20);
    };
    return handler;
  });
  RawClient raw(server.address());
  ASSERT_TRUE(raw.connected());
  Bytes both = Wire(Pattern(16, 1));
  const Bytes large = Wire(Pattern(100 << 10, 2));
  both.insert(both.end(), large.begin(), large.end());
  ASSERT_TRUE(raw.Write(both));
  ASSERT_TRUE(server.WaitForAccepted(0));
  ASSERT_TRUE(server.handler(0)->WaitForFrames(2));
  EXPECT_EQ(server.handler(0)->frames()[1], Pattern(100 << 10, 2));
  EXPECT_FALSE(server.handler(0)->closed());
}

// Lowered from OnFrame, the limit refuses the next frame of the same read.
TEST(ReactorLimits, FrameLimitLoweredFromOnFrameRefusesTheNextLargeFrame) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {}, [] {
    auto handler = std::make_shared<RecordingHandler>();
    handler->on_frame = [](Connection& connection, absl::Span<const uint8_t>) { connection.SetMaxFrameBytes(64); };
    return handler;
  });
  RawClient raw(server.address());
  ASSERT_TRUE(raw.connected());
  Bytes both = Wire(Pattern(100, 1));
  const Bytes second = Wire(Pattern(100, 2));
  both.insert(both.end(), second.begin(), second.end());
  ASSERT_TRUE(raw.Write(both));
  ASSERT_TRUE(server.WaitForAccepted(0));
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kResourceExhausted) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "limit of 64 bytes")) << reason;
  EXPECT_EQ(server.handler(0)->frame_count(), 1u);
  EXPECT_TRUE(raw.WaitForPeerClose());
}

// Set from the Connect callback, the limit holds from the first frame.
TEST(ReactorLimits, FrameLimitSetFromTheConnectCallbackHoldsFromTheFirstFrame) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {}, EchoHandler);
  auto client = std::make_shared<RecordingHandler>();
  std::promise<std::shared_ptr<Connection>> connected;
  reactor.Connect(server.address(), {}, client, [&connected](absl::StatusOr<std::shared_ptr<Connection>> c) {
    if (c.ok()) (*c)->SetMaxFrameBytes(16);
    connected.set_value(c.ok() ? *c : nullptr);
  });
  std::future<std::shared_ptr<Connection>> future = connected.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::shared_ptr<Connection> connection = future.get();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Send(OutFrame::Copy(Pattern(17, 3))).ok());  // echoed: one byte too many
  const absl::Status reason = client->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kResourceExhausted) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "17 bytes")) << reason;
  EXPECT_EQ(client->frame_count(), 0u);
}

// Text where a length should be (here an HTTP request) reads as a huge
// length: closed the same way, others undisturbed.
TEST(ReactorLimits, GarbageBytesCloseOnlyThatConnection) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log, 2));
  TestServer server(reactor, {}, EchoHandler);
  auto good = std::make_shared<RecordingHandler>();
  auto good_connection = ConnectAndWait(reactor, server.address(), {}, good);
  ASSERT_TRUE(good_connection.ok());
  ASSERT_TRUE(server.WaitForAccepted(0));

  RawClient raw(server.address());
  ASSERT_TRUE(raw.Write("GET / HTTP/1.1\r\nHost: troupe\r\n\r\n"));
  ASSERT_TRUE(server.WaitForAccepted(1));
  EXPECT_EQ(server.handler(1)->WaitForClose().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(raw.WaitForPeerClose());
  EXPECT_EQ(server.handler(1)->frame_count(), 0u);

  ASSERT_TRUE((*good_connection)->Send(NumberedFrame(7)).ok());
  ASSERT_TRUE(good->WaitForFrames(1));
  EXPECT_FALSE(server.handler(0)->closed());
}

TEST(ReactorLimits, FrameTimeoutClosesAPeerThatSendsOneByteThenNothing) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.frame_timeout = absl::Milliseconds(200);
  TestServer server(reactor, options);
  RawClient raw(server.address());
  // A whole frame first: the timeout is per frame, not per connection.
  ASSERT_TRUE(raw.Write(Wire(Pattern(10, 1))));
  const uint8_t one_byte[] = {0x10};
  ASSERT_TRUE(raw.Write(one_byte));
  ASSERT_TRUE(server.WaitForAccepted(0));
  const absl::Time start = absl::Now();
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kDeadlineExceeded) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "peer sends too slowly")) << reason;
  EXPECT_LE(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(server.handler(0)->frame_count(), 1u);
  EXPECT_EQ(reactor.stats().timeouts, 1u);
  EXPECT_TRUE(raw.WaitForPeerClose());
  EXPECT_EQ(log.CountLines({raw.local_address(), "too slowly"}), 1) << log.All();
}

// A peer that keeps the connection busy with one byte at a time still has
// to complete each frame within frame_timeout.
TEST(ReactorLimits, FrameTimeoutClosesAPeerThatTricklesBytes) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.frame_timeout = absl::Milliseconds(300);
  TestServer server(reactor, options);
  RawClient raw(server.address());
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> handler = server.handler(0);
  const Bytes frame = Wire(Pattern(200, 2));
  size_t sent = 0;
  // One byte every 20 ms, paced by waiting for the close we expect: the
  // whole frame would take 4 s.
  for (; sent < frame.size() && !handler->closed(); ++sent) {
    if (!raw.Write(absl::Span<const uint8_t>(&frame[sent], 1))) break;
    (void)handler->WaitForClose(absl::Milliseconds(20));
  }
  const absl::Status reason = handler->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kDeadlineExceeded) << reason;
  EXPECT_LT(sent, frame.size());
  EXPECT_EQ(handler->frame_count(), 0u);
}

TEST(ReactorLimits, IdleTimeoutClosesASilentPeer) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  TestServer server(reactor, options);
  RawClient raw(server.address());
  ASSERT_TRUE(server.WaitForAccepted(0));
  const absl::Status reason = server.handler(0)->WaitForClose();
  EXPECT_EQ(reason.code(), absl::StatusCode::kDeadlineExceeded) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), "no frame from the peer")) << reason;
  EXPECT_EQ(reactor.stats().timeouts, 1u);
}

// Frames every 50 ms keep a connection with a 200 ms idle timeout open for
// over a second; when they stop, it closes.
TEST(ReactorLimits, FramesKeepAConnectionWithAnIdleTimeoutOpen) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  TestServer server(reactor, options);
  RawClient raw(server.address());
  ASSERT_TRUE(server.WaitForAccepted(0));
  std::shared_ptr<RecordingHandler> handler = server.handler(0);
  const absl::Time start = absl::Now();
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(raw.Write(Wire(Pattern(8, i))));
    // Paced by waiting for a close that must not come.
    (void)handler->WaitForClose(absl::Milliseconds(50));
    ASSERT_FALSE(handler->closed()) << "closed after " << (absl::Now() - start);
  }
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(handler->WaitForClose().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(handler->frame_count(), 24u);
}

// A listener whose accept queue is full (backlog 0, never accepting) drops
// further SYNs, so the handshake never completes: connect_timeout ends it.
TEST(ReactorLimits, ConnectTimeoutEndsAHandshakeThatIsNeverAnswered) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 0), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  ConnectionOptions options;
  options.connect_timeout = absl::Milliseconds(300);
  // The first connections fill the accept queue; a later one times out.
  absl::Status last;
  for (int i = 0; i < 4; ++i) {
    auto c = ConnectAndWait(reactor, address, options, std::make_shared<RecordingHandler>());
    last = c.status();
    if (!last.ok()) break;
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kDeadlineExceeded) << last;
  EXPECT_TRUE(absl::StrContains(last.message(), address)) << last;
  close(listener);
}

}  // namespace
}  // namespace troupe::net
