// The suite's supervision workloads, troupe only (no peer in the suite has
// supervisors): restart cost and link fan-out (docs/benchmarks.md).
//
// Both run with the system's logger silenced: every failure would
// otherwise log a line (the actor's failure and the supervisor's restart),
// and writing 200,000 lines to a terminal is what would be measured.

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/supervisor.h"
#include "bench/workload.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"

namespace troupe::bench {
namespace {

constexpr absl::Duration kTimeout = absl::Minutes(2);

ActorSystemOptions Quiet(const Sizes& sizes) {
  ActorSystemOptions o;
  o.workers = sizes.workers;
  o.logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  return o;
}

// Polls `done` until it holds or kTimeout passes (the measuring thread is
// outside the system, and the end of these workloads is a count, not a
// reply).
template <class Done>
bool WaitFor(Done done) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// ---------------------------------------------------------------------------
// restart: a one-for-one child that fails on every message it gets. Each
// message is one failure and one restart in place; the figure is restarts
// per second until the child has failed on all of them.

struct Fail {};
struct AlwaysFails : Actor<AlwaysFails> {
  explicit AlwaysFails(std::shared_ptr<std::atomic<int64_t>> failed) : failed(std::move(failed)) {}
  void On(const Fail&) {
    failed->fetch_add(1, std::memory_order_relaxed);
    throw std::runtime_error("failing on purpose");
  }
  std::shared_ptr<std::atomic<int64_t>> failed;
};

// ---------------------------------------------------------------------------
// link-fanout: one actor linked to N others, none of which traps exits; it
// fails, and the figure is the time until all N have stopped.

struct Hello {};
struct LinkTo {
  Ref<struct Hub> hub;
};
struct Crash {};

struct Hub : Actor<Hub> {
  void On(const Hello&) {}
  void On(const Crash&) { throw std::runtime_error("the hub fails"); }
};

struct Spoke : Actor<Spoke> {
  explicit Spoke(std::shared_ptr<std::atomic<int64_t>> linked) : linked(std::move(linked)) {}
  void On(const LinkTo& m) {
    Link(m.hub);
    // An ask after the link, from this actor: the hub handles it after the
    // link, so its reply means the link is in place on both ends.
    std::move(m.hub.Ask(Hello{})).Then([linked = linked](Result<void>) {
      linked->fetch_add(1, std::memory_order_relaxed);
    });
  }
  std::shared_ptr<std::atomic<int64_t>> linked;
};

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeRestart(const Sizes& sizes) {
  const int64_t n = sizes.restart_failures;
  if (n <= 0) return absl::InvalidArgumentError("--restart_failures must be positive");
  ActorSystem sys(Quiet(sizes));
  auto failed = std::make_shared<std::atomic<int64_t>>(0);
  SupervisorOptions o;
  o.max_restarts = INT_MAX;
  o.within = absl::Seconds(1);
  o.children.push_back(ChildSpec::Of<AlwaysFails>("child", failed));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  absl::StatusOr<Ref<AlwaysFails>> child = ChildOf<AlwaysFails>(sup, "child").Wait(kTimeout);
  if (!child.ok()) return absl::InternalError(absl::StrCat("restart: no child: ", child.status().ToString()));
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < n; ++i) child->Tell(Fail{});
  // The system counts a failure just after the handler threw.
  if (!WaitFor([&] { return sys.stats().failures == static_cast<uint64_t>(n); })) {
    return absl::InternalError(absl::StrCat("restart: the child failed ", sys.stats().failures, " times of ", n));
  }
  const absl::Duration elapsed = absl::Now() - start;
  if (failed->load() != n || sys.stats().dead_letters != 0) {
    return absl::InternalError(absl::StrCat("restart: ", sys.stats().failures, " failures and ",
                                            sys.stats().dead_letters, " dead letters for ", n, " messages"));
  }
  return std::vector<Measurement>{
      {"restarts", static_cast<double>(n) / absl::ToDoubleSeconds(elapsed), "/s", true},
      {"per restart", absl::ToDoubleMicroseconds(elapsed) / static_cast<double>(n), "us", false},
  };
}

absl::StatusOr<std::vector<Measurement>> TroupeLinkFanout(const Sizes& sizes) {
  const int64_t n = sizes.link_fanout_actors;
  if (n <= 0) return absl::InvalidArgumentError("--link_fanout_actors must be positive");
  ActorSystem sys(Quiet(sizes));
  auto linked = std::make_shared<std::atomic<int64_t>>(0);
  Ref<Hub> hub = sys.Spawn<Hub>();
  for (int64_t i = 0; i < n; ++i) sys.Spawn<Spoke>(linked).Tell(LinkTo{hub});
  if (!WaitFor([&] { return linked->load(std::memory_order_relaxed) == n; })) {
    return absl::InternalError(absl::StrCat("link-fanout: ", linked->load(), " of ", n, " links made"));
  }
  const absl::Time start = absl::Now();
  hub.Tell(Crash{});
  if (!WaitFor([&] { return sys.stats().live == 0; })) {
    return absl::InternalError(absl::StrCat("link-fanout: ", sys.stats().live, " actors still running"));
  }
  const absl::Duration elapsed = absl::Now() - start;
  return std::vector<Measurement>{
      {"time", absl::ToDoubleSeconds(elapsed), "s", false},
      {"per linked actor", absl::ToDoubleNanoseconds(elapsed) / static_cast<double>(n), "ns", false},
  };
}

}  // namespace troupe::bench
