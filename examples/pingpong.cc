// pingpong: two actors pass a ball back and forth; prints round trips/s.
//
//   ./tools/bazel run -c opt //examples:pingpong -- --round_trips=1000000

#include <cstdint>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "actors/actor.h"
#include "actors/actor_system.h"

ABSL_FLAG(int64_t, round_trips, 1000000, "round trips between the two actors");
ABSL_FLAG(int, workers, 0, "worker threads (0: one per hardware thread)");

namespace {

struct Ball {
  int64_t left;
};

struct Pong : troupe::Actor<Pong> {
  troupe::Ref<struct Ping> ping;
  void On(const troupe::Ref<struct Ping>& p) { ping = p; }
  void On(const Ball& b);
};

struct Start {
  troupe::Ref<Pong> pong;
  int64_t round_trips;
};

struct Ping : troupe::Actor<Ping> {
  troupe::Ref<Pong> pong;
  std::unique_ptr<troupe::Reply<int64_t>> done;
  int64_t returned = 0;
  void On(const Start& s, troupe::Reply<int64_t> reply) {
    pong = s.pong;
    done = std::make_unique<troupe::Reply<int64_t>>(std::move(reply));
    pong.Tell(Ball{s.round_trips - 1});
  }
  void On(const Ball& b) {
    ++returned;
    if (b.left == 0) {
      done->Send(returned);
      return;
    }
    pong.Tell(Ball{b.left - 1});
  }
};

void Pong::On(const Ball& b) { ping.Tell(b); }

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t round_trips = absl::GetFlag(FLAGS_round_trips);
  if (round_trips <= 0) {
    std::fprintf(stderr, "--round_trips must be positive\n");
    return 2;
  }
  troupe::ActorSystem sys({.workers = absl::GetFlag(FLAGS_workers)});
  troupe::Ref<Ping> ping = sys.Spawn<Ping>();
  troupe::Ref<Pong> pong = sys.Spawn<Pong>();
  pong.Tell(ping);
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> done = ping.Ask(Start{pong, round_trips}).Wait(absl::Minutes(10));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!done.ok() || *done != round_trips) {
    std::fprintf(stderr, "pingpong failed: %s\n", done.ok() ? "wrong count" : done.status().ToString().c_str());
    return 1;
  }
  std::printf("pingpong: %lld round trips in %.3f s: %.2f M round trips/s (%.2f M messages/s)\n",
              static_cast<long long>(round_trips), seconds, round_trips / seconds / 1e6,
              2 * round_trips / seconds / 1e6);
  return 0;
}
