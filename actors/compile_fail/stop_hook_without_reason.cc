// Must NOT compile: Saver's stop hook takes no reason, so troupe would never
// call it. The test checks that the first error is troupe's, naming the
// actor type (see compile_error_test.sh).
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};

struct Saver : troupe::Actor<Saver> {
  int On(const Known&) { return 1; }
  void OnStop() {}
};

void Start(troupe::ActorSystem& sys) { sys.Spawn<Saver>(); }
