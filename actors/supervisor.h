// Supervisor: an actor that starts children from specifications, restarts
// them when they stop, and gives up — failing itself, so that its own
// supervisor hears of it — when they fail too often.
//
//   troupe::SupervisorOptions o;
//   o.strategy = troupe::Strategy::kOneForOne;
//   o.children.push_back(troupe::ChildSpec::Of<Worker>("worker", db_address));
//   troupe::Ref<troupe::Supervisor> sup = sys.Spawn<troupe::Supervisor>(std::move(o));
//   troupe::Ref<Worker> w = troupe::ChildOf<Worker>(sup, "worker").Wait().value();
//
// A restarted child keeps its Ref and its mailbox: the failed instance is
// destroyed (its OnStop runs with the failure), a new one is constructed in
// the same place from the specification's arguments, and the messages
// queued meanwhile are handled by the new instance. The message whose
// handler threw is dropped (its ask fails with Internal and the text).
// docs/fault-tolerance.md says what a client sees during a restart.
//
// Restart types (as in OTP): permanent children are restarted after any
// stop, transient ones only after a stop with a non-OK reason, temporary
// ones never. Strategies: one-for-one restarts the child that stopped;
// one-for-all restarts every child; rest-for-one restarts it and those
// started after it. Children start in list order and stop in reverse
// order, each given `shutdown` to stop in order before it is stopped
// immediately. More than `max_restarts` restarts within `within` and the
// supervisor stops its children and stops itself with Internal.
//
// Who may call what: a Supervisor is an actor; talk to it with its Ref
// (GetChild, StartChild, TerminateChild) from any thread.

#ifndef TROUPE_ACTORS_SUPERVISOR_H_
#define TROUPE_ACTORS_SUPERVISOR_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "actors/actor.h"

namespace troupe {

enum class Restart { kPermanent, kTransient, kTemporary };
enum class Strategy { kOneForOne, kOneForAll, kRestForOne };

// Delays between restarts of one child, as Akka's restartWithBackoff: min,
// doubling up to max, each stretched by up to `random_factor` at random.
// The count starts again once the child has run `reset_after` (zero: the
// mean of min and max) without stopping.
struct Backoff {
  absl::Duration min = absl::Milliseconds(200);
  absl::Duration max = absl::Seconds(10);
  double random_factor = 0.2;
  absl::Duration reset_after = absl::ZeroDuration();
};

// How to start one child, and what to do when it stops.
struct ChildSpec {
  // A child of type A constructed from copies of `args`, at first and at
  // each restart.
  template <class A, class... Args>
  static ChildSpec Of(std::string name, Args... args);

  std::string name;
  Restart restart = Restart::kPermanent;
  // How long the child may take to stop in order (handling what is queued)
  // when the supervisor stops it, before it is stopped immediately. Zero:
  // immediately at once.
  absl::Duration shutdown = absl::Seconds(5);

  // Runtime use: spawns the child under `parent`.
  std::function<ActorRef(internal::ActorCell* parent)> start;
  std::string type_name;
};

struct SupervisorOptions {
  Strategy strategy = Strategy::kOneForOne;
  // Restart intensity: more than this many restarts within `within` and the
  // supervisor gives up.
  int max_restarts = 3;
  absl::Duration within = absl::Seconds(5);
  // Unset: restarts follow at once.
  std::optional<Backoff> backoff;
  std::vector<ChildSpec> children;
};

// Asks of a Supervisor.
struct GetChild {  // -> absl::StatusOr<ActorRef>; NotFound if no such child runs
  std::string name;
};
struct StartChild {  // -> absl::StatusOr<ActorRef>; adds a child at the end
  ChildSpec spec;
};
struct TerminateChild {  // -> absl::Status; stops the child for good and forgets it
  std::string name;
};

namespace internal {
struct RestartDue {
  uint64_t round;
};
}  // namespace internal

class Supervisor : public Actor<Supervisor> {
 public:
  explicit Supervisor(SupervisorOptions options);

  void OnStart();
  absl::StatusOr<ActorRef> On(const GetChild& m);
  absl::StatusOr<ActorRef> On(const StartChild& m);
  absl::Status On(const TerminateChild& m);
  void On(const internal::RestartDue& m);

  // Runtime hooks (actors/actor_box.h), in this actor's context.
  void HandleChildEvent(internal::ActorCell* child, const absl::Status& reason, bool ended) noexcept;
  bool StopChildrenInOrder(bool now) noexcept;

 private:
  enum class State {
    kRunning,    // an instance runs
    kRecycling,  // asked to end its instance for a group restart
    kWaiting,    // between instances, until the restart
    kStopping,   // asked to stop for good
  };
  struct Child {
    ChildSpec spec;
    ActorRef ref;
    State state = State::kRunning;
    bool forget_when_gone = false;
    int consecutive = 0;  // restarts since the backoff was last reset
    absl::Time started;
    TimerId shutdown_timer;
  };

  absl::Status StartOne(Child& child);
  Child* Find(internal::ActorCell* cell);
  Child* FindByName(const std::string& name);
  void OnInstanceEnded(Child& child, const absl::Status& reason);
  void StopForGood(Child& child, const absl::Status& reason, bool now);
  void StopNextInOrder();
  void RestartGroup();
  void GiveUp(const Child& child, const absl::Status& reason);
  absl::Duration NextDelay(Child& child);

  SupervisorOptions options_;
  std::deque<Child> children_;  // start order; deque: stable references
  std::deque<absl::Time> restarts_;
  // A restart in progress: the children to restart, and the round its
  // timer carries (stale timers are ignored).
  std::vector<Child*> group_;
  uint64_t round_ = 0;
  bool restart_due_ = false;
  bool stopping_ = false;
  bool stop_now_ = false;
  absl::BitGen random_;
};

// The Ref of a supervisor's child `name`, checked to be an A.
template <class A>
Future<Ref<A>> ChildOf(const Ref<Supervisor>& supervisor, std::string name,
                       absl::Duration timeout = absl::InfiniteDuration()) {
  return supervisor.Ask(GetChild{std::move(name)}, timeout)
      .Then([](Result<ActorRef> r) -> absl::StatusOr<Ref<A>> {
        if (!r.ok()) return r.status();
        ActorRef ref = *std::move(r);
        if (ref.cell()->type_name() != internal::TypeName<A>()) {
          return absl::InvalidArgumentError(absl::StrCat("the child is a ", std::string(ref.cell()->type_name()),
                                                         ", not a ", std::string(internal::TypeName<A>())));
        }
        return Ref<A>::UncheckedCast(std::move(ref));
      });
}

template <class A, class... Args>
ChildSpec ChildSpec::Of(std::string name, Args... args) {
  ChildSpec spec;
  spec.name = std::move(name);
  spec.type_name = std::string(internal::TypeName<A>());
  spec.start = [args = std::make_tuple(args...)](internal::ActorCell* parent) -> ActorRef {
    internal::SpawnOptions options;
    options.rebuild = [args](internal::ActorCell& cell) {
      std::apply([&](const auto&... a) { static_cast<internal::ActorBox<A>&>(cell).Construct(a...); }, args);
    };
    return std::apply(
        [&](const auto&... a) -> ActorRef {
          return internal::SpawnIn<A>(parent->core(), parent, &options, a...);
        },
        args);
  };
  return spec;
}

}  // namespace troupe

#endif  // TROUPE_ACTORS_SUPERVISOR_H_
