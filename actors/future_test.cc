#include "actors/future.h"

#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(Future, ValueSetBeforeWaitIsReturned) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  EXPECT_TRUE(p.SetValue(7));
  EXPECT_TRUE(f.ready());
  Result<int> r = f.Wait();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
  EXPECT_FALSE(f.valid());
}

TEST(Future, OnlyTheFirstCompletionWins) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  EXPECT_TRUE(p.SetError(absl::DeadlineExceededError("late")));
  EXPECT_FALSE(p.SetValue(1));
  EXPECT_EQ(f.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(Future, DroppedPromiseCancelsTheFuture) {
  Future<std::string> f;
  {
    Promise<std::string> p;
    f = p.GetFuture();
  }
  EXPECT_EQ(f.Wait().status().code(), absl::StatusCode::kCancelled);
}

TEST(Future, WaitTimesOutAndCanBeWaitedAgain) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  EXPECT_EQ(f.Wait(absl::Milliseconds(1)).status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(f.valid());
  p.SetValue(3);
  EXPECT_EQ(*f.Wait(absl::Seconds(5)), 3);
}

TEST(Future, WaitWakesWhenAnotherThreadCompletes) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  std::thread t([&p] { p.SetValue(11); });
  EXPECT_EQ(*f.Wait(absl::Seconds(30)), 11);
  t.join();
}

TEST(Future, VoidFutureCarriesAStatus) {
  Promise<void> p;
  Future<void> f = p.GetFuture();
  p.SetValue();
  EXPECT_TRUE(f.Wait().ok());
}

TEST(Future, ThenOutsideActorsRunsOnTheCompletingThreadAndChains) {
  Promise<int> p;
  Future<std::string> f = p.GetFuture().Then([](Result<int> r) -> absl::StatusOr<std::string> {
    if (!r.ok()) return r.status();
    return std::to_string(*r * 2);
  });
  p.SetValue(21);
  EXPECT_EQ(*f.Wait(), "42");
}

TEST(Future, ThenPropagatesAnError) {
  Promise<int> p;
  Future<int> f = p.GetFuture().Then([](Result<int> r) -> Result<int> { return r; });
  p.SetError(absl::UnavailableError("gone"));
  EXPECT_EQ(f.Wait().status().code(), absl::StatusCode::kUnavailable);
}

TEST(Future, CancellerRunsOnceWhenCompletedByAnotherPath) {
  int cancelled = 0;
  {
    Promise<int> p;
    Future<int> f = p.GetFuture();
    p.SetCanceller([&cancelled] { ++cancelled; });
    p.SetValue(1);
    EXPECT_EQ(cancelled, 1);
  }
  {
    Promise<int> p;
    Future<int> f = p.GetFuture();
    p.SetValue(1);
    p.SetCanceller([&cancelled] { ++cancelled; });  // already complete: at once
    EXPECT_EQ(cancelled, 2);
  }
}

TEST(Future, SharedPromiseRacesEndExactlyOnce) {
  for (int round = 0; round < 200; ++round) {
    Promise<int> reply;
    Promise<int> deadline = reply.Share();
    Future<int> f = reply.GetFuture();
    std::latch go(2);
    std::atomic<int> wins{0};
    std::thread a([&] {
      go.arrive_and_wait();
      wins += reply.SetValue(1);
    });
    std::thread b([&] {
      go.arrive_and_wait();
      wins += deadline.SetError(absl::DeadlineExceededError("deadline"));
    });
    a.join();
    b.join();
    EXPECT_EQ(wins.load(), 1);
    Result<int> r = f.Wait();
    EXPECT_TRUE(r.ok() || r.status().code() == absl::StatusCode::kDeadlineExceeded);
  }
}

TEST(Future, WhenAllKeepsInputOrder) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::vector<Result<int>>> all = WhenAll(std::move(futures));
  promises[2].SetValue(2);
  promises[0].SetValue(0);
  EXPECT_FALSE(all.ready());
  promises[1].SetError(absl::NotFoundError("x"));
  Result<std::vector<Result<int>>> r = all.Wait();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(*(*r)[0], 0);
  EXPECT_EQ((*r)[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*(*r)[2], 2);
}

TEST(Future, WhenAllOfNothingIsReadyAtOnce) {
  EXPECT_TRUE(WhenAll(std::vector<Future<int>>()).Wait()->empty());
}

TEST(Future, WhenAnyReturnsTheFirstToComplete) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  auto any = WhenAny(std::move(futures));
  promises[1].SetValue(10);
  promises[0].SetValue(20);
  auto r = any.Wait();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 1u);
  EXPECT_EQ(*r->second, 10);
}

TEST(Future, ManyThreadsCompletingManyFuturesLoseNone) {
  constexpr int kFutures = 20000;
  std::vector<Promise<int>> promises(kFutures);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  auto all = WhenAll(std::move(futures));
  std::thread a([&] {
    for (int i = 0; i < kFutures; i += 2) promises[i].SetValue(i);
  });
  std::thread b([&] {
    for (int i = 1; i < kFutures; i += 2) promises[i].SetValue(i);
  });
  auto r = all.Wait(absl::Seconds(60));
  a.join();
  b.join();
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < kFutures; ++i) EXPECT_EQ(*(*r)[i], i);
}

}  // namespace
}  // namespace troupe
