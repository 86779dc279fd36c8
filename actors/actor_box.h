// ActorBox<A>: the allocation an actor of type A lives in — the runtime's
// ActorCell followed by the user's A, constructed in place. The A is
// destroyed when the actor stops; the box is freed when the last Ref goes.
//
// Who may call what: the runtime only (spawn, message delivery, lifecycle),
// always in the actor's context except for construction.

#ifndef TROUPE_ACTORS_ACTOR_BOX_H_
#define TROUPE_ACTORS_ACTOR_BOX_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "actors/actor_cell.h"

namespace troupe::internal {

// The type's name, for logs ("Counter", "ns::Worker").
template <class T>
constexpr std::string_view TypeName() {
  std::string_view p = __PRETTY_FUNCTION__;
  const size_t start = p.find("T = ") + 4;
  const size_t end = p.find_first_of(";]", start);
  return p.substr(start, end - start);
}

// TypeName<T>(), computed at compile time: for paths that need the name on
// every call (a remote send carries its message type's).
template <class T>
inline constexpr std::string_view kTypeName = TypeName<T>();

// An actor type's mailbox bound: A::kMailboxCapacity if it declares one,
// else 0 (unbounded).
template <class A>
constexpr uint32_t MailboxCapacityOf() {
  if constexpr (requires { A::kMailboxCapacity; }) {
    static_assert(A::kMailboxCapacity > 0, "troupe: kMailboxCapacity must be positive");
    return A::kMailboxCapacity;
  } else {
    return 0;
  }
}

// Counts the places taken in a bounded mailbox: user messages sent and not
// yet delivered. Relaxed atomics: it is a count; the mailbox itself
// publishes the messages. Empty (and free) for unbounded actors.
template <uint32_t kCapacity>
class MailboxPlaces {
 public:
  // Any thread. False if the mailbox is full.
  bool TryTake() noexcept {
    if (taken_.fetch_add(1, std::memory_order_relaxed) >= kCapacity) {
      taken_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void Give() noexcept { taken_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> taken_{0};
};
template <>
class MailboxPlaces<0> {
 public:
  bool TryTake() noexcept { return true; }
  void Give() noexcept {}
};

template <class A>
class ActorBox;

// Defined in actors/remote_dispatch.h: ActorBox<A>::DeliverRemote.
template <class A>
absl::Status DeliverRemoteTo(ActorBox<A>& box, uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route);

// The cell whose user object is being constructed on this thread, so that
// Actor<A>'s constructor can find it (and Self() works in constructors).
ActorCell*& ConstructingCell() noexcept;

template <class A>
class ActorBox final : public ActorCell {
 public:
  ActorBox() = default;

  // Constructs the user's object. On an exception nothing is left
  // constructed and the exception propagates.
  template <class... Args>
  void Construct(Args&&... args) {
    ActorCell* previous = std::exchange(ConstructingCell(), this);
    try {
      new (&storage_) A(std::forward<Args>(args)...);
    } catch (...) {
      ConstructingCell() = previous;
      throw;
    }
    ConstructingCell() = previous;
    constructed_ = true;
  }

  A& actor() noexcept { return *std::launder(reinterpret_cast<A*>(&storage_)); }
  MailboxPlaces<MailboxCapacityOf<A>()>& places() noexcept { return places_; }

  std::string_view type_name() const noexcept override { return TypeName<A>(); }

  absl::Status DeliverRemote(uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route) override {
    return DeliverRemoteTo<A>(*this, type_id, in, std::move(route));
  }

 private:
  ~ActorBox() override { DestroyState(); }

  void HandleStart() override {
    if constexpr (requires(A& a) { a.OnStart(); }) actor().OnStart();
  }
  void HandleStop(const absl::Status& reason) override {
    static_assert(requires(A& a, const absl::Status& r) { a.OnStop(r); } || !requires(A& a) { a.OnStop(); },
                  "troupe: the stop hook takes the stop reason, void OnStop(const absl::Status& reason) "
                  "(actors/actor.h); an OnStop() without it would never run (the actor type is named in this "
                  "instantiation of ActorBox)");
    if constexpr (requires(A& a) { a.OnStop(reason); }) {
      if (constructed_) actor().OnStop(reason);
    }
  }
  void HandleChildEvent(ActorCell* child, const absl::Status& reason, bool ended) noexcept override {
    if constexpr (requires(A& a) { a.HandleChildEvent(child, reason, ended); }) {
      if (constructed_) actor().HandleChildEvent(child, reason, ended);
    }
  }
  bool StopChildrenInOrder(bool now) noexcept override {
    if constexpr (requires(A& a) { a.StopChildrenInOrder(now); }) {
      if (constructed_) return actor().StopChildrenInOrder(now);
    }
    return false;
  }
  void GiveMailboxPlace() noexcept override { places_.Give(); }
  void DestroyState() noexcept override {
    if (constructed_) {
      constructed_ = false;
      actor().~A();
    }
  }

  alignas(A) unsigned char storage_[sizeof(A)];
  bool constructed_ = false;
  [[no_unique_address]] MailboxPlaces<MailboxCapacityOf<A>()> places_;
};

}  // namespace troupe::internal

#endif  // TROUPE_ACTORS_ACTOR_BOX_H_
