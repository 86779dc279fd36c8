// ManualExecutor: FIFO turns on the caller's thread; Shutdown hands back
// what is still queued and refuses what comes after.

#include "scheduler/manual_executor.h"

#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

struct Ticker final : Runnable {
  int runs = 0;
  void Run() noexcept override { ++runs; }
};

TEST(ManualExecutor, RunsQueuedRunnablesInOrderOnTheCallingThread) {
  ManualExecutor executor;
  Ticker a, b;
  ASSERT_TRUE(executor.Schedule(&a));
  ASSERT_TRUE(executor.Yield(&b));
  EXPECT_EQ(executor.queued(), 2u);
  EXPECT_TRUE(executor.RunOne());
  EXPECT_EQ(a.runs, 1);
  EXPECT_EQ(b.runs, 0);
  EXPECT_EQ(executor.RunUntilIdle(), 1u);
  EXPECT_EQ(b.runs, 1);
  EXPECT_FALSE(executor.IsOwnThread());
}

TEST(ManualExecutor, ShutdownHandsBackWhatIsQueuedAndRefusesLaterWork) {
  ManualExecutor executor;
  Ticker a, b, late;
  ASSERT_TRUE(executor.Schedule(&a));
  ASSERT_TRUE(executor.Schedule(&b));
  EXPECT_EQ(executor.Shutdown(), (std::vector<Runnable*>{&a, &b}));
  EXPECT_FALSE(executor.Schedule(&late));
  EXPECT_FALSE(executor.Yield(&late));
  EXPECT_EQ(executor.RunUntilIdle(), 0u);
  EXPECT_TRUE(executor.Shutdown().empty());
  EXPECT_EQ(a.runs + b.runs + late.runs, 0);
}

}  // namespace
}  // namespace troupe
