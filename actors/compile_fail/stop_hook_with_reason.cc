// Must compile: the control case for stop_hook_without_reason.cc, the same
// actor with the hook troupe calls.
#include "absl/status/status.h"
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};

struct Saver : troupe::Actor<Saver> {
  int On(const Known&) { return 1; }
  void OnStop(const absl::Status&) {}
};

void Start(troupe::ActorSystem& sys) { sys.Spawn<Saver>(); }
