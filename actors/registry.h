// Registry: names for local actors, one table per ActorSystem.
//
//   sys.registry().Register("billing", billing_ref);
//   absl::StatusOr<Ref<Billing>> b = sys.registry().Lookup<Billing>("billing");
//
// A name belongs to one actor at a time. It is released when that actor
// stops for good; a supervised child keeps its names across restarts (its
// Ref does not change). Node::PublishRegistered makes a registered name
// reachable from other nodes.
//
// Who may call what: every method from any thread, inside or outside
// actors; nothing blocks for longer than the table's lock.
//
// Memory ordering: the table is guarded by a mutex. An actor carries a bit
// (ActorCell::MarkRegistered) saying it has names, so that an actor without
// any pays nothing as it stops. Register sets the bit (a seq_cst RMW) and
// then checks that the actor has not closed its mailbox (a seq_cst load);
// a stopping actor closes its mailbox (a seq_cst exchange) and then reads
// the bit (a seq_cst load). In the single total order of the four, one of
// the two reads sees the other side's write, so the name is always
// released: by the actor, or by Register undoing itself.

#ifndef TROUPE_ACTORS_REGISTRY_H_
#define TROUPE_ACTORS_REGISTRY_H_

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/actor_cell.h"
#include "actors/ref.h"

namespace troupe {

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names `ref` (a local actor). Registering the same actor under the same
  // name again is OK. AlreadyExists if another actor has the name;
  // InvalidArgument for an empty, remote or foreign Ref or an empty name;
  // Unavailable if the actor has stopped.
  absl::Status Register(std::string_view name, const ActorRef& ref);
  // Releases `name`; false if it was not registered.
  bool Unregister(std::string_view name);

  // The actor registered as `name`: NotFound if none, FailedPrecondition
  // if it is not an A.
  template <class A>
  absl::StatusOr<Ref<A>> Lookup(std::string_view name) const {
    absl::StatusOr<ActorRef> ref = LookupRef(name);
    if (!ref.ok()) return ref.status();
    if (ref->cell()->type_name() != internal::TypeName<A>()) {
      return absl::FailedPreconditionError(absl::StrCat("the actor registered as '", std::string(name), "' is a ",
                                                        std::string(ref->cell()->type_name()), ", not a ",
                                                        std::string(internal::TypeName<A>())));
    }
    return Ref<A>::UncheckedCast(*std::move(ref));
  }
  absl::StatusOr<ActorRef> LookupRef(std::string_view name) const;

  // Names registered now.
  std::vector<std::string> Names() const;

  // Runtime use: `cell` stopped for good; its names go.
  void Forget(internal::ActorCell* cell);

 private:
  friend class internal::SystemCore;
  void set_core(internal::SystemCore* core) { core_ = core; }

  internal::SystemCore* core_ = nullptr;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, ActorRef> names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<internal::ActorCell*, std::vector<std::string>> by_actor_ ABSL_GUARDED_BY(mu_);
};

}  // namespace troupe

#endif  // TROUPE_ACTORS_REGISTRY_H_
