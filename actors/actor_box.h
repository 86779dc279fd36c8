// ActorBox<A>: the allocation an actor of type A lives in — the runtime's
// ActorCell followed by the user's A, constructed in place. The A is
// destroyed when the actor stops; the box is freed when the last Ref goes.
//
// Who may call what: the runtime only (spawn, message delivery, lifecycle),
// always in the actor's context except for construction.

#ifndef TROUPE_ACTORS_ACTOR_BOX_H_
#define TROUPE_ACTORS_ACTOR_BOX_H_

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

  std::string_view type_name() const noexcept override { return TypeName<A>(); }

 private:
  ~ActorBox() override { DestroyState(); }

  void HandleStart() override {
    if constexpr (requires(A& a) { a.OnStart(); }) actor().OnStart();
  }
  void HandleStop(const absl::Status& reason) override {
    if constexpr (requires(A& a) { a.OnStop(reason); }) actor().OnStop(reason);
  }
  void DestroyState() noexcept override {
    if (constructed_) {
      constructed_ = false;
      actor().~A();
    }
  }

  alignas(A) unsigned char storage_[sizeof(A)];
  bool constructed_ = false;
};

}  // namespace troupe::internal

#endif  // TROUPE_ACTORS_ACTOR_BOX_H_
