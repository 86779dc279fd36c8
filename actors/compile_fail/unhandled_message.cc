// Must NOT compile: Counter has no handler for Unknown. The test checks that
// the first error is troupe's, naming both types (see compile_error_test.sh).
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};
struct Unknown {};

struct Counter : troupe::Actor<Counter> {
  int On(const Known&) { return 1; }
};

void Send(troupe::Ref<Counter> c) { c.Tell(Unknown{}); }
