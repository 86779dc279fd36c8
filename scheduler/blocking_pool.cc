#include "scheduler/blocking_pool.h"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <utility>

namespace troupe {
namespace {

// The pool whose thread this is, or null on any other thread. Set once by
// each pool thread as it starts; read only by the thread itself. It is what
// lets Shutdown and the destructor notice that they run inside one of their
// own jobs. Per thread, so it shares nothing between pools or systems.
thread_local const BlockingPool* current_pool = nullptr;

// The kernel keeps at most 15 bytes of a thread's name.
constexpr size_t kMaxThreadNameBytes = 15;

// Longer idle timeouts are cut to this, so that "now + timeout" cannot
// overflow steady_clock; a century of waiting is as good as forever.
constexpr absl::Duration kMaxIdleTimeout = absl::Hours(24 * 365 * 100);

// Runs one job and destroys it, outside the pool's lock. An exception thrown
// by the job is dropped here, so that it kills neither the thread nor the
// process; callers that care wrap their own errors (see the header).
void RunJob(BlockingPool::Job job) noexcept {
  try {
    std::move(job)();
  } catch (...) {
  }
}

}  // namespace

BlockingPool::BlockingPool() : BlockingPool(Options()) {}

BlockingPool::BlockingPool(Options options)
    : max_threads_(std::max(options.max_threads, 1)),
      idle_timeout_(std::min(options.idle_timeout, kMaxIdleTimeout)),
      name_(options.name.substr(0, kMaxThreadNameBytes)) {}

BlockingPool::~BlockingPool() {
  if (current_pool == this) {
    std::fprintf(stderr,
                 "troupe: BlockingPool destroyed from one of its own jobs; "
                 "its thread cannot join itself\n");
    std::abort();
  }
  Shutdown();
}

bool BlockingPool::Submit(Job job) {
  assert(job != nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shutting_down_) {
      if (!idle_.empty()) {
        // Hand the job to the most recently idle thread. Notified under the
        // lock: once the lock is released, the worker may run the job, go
        // idle, time out and free its Worker.
        Worker* worker = idle_.back();
        idle_.pop_back();
        worker->job = std::move(job);
        worker->cv.notify_one();
        return true;
      }
      if (static_cast<int>(workers_.size()) < max_threads_ &&
          StartWorker(job)) {
        return true;
      }
      if (!workers_.empty()) {
        // All threads busy (or no new one could be started): a running
        // thread takes the job when it finishes its current one.
        queue_.push_back(std::move(job));
        return true;
      }
    }
  }
  // Refused: destroyed here, on the caller's thread, outside the lock.
  job = nullptr;
  return false;
}

bool BlockingPool::StartWorker(Job& job) {
  Worker& worker = workers_.emplace_back();
  worker.self = std::prev(workers_.end());
  worker.job = std::move(job);
  try {
    // The new thread blocks on mu_, held here, before it reads `worker`, so
    // it sees `worker.thread` set.
    worker.thread = std::thread([this, &worker] { WorkerMain(&worker); });
  } catch (...) {
    // std::system_error (EAGAIN: a thread limit) or std::bad_alloc.
    job = std::move(worker.job);
    workers_.erase(worker.self);
    return false;
  }
  return true;
}

void BlockingPool::WorkerMain(Worker* worker) {
  current_pool = this;
  pthread_setname_np(pthread_self(), name_.c_str());

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Job job;
    if (worker->job != nullptr) {
      // Handed over by Submit: runs even if Shutdown has begun since.
      job = std::move(worker->job);
      worker->job = nullptr;
    } else if (!queue_.empty()) {
      job = std::move(queue_.front());
      queue_.pop_front();
    } else if (shutting_down_) {
      break;
    } else {
      // Nothing to do: go idle. Submit takes this worker off `idle_` when it
      // hands it a job; on timeout or shutdown the worker takes itself off.
      // The queue stays empty while any thread is idle, since Submit queues
      // only when no thread is idle.
      idle_.push_back(worker);
      const auto deadline = std::chrono::steady_clock::now() +
                            absl::ToChronoNanoseconds(idle_timeout_);
      worker->cv.wait_until(lock, deadline, [this, worker] {
        return worker->job != nullptr || shutting_down_;
      });
      if (worker->job != nullptr) continue;
      idle_.erase(std::find(idle_.begin(), idle_.end(), worker));
      break;
    }
    lock.unlock();
    RunJob(std::move(job));
    lock.lock();
  }

  // Exit: leave `workers_`, put this thread's handle where the next exiting
  // thread or Shutdown will join it, and join the one that exited before.
  std::thread previous = std::move(last_exited_);
  last_exited_ = std::move(worker->thread);
  workers_.erase(worker->self);  // `worker` is gone from here on
  if (workers_.empty()) drained_cv_.notify_all();
  lock.unlock();
  // `this` is not touched again: Shutdown cannot return before this thread
  // has been joined, directly or through the thread that exits after it.
  if (previous.joinable()) previous.join();
}

void BlockingPool::Shutdown() {
  // Step 1: stop accepting, take the queue, wake the idle threads.
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shutting_down_) {
      shutting_down_ = true;
      dropped.swap(queue_);
      for (Worker* worker : idle_) worker->cv.notify_one();
    }
  }
  // Step 2: destroy the queued jobs, outside the lock: their destructors may
  // call back into the pool.
  dropped.clear();

  // Step 3: a pool thread cannot join itself. Its own Worker exits after the
  // current job; the destructor joins it.
  if (current_pool == this) return;

  // Steps 4 and 5: wait for every thread to exit, then join the chain.
  std::thread last;
  {
    std::unique_lock<std::mutex> lock(mu_);
    drained_cv_.wait(lock, [this] { return workers_.empty() && !joining_; });
    if (!last_exited_.joinable()) return;  // no thread ever, or joined already
    last = std::move(last_exited_);
    joining_ = true;
  }
  last.join();
  std::lock_guard<std::mutex> lock(mu_);
  joining_ = false;
  // Under the lock: a concurrent Shutdown (or the destructor) must not see
  // the pool finished and free it before this notify.
  drained_cv_.notify_all();
}

bool BlockingPool::IsOwnThread() const noexcept { return current_pool == this; }

int BlockingPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(workers_.size());
}

int BlockingPool::idle_threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(idle_.size());
}

size_t BlockingPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

}  // namespace troupe
