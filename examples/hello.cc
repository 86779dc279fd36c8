// hello: the smallest troupe program — an actor, a tell, an ask.
//
//   ./tools/bazel run //examples:hello

#include <cstdio>
#include <string>

#include "actors/actor.h"
#include "actors/actor_system.h"

namespace {

struct Greet {
  std::string name;
};
struct CountGreetings {};

struct Greeter : troupe::Actor<Greeter> {
  int greeted = 0;
  // A tell: no reply.
  void On(const Greet& g) {
    ++greeted;
    std::printf("hello, %s\n", g.name.c_str());
  }
  // An ask: the return value is the reply.
  int On(const CountGreetings&) { return greeted; }
};

}  // namespace

int main() {
  troupe::ActorSystem sys;
  troupe::Ref<Greeter> greeter = sys.Spawn<Greeter>();
  greeter.Tell(Greet{"world"});
  greeter.Tell(Greet{"troupe"});
  absl::StatusOr<int> n = greeter.Ask(CountGreetings{}).Wait(absl::Seconds(5));
  if (!n.ok()) {
    std::fprintf(stderr, "ask failed: %s\n", n.status().ToString().c_str());
    return 1;
  }
  std::printf("greeted %d times\n", *n);
  return 0;
}
