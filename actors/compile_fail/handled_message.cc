// Must compile: the control case for unhandled_message.cc, so the test
// proves the error comes from the missing handler and not from the setup.
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};

struct Counter : troupe::Actor<Counter> {
  void On(const Known&) {}
};

void Send(troupe::Ref<Counter> c) { c.Tell(Known{}); }
