// ActorSystem: owns and runs actors — the workers, timers, blocking pool and
// logger they use. Several systems can live in one process, each with its
// own threads; nothing is global.
//
//   troupe::ActorSystem sys({.workers = 0});           // 0: one per hardware thread
//   troupe::Ref<Counter> c = sys.Spawn<Counter>();
//   c.Tell(Add{.by = 5});
//   absl::StatusOr<int64_t> v = c.Ask(Get{}).Wait(absl::Seconds(1));  // outside actors only
//
// Who may call what: every method from any thread, inside or outside
// actors, except Shutdown (never from inside an actor or a blocking job: it
// waits for actors to stop). Several threads may call Shutdown at once: the
// first does the work, the others wait for it and return its result.
//
// Shutdown, in order (also run by the destructor):
//   1. new spawns are stopped at once; sends to stopped actors fail with
//      Cancelled instead of Unavailable;
//   2. every actor is asked to stop (parents stop their children first);
//      each finishes the handler it is in, runs OnStop, and bounces what is
//      left in its mailbox — every pending ask fails with Cancelled;
//   3. actors still stopping when the timeout passes (a long queue, slow
//      handlers) are stopped immediately: what is left in their mailboxes is
//      bounced unhandled (asks fail with Cancelled) and they get
//      min(timeout, 5 s) more to return from the handler they are in;
//   4. once no actor is left, spawning closes: an actor spawned from then
//      on is created stopped (asks to it fail with Cancelled); one whose
//      spawn raced with the close is waited for like the others;
//   5. then: pending timers are destroyed unrun, the blocking pool drops
//      queued jobs and joins, the workers are joined.
// A handler that never returns keeps its worker: Shutdown then gives up
// and returns DeadlineExceeded, leaving the workers running rather than
// hanging. The system may still be destroyed: its
// threads are stopped and joined once its last actor is gone, by whichever
// thread drops the last reference — and when that is one of the system's
// own (the stuck handler returning at last, or a timer callback or blocking
// job destroyed with the last Ref), by a thread started for the purpose.

#ifndef TROUPE_ACTORS_ACTOR_SYSTEM_H_
#define TROUPE_ACTORS_ACTOR_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/ref.h"
#include "actors/dead_letters.h"
#include "actors/registry.h"
#include "actors/system_core.h"
#include "scheduler/executor.h"
#include "scheduler/timer_service.h"
#include "spdlog/logger.h"

namespace troupe {

struct ActorSystemOptions {
  int workers = 0;               // worker threads; 0: one per hardware thread
  int batch = 64;                // messages an actor runs per turn before yielding
  int max_blocking_threads = 64;  // cap of the blocking pool
  std::string name = "troupe";   // names threads and log lines
  // Where the system logs (actor failures, shutdown problems). Default: a
  // logger of its own writing to stderr.
  std::shared_ptr<spdlog::logger> logger = nullptr;
};

struct ActorSystemStats {
  uint64_t spawned = 0;       // actors ever spawned
  uint64_t live = 0;          // actors not yet stopped
  uint64_t dead_letters = 0;  // messages sent to stopped actors
  uint64_t failures = 0;      // handlers and hooks that threw
  uint64_t dropped = 0;       // messages refused by a full bounded mailbox
};

class ActorSystem {
 public:
  explicit ActorSystem(ActorSystemOptions options = {});
  ActorSystem(const ActorSystem&) = delete;
  ActorSystem& operator=(const ActorSystem&) = delete;
  // Shuts down (see above) if Shutdown was not called.
  ~ActorSystem();

  // Spawns an actor of type A constructed from `args`, outside any parent.
  // Once Shutdown has begun the actor is asked to stop at once; once it has
  // found no actor left (step 3), the actor is created stopped: asks to it
  // fail with Cancelled, tells are dead letters.
  template <class A, class... Args>
  Ref<A> Spawn(Args&&... args) {
    return internal::SpawnIn<A>(*core_, nullptr, nullptr, std::forward<Args>(args)...);
  }

  // Tells `to` `msg` after `delay`.
  template <class A, class M>
  TimerId SendAfter(absl::Duration delay, const Ref<A>& to, M msg) {
    return internal::SendAfterIn(*core_, delay, to, std::move(msg));
  }
  // Tells `to` a copy of `msg` every `interval` until cancelled.
  template <class A, class M>
  TimerId SendPeriodically(absl::Duration interval, const Ref<A>& to, M msg) {
    return internal::SendPeriodicallyIn(*core_, interval, to, std::move(msg));
  }
  // True if the timer will not fire (again).
  bool CancelTimer(TimerId id) { return core_->timers().Cancel(id); }

  // Runs blocking `fn` on the blocking pool; its result completes the future.
  template <class Fn>
  auto Blocking(Fn&& fn) {
    return internal::BlockingIn(*core_, std::forward<Fn>(fn));
  }

  // See the header comment. Every call returns the first call's result: a
  // call made while the first is under way waits for it to finish (the
  // later call's own timeout is not used).
  absl::Status Shutdown(absl::Duration timeout = absl::Seconds(30));

  ActorSystemStats stats() const;
  // Names for this system's actors (actors/registry.h).
  Registry& registry() const { return core_->registry(); }

  // Dead letters one by one (actors/dead_letters.h): to a callback, or to
  // an actor with a handler `On(const troupe::DeadLetter&)`.
  DeadLetterSubscription SubscribeDeadLetters(std::function<void(const DeadLetter&)> fn,
                                              DeadLetterOptions options = {}) {
    return core_->dead_letter_reports().Subscribe(
        [fn = std::move(fn)](const DeadLetter& d) {
          fn(d);
          return true;
        },
        options);
  }
  template <class A>
  DeadLetterSubscription SubscribeDeadLetters(const Ref<A>& to, DeadLetterOptions options = {}) {
    return core_->dead_letter_reports().Subscribe(
        [to](const DeadLetter& d) {
          const absl::Status sent = to.TryTell(d);
          return !(absl::IsUnavailable(sent) || absl::IsCancelled(sent));  // it has stopped
        },
        options);
  }
  bool UnsubscribeDeadLetters(DeadLetterSubscription id) { return core_->dead_letter_reports().Unsubscribe(id); }
  absl::Time Now() const { return core_->timers().Now(); }
  spdlog::logger& log() const { return core_->log(); }
  const std::string& name() const { return core_->name(); }

  // Runtime use (net/): what the system's actors share.
  internal::SystemCore& core() const { return *core_; }

 protected:
  // For the testkit: runs on the given executor and timers.
  ActorSystem(ActorSystemOptions options, std::unique_ptr<Executor> executor,
              std::shared_ptr<TimerService> timers);

 private:
  internal::SystemCore* core_;
  // Held through the first Shutdown, so that concurrent calls wait for it.
  std::mutex shutdown_mu_;
  std::optional<absl::Status> shutdown_status_ ABSL_GUARDED_BY(shutdown_mu_);  // the first result
};

}  // namespace troupe

#endif  // TROUPE_ACTORS_ACTOR_SYSTEM_H_
