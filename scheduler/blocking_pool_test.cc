#include "scheduler/blocking_pool.h"

#include <pthread.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

// Generous bound for anything a test waits on. A correct pool takes
// milliseconds; the bound only turns a bug into a failure instead of a hang.
constexpr absl::Duration kPatience = absl::Seconds(10);

// A counter that threads wait on until it reaches zero, with a bounded wait.
class Countdown {
 public:
  explicit Countdown(int count) : count_(count) {}

  void CountDown() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--count_ == 0) cv_.notify_all();
  }

  // True if the count reached zero within `timeout`.
  bool WaitFor(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return count_ <= 0; });
  }

  // Counts down, then waits for the others: a barrier that gives up.
  bool ArriveAndWaitFor(absl::Duration timeout) {
    CountDown();
    return WaitFor(timeout);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
};

// A gate that jobs block on until the test opens it.
class Gate : public Countdown {
 public:
  Gate() : Countdown(1) {}
  void Open() { CountDown(); }
};

// Polls `condition` until it holds or `timeout` passes. Polling an observable
// condition with a deadline, not sleeping for a guessed duration.
bool PollUntil(const std::function<bool()>& condition,
               absl::Duration timeout = kPatience) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Threads of this process, as the kernel counts them.
int ProcessThreadCount() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<int>(std::distance(begin(tasks), end(tasks)));
}

std::string CurrentThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// What the Probes of one test saw.
struct JobCounters {
  std::atomic<int> ran{0};
  std::atomic<int> destroyed{0};
  std::atomic<int> destroyed_without_running{0};
};

// Owned by a job: counts, when the job is destroyed, whether it ran, and can
// run a callback from its destructor.
class Probe {
 public:
  explicit Probe(JobCounters* counters, std::function<void()> on_destroy = {})
      : counters_(counters), on_destroy_(std::move(on_destroy)) {}
  Probe(Probe&& other) noexcept
      : counters_(std::exchange(other.counters_, nullptr)),
        on_destroy_(std::move(other.on_destroy_)),
        ran_(other.ran_) {}
  Probe& operator=(Probe&&) = delete;
  ~Probe() {
    if (counters_ == nullptr) return;  // moved from
    if (on_destroy_) on_destroy_();
    if (!ran_) counters_->destroyed_without_running++;
    counters_->destroyed++;
  }

  void Run() {
    ran_ = true;
    counters_->ran++;
  }

 private:
  JobCounters* counters_;
  std::function<void()> on_destroy_;
  bool ran_ = false;
};

TEST(BlockingPool, CreatesNoThreadBeforeTheFirstSubmit) {
  const int baseline = ProcessThreadCount();
  BlockingPool pool;
  EXPECT_EQ(pool.threads(), 0);
  EXPECT_EQ(pool.idle_threads(), 0);
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(ProcessThreadCount(), baseline);
}

TEST(BlockingPool, RunsJobsOnThreadsOtherThanTheCaller) {
  BlockingPool pool;
  std::promise<std::thread::id> ran_on;
  std::future<std::thread::id> result = ran_on.get_future();
  ASSERT_TRUE(
      pool.Submit([&ran_on] { ran_on.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(result.get(), std::this_thread::get_id());
  EXPECT_EQ(pool.threads(), 1);
}

TEST(BlockingPool, IsOwnThreadOnlyOnItsOwnThreads) {
  BlockingPool pool;
  BlockingPool other;
  std::promise<std::pair<bool, bool>> seen;
  std::future<std::pair<bool, bool>> result = seen.get_future();
  ASSERT_TRUE(pool.Submit([&] { seen.set_value({pool.IsOwnThread(), other.IsOwnThread()}); }));
  EXPECT_EQ(result.get(), std::make_pair(true, false));
  EXPECT_FALSE(pool.IsOwnThread());
}

TEST(BlockingPool, ReturnsEveryResultThroughItsPromise) {
  BlockingPool pool({.max_threads = 4});
  std::vector<std::future<int>> results;
  for (int i = 0; i < 50; ++i) {
    std::promise<int> promise;
    results.push_back(promise.get_future());
    ASSERT_TRUE(pool.Submit([i, promise = std::move(promise)]() mutable {
      promise.set_value(i * i);
    }));
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(results[i].get(), i * i);
  EXPECT_LE(pool.threads(), 4);
}

TEST(BlockingPool, NamesItsThreadsCutToFifteenBytes) {
  {
    BlockingPool pool;
    std::promise<std::string> name;
    std::future<std::string> result = name.get_future();
    pool.Submit([&name] { name.set_value(CurrentThreadName()); });
    EXPECT_EQ(result.get(), "troupe-blocking");
  }
  {
    BlockingPool pool({.name = "disk-writer-for-tests"});
    std::promise<std::string> name;
    std::future<std::string> result = name.get_future();
    pool.Submit([&name] { name.set_value(CurrentThreadName()); });
    EXPECT_EQ(result.get(), "disk-writer-for");
  }
}

TEST(BlockingPool, RunsMoreBlockingJobsThanCoresAtOnce) {
  // Each job blocks until all of them have started: that only ends if they
  // all run at the same time, on a machine with fewer cores than jobs.
  constexpr int kJobs = 8;
  BlockingPool pool;
  Countdown all_started(kJobs);
  std::vector<std::future<bool>> met;
  for (int i = 0; i < kJobs; ++i) {
    std::promise<bool> promise;
    met.push_back(promise.get_future());
    ASSERT_TRUE(
        pool.Submit([&all_started, promise = std::move(promise)]() mutable {
          promise.set_value(all_started.ArriveAndWaitFor(kPatience));
        }));
  }
  for (std::future<bool>& f : met) EXPECT_TRUE(f.get());
  EXPECT_EQ(pool.threads(), kJobs);
}

TEST(BlockingPool, ReusesAnIdleThreadInsteadOfStartingANewOne) {
  BlockingPool pool;
  std::promise<std::thread::id> first;
  std::future<std::thread::id> first_id = first.get_future();
  pool.Submit([&first] { first.set_value(std::this_thread::get_id()); });
  const std::thread::id first_thread = first_id.get();
  ASSERT_TRUE(PollUntil([&] { return pool.idle_threads() == 1; }));

  std::promise<std::thread::id> second;
  std::future<std::thread::id> second_id = second.get_future();
  pool.Submit([&second] { second.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(second_id.get(), first_thread);
  EXPECT_EQ(pool.threads(), 1);
}

TEST(BlockingPool, NeverRunsMoreThanMaxThreadsAtOnce) {
  BlockingPool pool({.max_threads = 2});
  Gate gate;
  std::atomic<int> started{0};
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  Countdown finished(6);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(pool.Submit([&] {
      const int now = ++running;
      int seen = most_running.load();
      while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
      }
      ++started;
      gate.WaitFor(kPatience);
      --running;
      finished.CountDown();
    }));
  }
  ASSERT_TRUE(PollUntil([&] { return started.load() == 2; }));
  EXPECT_EQ(pool.threads(), 2);
  EXPECT_EQ(pool.idle_threads(), 0);
  EXPECT_EQ(pool.queued(), 4u);

  gate.Open();
  ASSERT_TRUE(finished.WaitFor(kPatience));
  EXPECT_EQ(most_running.load(), 2);
  EXPECT_EQ(pool.threads(), 2);
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(BlockingPool, RunsQueuedJobsInSubmissionOrder) {
  BlockingPool pool({.max_threads = 1});
  Gate gate;
  std::promise<void> blocker_started;
  pool.Submit([&] {
    blocker_started.set_value();
    gate.WaitFor(kPatience);
  });
  blocker_started.get_future().wait();

  // Only the pool's one thread touches `order` until `done` is ready.
  constexpr int kQueued = 20;
  std::vector<int> order;
  std::promise<void> done;
  for (int i = 0; i < kQueued; ++i) {
    pool.Submit([&, i] {
      order.push_back(i);
      if (i == kQueued - 1) done.set_value();
    });
  }
  EXPECT_EQ(pool.queued(), static_cast<size_t>(kQueued));

  gate.Open();
  done.get_future().wait();
  ASSERT_EQ(order.size(), static_cast<size_t>(kQueued));
  for (int i = 0; i < kQueued; ++i) EXPECT_EQ(order[i], i);
}

TEST(BlockingPool, IdleThreadsExitAfterTheIdleTimeout) {
  const int baseline = ProcessThreadCount();
  BlockingPool pool({.idle_timeout = absl::Milliseconds(50)});
  constexpr int kJobs = 3;
  Countdown all_started(kJobs);
  Countdown finished(kJobs);
  std::atomic<int> overlapped{0};
  for (int i = 0; i < kJobs; ++i) {
    pool.Submit([&] {
      if (all_started.ArriveAndWaitFor(kPatience)) ++overlapped;
      finished.CountDown();
    });
  }
  ASSERT_TRUE(finished.WaitFor(kPatience));
  EXPECT_EQ(overlapped.load(), kJobs);  // so the pool had three threads

  ASSERT_TRUE(PollUntil([&] { return pool.threads() == 0; }));
  EXPECT_EQ(pool.idle_threads(), 0);
  // Gone from the kernel too, not merely from the pool's books.
  EXPECT_TRUE(PollUntil([&] { return ProcessThreadCount() == baseline; }));

  // The pool starts threads again on demand.
  std::promise<int> again;
  std::future<int> result = again.get_future();
  ASSERT_TRUE(pool.Submit([&again] { again.set_value(7); }));
  EXPECT_EQ(result.get(), 7);
}

TEST(BlockingPool, SubmitAfterShutdownReturnsFalseAndDestroysTheJob) {
  BlockingPool pool;
  pool.Shutdown();

  JobCounters counters;
  std::thread::id destroyed_on;
  Probe probe(&counters, [&] { destroyed_on = std::this_thread::get_id(); });
  EXPECT_FALSE(
      pool.Submit([probe = std::move(probe)]() mutable { probe.Run(); }));
  EXPECT_EQ(counters.destroyed.load(), 1);
  EXPECT_EQ(counters.ran.load(), 0);
  EXPECT_EQ(destroyed_on, std::this_thread::get_id());
  EXPECT_EQ(pool.threads(), 0);
}

TEST(BlockingPool, ShutdownDropsQueuedJobsAndWaitsForRunningOnes) {
  BlockingPool pool({.max_threads = 1});
  Gate gate;
  std::promise<void> blocker_started;
  std::atomic<bool> blocker_finished{false};
  pool.Submit([&] {
    blocker_started.set_value();
    gate.WaitFor(kPatience);
    blocker_finished = true;
  });
  blocker_started.get_future().wait();

  // Queued jobs that own promises: dropping them breaks the promises, which
  // is how a caller's future learns its job was cancelled.
  std::atomic<int> queued_ran{0};
  std::vector<std::future<void>> cancelled;
  for (int i = 0; i < 3; ++i) {
    std::promise<void> promise;
    cancelled.push_back(promise.get_future());
    pool.Submit([&queued_ran, promise = std::move(promise)]() mutable {
      ++queued_ran;
      promise.set_value();
    });
  }
  ASSERT_EQ(pool.queued(), 3u);

  std::atomic<bool> shutdown_returned{false};
  std::thread stopper([&] {
    pool.Shutdown();
    shutdown_returned = true;
  });
  // The queued jobs are destroyed while the running one still holds its
  // thread...
  for (std::future<void>& f : cancelled) {
    EXPECT_THROW(f.get(), std::future_error);
  }
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_FALSE(shutdown_returned.load());
  // ...and Shutdown returns only after the running job has finished.
  gate.Open();
  stopper.join();
  EXPECT_TRUE(blocker_finished.load());
  EXPECT_EQ(queued_ran.load(), 0);
  EXPECT_EQ(pool.threads(), 0);
}

TEST(BlockingPool, DestroysDroppedJobsOutsideItsLock) {
  // A dropped job's destructor calls back into the pool; with the pool's
  // lock held that would deadlock.
  BlockingPool pool({.max_threads = 1});
  Gate gate;
  std::promise<void> blocker_started;
  pool.Submit([&] {
    blocker_started.set_value();
    gate.WaitFor(kPatience);
  });
  blocker_started.get_future().wait();

  JobCounters counters;
  std::promise<bool> resubmit_accepted;
  std::future<bool> resubmitted = resubmit_accepted.get_future();
  Probe probe(&counters, [&] {
    pool.queued();
    resubmit_accepted.set_value(pool.Submit([] {}));
  });
  pool.Submit([probe = std::move(probe)]() mutable { probe.Run(); });
  ASSERT_EQ(pool.queued(), 1u);

  // Shutdown drops the queued job while the blocker still holds the only
  // thread; the blocker is released only once the drop has happened.
  std::thread stopper([&pool] { pool.Shutdown(); });
  EXPECT_FALSE(resubmitted.get());
  gate.Open();
  stopper.join();
  EXPECT_EQ(counters.destroyed_without_running.load(), 1);
  EXPECT_EQ(counters.ran.load(), 0);
}

TEST(BlockingPool, AThrowingJobDoesNotKillItsThread) {
  BlockingPool pool({.max_threads = 1});
  std::promise<std::thread::id> thrower;
  std::future<std::thread::id> thrower_id = thrower.get_future();
  pool.Submit([&thrower] {
    thrower.set_value(std::this_thread::get_id());
    throw std::runtime_error("disk on fire");
  });
  pool.Submit([] { throw 42; });  // not even a std::exception

  std::promise<std::thread::id> next;
  std::future<std::thread::id> next_id = next.get_future();
  pool.Submit([&next] { next.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(next_id.get(), thrower_id.get());
  EXPECT_EQ(pool.threads(), 1);
}

TEST(BlockingPool, AJobCanSubmitFollowUpJobs) {
  BlockingPool pool({.max_threads = 1});
  std::promise<int> follow_up;
  std::future<int> result = follow_up.get_future();
  pool.Submit([&] { pool.Submit([&follow_up] { follow_up.set_value(2); }); });
  EXPECT_EQ(result.get(), 2);
}

TEST(BlockingPool, ShutdownFromInsideAJobReturnsWithoutJoiningItself) {
  const int baseline = ProcessThreadCount();
  {
    BlockingPool pool;
    std::promise<void> returned;
    std::future<void> job_returned = returned.get_future();
    pool.Submit([&] {
      pool.Shutdown();  // a programming error, detected: does not deadlock
      returned.set_value();
    });
    ASSERT_EQ(job_returned.wait_for(absl::ToChronoNanoseconds(kPatience)),
              std::future_status::ready);
    EXPECT_FALSE(pool.Submit([] {}));
  }  // the destructor waits and joins
  // Polled: the kernel lists a joined thread until it has finished exiting.
  EXPECT_TRUE(PollUntil([&] { return ProcessThreadCount() == baseline; }));
}

TEST(BlockingPool, ShutdownIsIdempotentAndSafeFromSeveralThreads) {
  BlockingPool pool;
  Gate gate;
  std::promise<void> started;
  std::atomic<bool> finished{false};
  pool.Submit([&] {
    started.set_value();
    gate.WaitFor(kPatience);
    finished = true;
  });
  started.get_future().wait();

  std::atomic<int> returned{0};
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 3; ++i) {
    stoppers.emplace_back([&] {
      pool.Shutdown();
      // Every caller, not only the first, returns after the job is done.
      EXPECT_TRUE(finished.load());
      ++returned;
    });
  }
  EXPECT_EQ(returned.load(), 0);
  gate.Open();
  for (std::thread& t : stoppers) t.join();
  EXPECT_EQ(returned.load(), 3);
  pool.Shutdown();
  EXPECT_EQ(pool.threads(), 0);
}

TEST(BlockingPool, StressSeveralSubmittersWhileThreadsComeAndGo) {
  // With a zero idle timeout a thread exits the moment it finds no work. The
  // submitters send their bursts in rounds and wait for them to finish, so at
  // every round's end the pool runs dry and its threads exit while the next
  // round's jobs arrive: starting threads, handing jobs to idle ones,
  // queueing and exiting (with its chain of joins) all interleave.
  constexpr int kSubmitters = 4;
  constexpr int kRounds = 100;
  constexpr int kBurstSize = 25;
  BlockingPool pool({.max_threads = 3, .idle_timeout = absl::ZeroDuration()});
  std::atomic<int> ran{0};
  std::barrier round_over(kSubmitters);
  std::vector<std::thread> submitters;
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        Countdown burst_done(kBurstSize);
        for (int i = 0; i < kBurstSize; ++i) {
          const bool accepted = pool.Submit([&] {
            ++ran;
            burst_done.CountDown();
          });
          EXPECT_TRUE(accepted);
          if (!accepted) burst_done.CountDown();
        }
        // The jobs refer to `burst_done`: it must outlive them.
        if (!burst_done.WaitFor(kPatience)) {
          ADD_FAILURE() << "a burst did not finish";
          std::abort();
        }
        round_over.arrive_and_wait();
      }
    });
  }
  for (std::thread& t : submitters) t.join();
  EXPECT_EQ(ran.load(), kSubmitters * kRounds * kBurstSize);
  EXPECT_LE(pool.threads(), 3);
  // Every thread leaves once the work is done.
  EXPECT_TRUE(PollUntil([&] { return pool.threads() == 0; }));
}

TEST(BlockingPool, StressShutdownRacingSubmittersLosesNoJob) {
  constexpr int kSubmitters = 4;
  constexpr int kMaxJobsEach = 5000;
  BlockingPool pool({.max_threads = 2});
  JobCounters counters;
  std::atomic<int> attempted{0};
  std::atomic<int> accepted{0};
  std::vector<std::thread> submitters;
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&] {
      for (int i = 0; i < kMaxJobsEach; ++i) {
        ++attempted;
        Probe probe(&counters);
        if (!pool.Submit(
                [probe = std::move(probe)]() mutable { probe.Run(); })) {
          return;
        }
        ++accepted;
      }
    });
  }
  ASSERT_TRUE(PollUntil([&] { return accepted.load() >= 500; }));
  pool.Shutdown();
  for (std::thread& t : submitters) t.join();

  // Every job was destroyed exactly once; each accepted one either ran or was
  // dropped from the queue; each refused one never ran.
  EXPECT_EQ(counters.destroyed.load(), attempted.load());
  EXPECT_EQ(counters.ran.load() + counters.destroyed_without_running.load(),
            attempted.load());
  EXPECT_LE(counters.ran.load(), accepted.load());
  EXPECT_GT(counters.ran.load(), 0);
  EXPECT_EQ(pool.threads(), 0);
}

}  // namespace
}  // namespace troupe
