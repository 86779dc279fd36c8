// Must compile: the control case for unhandled_message.cc and
// unhandled_ask.cc, so their tests prove the error comes from the missing
// handler and not from the setup. Also the snippet of cxx17_test, which
// compiles it as C++17.
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};

struct Counter : troupe::Actor<Counter> {
  int On(const Known&) { return 1; }
};

void Send(troupe::Ref<Counter> c) {
  c.Tell(Known{});
  troupe::Future<int> reply = c.Ask(Known{});
}
