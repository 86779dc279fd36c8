// Wake-up latency of a parked system: how long from a send on a thread
// outside the system until the receiving actor runs, when every worker had
// parked. Prints p50, p99 and max over many samples.
//
//   ./tools/bazel run -c opt //bench:wakeup_latency

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "actors/actor.h"
#include "actors/actor_system.h"

ABSL_FLAG(int, samples, 2000, "wake-ups to measure");
ABSL_FLAG(absl::Duration, idle, absl::Milliseconds(2), "idle time before each send, so the workers park");
ABSL_FLAG(int, workers, 2, "worker threads");

namespace {

struct Stamp {
  int64_t sent_ns;
};

struct Receiver : troupe::Actor<Receiver> {
  // The reply is the latency: now minus the sender's timestamp.
  int64_t On(const Stamp& s) { return absl::GetCurrentTimeNanos() - s.sent_ns; }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int samples = absl::GetFlag(FLAGS_samples);
  troupe::ActorSystem sys({.workers = absl::GetFlag(FLAGS_workers)});
  troupe::Ref<Receiver> r = sys.Spawn<Receiver>();
  std::vector<int64_t> latencies;
  latencies.reserve(samples);
  for (int i = 0; i < samples; ++i) {
    absl::SleepFor(absl::GetFlag(FLAGS_idle));  // let every worker park
    absl::StatusOr<int64_t> ns = r.Ask(Stamp{absl::GetCurrentTimeNanos()}).Wait(absl::Seconds(10));
    if (!ns.ok()) {
      std::fprintf(stderr, "ask failed: %s\n", ns.status().ToString().c_str());
      return 1;
    }
    latencies.push_back(*ns);
  }
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) { return latencies[static_cast<size_t>(q * (latencies.size() - 1))] / 1e3; };
  std::printf("wake-up latency of a parked system (%d samples, %d workers): p50 %.1f us, p99 %.1f us, max %.1f us\n",
              samples, absl::GetFlag(FLAGS_workers), at(0.5), at(0.99), latencies.back() / 1e3);
  return 0;
}
