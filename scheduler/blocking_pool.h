// BlockingPool: a thread pool, separate from the scheduler's workers, for work
// that blocks — file I/O, a blocking library call, a DNS lookup. An actor that
// must block hands the work to this pool instead of holding a worker, so the
// work-stealing pool keeps running the other actors.
//
// Threads start on demand and leave when idle. A submitted job goes, in this
// order of preference:
//   1. to an idle pool thread, if there is one (the one that went idle most
//      recently, so that under light load the same few threads stay warm and
//      the surplus ones reach their idle timeout and exit);
//   2. to a new thread, if fewer than `max_threads` exist;
//   3. to the back of a FIFO queue, taken by the next thread that finishes a
//      job.
// A thread that stays idle for `idle_timeout` exits. Before the first Submit
// no thread exists; a pool whose threads have all timed out has none either,
// and costs no CPU.
//
// Who may call what:
//   - Submit, Shutdown and the stats may be called from any thread, including
//     from inside a job (a job may Submit follow-up work).
//   - Shutdown from inside one of this pool's own jobs is a programming error:
//     the job's thread cannot join itself. It is detected: the call then stops
//     the pool (no new jobs, queued ones dropped) and returns at once without
//     waiting or joining. The destructor, called later from another thread,
//     does the waiting and joining.
//   - The destructor must not run on one of the pool's own threads; that
//     aborts the process with a message. IsOwnThread tells, from any thread,
//     whether the caller is one of them.
//
// Jobs and errors. A job is an `absl::AnyInvocable<void() &&>`, run at most
// once. It returns nothing: a caller that wants a result or an error wraps
// the call itself (the actor layer completes a promise from inside the job,
// which turns the result, or the exception, into a future). If a job throws
// anyway, the pool thread catches the exception, drops it and goes on with
// the next job; neither the thread nor the process dies, and nobody is told.
// A job that blocks forever holds its thread forever, and Shutdown waits for
// it. A job that waits for another job queued behind it can deadlock once
// all `max_threads` threads are busy.
//
// Lifetime rules:
//   - A job must not outlive what it captures by reference or raw pointer:
//     it may run (or be destroyed) on another thread at any time until
//     Shutdown returns.
//   - Every job accepted by Submit is destroyed exactly once, after running or
//     without running. A job is destroyed without running when Submit
//     refuses it (on the caller's thread, before Submit returns) or when
//     Shutdown drops it from the queue (on Shutdown's thread). Both happen
//     outside the pool's lock, so a job's destructor — typically a promise's,
//     completing its future as cancelled — may call back into the pool.
//   - A job that Submit handed to a thread (an idle one or a new one) runs,
//     even if Shutdown begins before it starts; only jobs still waiting in
//     the FIFO queue are dropped.
//   - The pool must outlive every call made on it. The destructor calls
//     Shutdown, so when it returns no pool thread is left.
//
// Shutdown sequence:
//   1. Under the lock: mark the pool as shutting down (Submit now refuses
//      jobs), take the queued jobs out, wake every idle thread.
//   2. Outside the lock: destroy the taken jobs without running them.
//   3. If called from one of this pool's threads, return here.
//   4. Wait until every thread has finished its job and exited.
//   5. Join the threads: each exiting thread joins the one that exited before
//      it, so joining the last one to exit joins them all.
// Any later Shutdown, concurrent or not, waits for the same end state.
//
// Locking: one std::mutex guards all of the pool's state; there are no
// atomics, so no memory-ordering subtleties. Each thread has its own
// std::condition_variable on which it waits while idle, so Submit wakes
// exactly the thread it handed the job to. Jobs run, and are destroyed,
// outside the lock. std::mutex is used rather than absl::Mutex because the
// system's Abseil is not instrumented, and ThreadSanitizer could not see an
// absl::Mutex synchronize.

#ifndef TROUPE_SCHEDULER_BLOCKING_POOL_H_
#define TROUPE_SCHEDULER_BLOCKING_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace troupe {

class BlockingPool {
 public:
  using Job = absl::AnyInvocable<void() &&>;

  struct Options {
    // Upper bound on live threads; values below 1 count as 1.
    int max_threads = 64;
    // How long a thread waits for work before it exits. Zero or negative:
    // a thread exits as soon as it finds no work.
    // absl::InfiniteDuration(): threads never time out.
    absl::Duration idle_timeout = absl::Seconds(10);
    // Thread name, as shown by ps and debuggers; cut to its first 15 bytes
    // (the kernel's limit).
    std::string name = "troupe-blocking";
  };

  BlockingPool();
  explicit BlockingPool(Options options);

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Calls Shutdown. Must not run on one of this pool's threads.
  ~BlockingPool();

  // Runs `job` on a pool thread, or queues it. Thread-safe. Returns false,
  // having destroyed `job` on the calling thread without running it, once
  // Shutdown has started — or if the operating system refuses to start a
  // thread while the pool has none to queue the job for. `job` must not be
  // empty.
  bool Submit(Job job);

  // Stops the pool; see "Shutdown sequence" above. Idempotent and
  // thread-safe. Returns once no job is running and every thread is joined,
  // except when called from one of this pool's own jobs (see above).
  void Shutdown();

  // True if the calling thread is one of this pool's threads (running a job,
  // or idle between jobs).
  bool IsOwnThread() const noexcept;

  // Snapshots, for tests and monitoring: they may be stale when returned.
  // Live threads, running a job or idle.
  int threads() const;
  // Threads waiting for work.
  int idle_threads() const;
  // Jobs waiting for a thread (non-zero only when all max_threads are busy).
  size_t queued() const;

 private:
  // One pool thread. Lives in `workers_` from its start until it exits; only
  // the pool's lock protects it. `job` and `cv` form the hand-off from Submit
  // to an idle thread: Submit fills `job` and notifies `cv`.
  struct Worker {
    std::thread thread;
    std::condition_variable cv;
    Job job;
    std::list<Worker>::iterator self;
  };

  // The body of every pool thread.
  void WorkerMain(Worker* worker);
  // Starts a thread whose first job is `job`. Returns false, leaving `job`
  // untouched, if the thread could not be started.
  bool StartWorker(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  const absl::Duration idle_timeout_;
  const std::string name_;  // already cut to 15 bytes

  mutable std::mutex mu_;
  // Signalled when the last worker exits, and when a Shutdown finishes
  // joining.
  std::condition_variable drained_cv_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // True while a Shutdown call joins `last_exited_`'s chain outside the lock.
  bool joining_ ABSL_GUARDED_BY(mu_) = false;
  // Every live thread. std::list: a Worker's address must stay put while its
  // thread runs.
  std::list<Worker> workers_ ABSL_GUARDED_BY(mu_);
  // Idle threads; the most recently idle one is at the back.
  std::vector<Worker*> idle_ ABSL_GUARDED_BY(mu_);
  // Jobs waiting for a thread, oldest first.
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  // The thread that exited last, not yet joined. An exiting thread takes the
  // previous one from here, puts itself in, and joins the previous one, so at
  // most one exited thread is ever left unjoined (its stack, not a running
  // thread); Shutdown joins it.
  std::thread last_exited_ ABSL_GUARDED_BY(mu_);
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_BLOCKING_POOL_H_
