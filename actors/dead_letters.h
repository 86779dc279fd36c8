// Dead letters you can see: messages that reached no handler because their
// target had stopped (or, for a send to another node, because the link to
// it failed). Every one is counted (ActorSystemStats::dead_letters); a
// subscription also receives them one by one, rate limited.
//
//   sys.SubscribeDeadLetters([](const troupe::DeadLetter& d) {
//     LOG(WARNING) << d.message_type << " to " << d.target.id() << ": " << d.reason;
//   });
//   sys.SubscribeDeadLetters(monitor_ref);   // an actor with On(const DeadLetter&)
//
// Who may call what: Subscribe and Unsubscribe from any thread. A callback
// runs on the thread that found the dead letter — a worker, the timer
// thread, an I/O thread — outside any actor's context; keep it short and
// never block in it. An actor subscriber is told, and its subscription ends
// by itself once it has stopped.
//
// Rate limit: each subscription receives at most `max_per_second` reports
// per one-second window of the system's clock; the next report after a window that dropped
// some says how many in `suppressed`. Dead letters whose message is itself
// a DeadLetter are counted but never reported (a stopped subscriber would
// otherwise feed itself).

#ifndef TROUPE_ACTORS_DEAD_LETTERS_H_
#define TROUPE_ACTORS_DEAD_LETTERS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/ref.h"

namespace troupe {

struct DeadLetter {
  ActorRef target;           // empty for a message bound for another node
  std::string message_type;  // the message's C++ type
  absl::Status reason;       // why it was not delivered
  uint64_t suppressed = 0;   // dropped by the rate limit since the last report
};

struct DeadLetterOptions {
  int max_per_second = 100;
};

struct DeadLetterSubscription {
  uint64_t value = 0;
};

class DeadLetters {
 public:
  // `now` is the clock of the rate limit (the system's timers: virtual
  // time in the testkit).
  explicit DeadLetters(std::function<absl::Time()> now) : now_(std::move(now)) {}
  DeadLetters(const DeadLetters&) = delete;
  DeadLetters& operator=(const DeadLetters&) = delete;

  using Callback = std::function<bool(const DeadLetter&)>;  // false: end the subscription
  DeadLetterSubscription Subscribe(Callback fn, DeadLetterOptions options);
  bool Unsubscribe(DeadLetterSubscription id);

  // Any thread. `target` may be null; `type` has static storage.
  void Report(internal::ActorCell* target, std::string_view type, const absl::Status& reason) noexcept;

 private:
  struct Subscriber {
    uint64_t id;
    Callback fn;
    int max_per_second;
    std::mutex mu;
    absl::Time window_start ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    int in_window ABSL_GUARDED_BY(mu) = 0;
    uint64_t suppressed ABSL_GUARDED_BY(mu) = 0;
  };

  const std::function<absl::Time()> now_;
  // Relaxed: a hint that spares Report the lock when nobody listens; a
  // subscription made concurrently with a dead letter may miss it.
  std::atomic<int> subscribers_{0};
  std::mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::shared_ptr<Subscriber>> list_ ABSL_GUARDED_BY(mu_);
};

}  // namespace troupe

#endif  // TROUPE_ACTORS_DEAD_LETTERS_H_
