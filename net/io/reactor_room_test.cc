// Waiting for room on the data lane: Connection::WhenQueuedAtMost.

#include <atomic>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/io/reactor.h"
#include "net/io/reactor_test_util.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::ConnectAndWait;
using testing::JoinOnExit;
using testing::LoggedReactorOptions;
using testing::NumberedFrame;
using testing::RawClient;
using testing::RecordingHandler;
using testing::SilentPeer;
using testing::TestLog;
using testing::TestServer;
using testing::kWait;

constexpr auto kWaitChrono = std::chrono::seconds(10);

// What a waiter's callback saw when it ran.
struct Ran {
  std::thread::id thread;
  size_t outbound_bytes = 0;
  absl::StatusCode send = absl::StatusCode::kOk;
};

// A peer that does not read, its connection's data lane filled until Send
// refuses.
class FullDataLane {
 public:
  explicit FullDataLane(Reactor& reactor) : peer_(reactor, Options()) {}
  static ConnectionOptions Options() {
    ConnectionOptions options;
    options.max_outbound_bytes = 128 << 10;
    options.send_buffer_bytes = 16 << 10;
    return options;
  }
  // Fills the lane; the number of frames queued, or -1.
  int Fill() {
    if (peer_.connection() == nullptr) return -1;
    for (int sent = 0; sent < 1024; ++sent) {
      if (!peer_.connection()->Send(NumberedFrame(sent, 8 << 10)).ok()) return sent;
    }
    return -1;
  }
  Connection& connection() { return *peer_.connection(); }
  RawClient& raw() { return peer_.raw(); }

 private:
  SilentPeer peer_;
};

// Records what the callback saw, into a promise the test waits on.
absl::AnyInvocable<void() &&> Record(Connection& connection, std::promise<Ran>& ran) {
  return [&connection, &ran]() {
    ran.set_value(Ran{std::this_thread::get_id(), connection.outbound_bytes(),
                      connection.Send(OutFrame::WithPayload(8)).code()});
  };
}

TEST(ReactorRoom, WaiterOnAFullDataLaneRunsOnceThePeerReads) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  FullDataLane lane(reactor);
  const int sent = lane.Fill();
  ASSERT_GT(sent, 0);
  std::promise<Ran> ran;
  std::future<Ran> future = ran.get_future();
  lane.connection().WhenQueuedAtMost(0, Record(lane.connection(), ran));
  EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "ran on a full lane";

  for (int i = 0; i < sent; ++i) {
    Bytes payload;
    ASSERT_TRUE(lane.raw().ReadFrame(payload)) << "frame " << i;
  }
  ASSERT_EQ(future.wait_for(kWaitChrono), std::future_status::ready);
  const Ran seen = future.get();
  EXPECT_NE(seen.thread, std::this_thread::get_id());  // on the I/O thread
  EXPECT_EQ(seen.outbound_bytes, 0u);
  EXPECT_EQ(seen.send, absl::StatusCode::kOk);  // there is room
}

TEST(ReactorRoom, WaiterRunsWhenTheConnectionClosesAndFindsSendUnavailable) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  FullDataLane lane(reactor);
  ASSERT_GT(lane.Fill(), 0);
  std::promise<Ran> ran;
  std::future<Ran> future = ran.get_future();
  lane.connection().WhenQueuedAtMost(0, Record(lane.connection(), ran));
  EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "ran on a full lane";
  lane.connection().Close(absl::AbortedError("test: giving up"));
  ASSERT_EQ(future.wait_for(kWaitChrono), std::future_status::ready);
  const Ran seen = future.get();
  EXPECT_NE(seen.thread, std::this_thread::get_id());
  EXPECT_EQ(seen.send, absl::StatusCode::kUnavailable);

  // Registered once closed: runs at once, here.
  bool ran_after = false;
  lane.connection().WhenQueuedAtMost(0, [&ran_after] { ran_after = true; });
  EXPECT_TRUE(ran_after);
}

TEST(ReactorRoom, WaiterWhoseConditionHoldsRunsInlineOnTheCallingThread) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {});
  auto connection = ConnectAndWait(reactor, server.address(), {}, std::make_shared<RecordingHandler>());
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::thread::id thread;
  (*connection)->WhenQueuedAtMost(1 << 20, [&thread] { thread = std::this_thread::get_id(); });
  EXPECT_EQ(thread, std::this_thread::get_id());
}

// Four threads send and register waiters with assorted thresholds (half of
// whose callbacks send again) while a fast reader drains the lane: every
// waiter runs exactly once, none is lost, none runs twice, also across the
// close that follows. Run under TSan.
TEST(ReactorRoomStress, ManyWaitersFromSeveralThreadsEachRunExactlyOnce) {
  TestLog log;
  Reactor server_reactor(LoggedReactorOptions(log, 1, "server"));
  Reactor client_reactor(LoggedReactorOptions(log, 1, "client"));
  TestServer server(server_reactor, {});
  ConnectionOptions options;
  options.max_outbound_bytes = 16 << 10;
  auto client = std::make_shared<RecordingHandler>();
  auto connection = ConnectAndWait(client_reactor, server.address(), options, client);
  ASSERT_TRUE(connection.ok()) << connection.status();

  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::atomic<int>> runs(kThreads * kPerThread);
  std::mutex mu;
  std::condition_variable cv;
  int total = 0;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  JoinOnExit join_on_exit(threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const int index = t * kPerThread + i;
        (void)(*connection)->Send(NumberedFrame(index, 1024));
        const size_t threshold = i % 3 == 0 ? 0 : (size_t(i) * 997) % (16 << 10);
        (*connection)->WhenQueuedAtMost(threshold, [&, index, resend = i % 2 == 0] {
          if (resend) (void)(*connection)->Send(NumberedFrame(index, 512));
          runs[index].fetch_add(1, std::memory_order_relaxed);
          {
            std::lock_guard<std::mutex> lock(mu);
            ++total;
          }
          cv.notify_all();
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWaitChrono, [&] { return total == kThreads * kPerThread; })) << total;
  }
  (*connection)->Close(absl::CancelledError("test: done"));
  ASSERT_TRUE(client->WaitForClose(kWait).code() == absl::StatusCode::kCancelled);
  for (int index = 0; index < kThreads * kPerThread; ++index) {
    ASSERT_EQ(runs[index].load(std::memory_order_relaxed), 1) << "waiter " << index;
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(total, kThreads * kPerThread);
}

}  // namespace
}  // namespace troupe::net
