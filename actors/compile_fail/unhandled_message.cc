// Must NOT compile: Counter has no handler for Unknown. The test checks that
// the compiler says so in words (see unhandled_message_test.sh).
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};
struct Unknown {};

struct Counter : troupe::Actor<Counter> {
  void On(const Known&) {}
};

void Send(troupe::Ref<Counter> c) { c.Tell(Unknown{}); }
