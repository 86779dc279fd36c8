// skynet: an actor spawns 10 children, each spawns 10, down to 1,000,000
// leaf actors; each leaf reports its number and the sums flow back up.
// The answer for 1,000,000 leaves is 499999500000.
//
//   ./tools/bazel run -c opt //examples:skynet

#include <cstdint>
#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "actors/actor.h"
#include "actors/actor_system.h"

ABSL_FLAG(int64_t, leaves, 1000000, "leaf actors: a power of 10");
ABSL_FLAG(int, workers, 0, "worker threads (0: one per hardware thread)");

namespace {

struct Skynet;

struct Compute {
  int64_t num;   // the first leaf number under this actor
  int64_t size;  // leaves under this actor
  troupe::Ref<Skynet> parent;
};
struct Partial {
  int64_t sum;
};
struct Run {
  int64_t leaves;
};

struct Skynet : troupe::Actor<Skynet> {
  troupe::Ref<Skynet> parent;
  std::unique_ptr<troupe::Reply<int64_t>> answer;  // the root's asker
  int64_t sum = 0;
  int pending = 0;

  void On(const Run& r, troupe::Reply<int64_t> reply) {
    answer = std::make_unique<troupe::Reply<int64_t>>(std::move(reply));
    Split(0, r.leaves);
  }
  void On(const Compute& c) {
    parent = c.parent;
    if (c.size == 1) {
      Report(c.num);
      return;
    }
    Split(c.num, c.size);
  }
  void On(const Partial& p) {
    sum += p.sum;
    if (--pending == 0) Report(sum);
  }

 private:
  void Split(int64_t num, int64_t size) {
    const int64_t child = size / 10;
    pending = 10;
    for (int i = 0; i < 10; ++i) Spawn<Skynet>().Tell(Compute{num + i * child, child, Self()});
  }
  void Report(int64_t value) {
    if (answer) {
      answer->Send(value);
    } else {
      parent.Tell(Partial{value});
    }
    Stop();
  }
};

bool IsPowerOfTen(int64_t n) {
  while (n > 1 && n % 10 == 0) n /= 10;
  return n == 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t leaves = absl::GetFlag(FLAGS_leaves);
  if (leaves < 10 || !IsPowerOfTen(leaves)) {
    std::fprintf(stderr, "--leaves must be a power of 10, at least 10; got %lld\n", static_cast<long long>(leaves));
    return 2;
  }
  troupe::ActorSystem sys({.workers = absl::GetFlag(FLAGS_workers)});
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> sum = sys.Spawn<Skynet>().Ask(Run{leaves}).Wait(absl::Minutes(10));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const int64_t expected = leaves * (leaves - 1) / 2;
  if (!sum.ok() || *sum != expected) {
    std::fprintf(stderr, "skynet failed: %s (expected %lld)\n",
                 sum.ok() ? std::to_string(*sum).c_str() : sum.status().ToString().c_str(),
                 static_cast<long long>(expected));
    return 1;
  }
  // Every leaf and every inner node is an actor.
  const int64_t actors = (leaves * 10 - 1) / 9;
  std::printf("skynet: sum %lld over %lld actors in %.3f s: %.2f M actors/s\n", static_cast<long long>(*sum),
              static_cast<long long>(actors), seconds, actors / seconds / 1e6);
  return 0;
}
