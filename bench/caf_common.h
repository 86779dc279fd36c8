// What the CAF side of the benchmark suite shares (caf_workloads.cc,
// caf_savina.cc): the actor system configuration, the atoms the workloads
// talk in, and the shapes of their measurements.
//
// Every CAF workload builds its own `caf::actor_system` from a `CafConfig`,
// drives it from a `caf::scoped_actor` on the calling thread, and stops every
// actor it spawned before returning: the system's destructor waits for all
// actors, so an actor left running would hang the workload.
//
// Internal to //bench:caf_workloads.

#ifndef TROUPE_BENCH_CAF_COMMON_H_
#define TROUPE_BENCH_CAF_COMMON_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "bench/workload.h"
#include "caf/all.hpp"

namespace troupe::bench::caf_side {

// CAF with `Sizes::workers` scheduler threads (hardware threads when 0) and
// every other setting at CAF's default.
class CafConfig : public caf::actor_system_config {
 public:
  explicit CafConfig(const Sizes& sizes) {
    const unsigned workers =
        sizes.workers > 0 ? static_cast<unsigned>(sizes.workers) : std::thread::hardware_concurrency();
    set("scheduler.max-threads", static_cast<size_t>(workers == 0 ? 1 : workers));
  }
};

// The atoms of the workloads' messages (at most 10 characters each).
using BallAtom = caf::atom_constant<caf::atom("ball")>;
using ChangeAtom = caf::atom_constant<caf::atom("change")>;
using DoneAtom = caf::atom_constant<caf::atom("done")>;
using FadedAtom = caf::atom_constant<caf::atom("faded")>;
using GoAtom = caf::atom_constant<caf::atom("go")>;
using MeetAtom = caf::atom_constant<caf::atom("meet")>;
using MeetMeAtom = caf::atom_constant<caf::atom("meetme")>;
using NextAtom = caf::atom_constant<caf::atom("next")>;
using PingAtom = caf::atom_constant<caf::atom("ping")>;
using PongAtom = caf::atom_constant<caf::atom("pong")>;
using TokenAtom = caf::atom_constant<caf::atom("token")>;
using WaitAtom = caf::atom_constant<caf::atom("wait")>;
using WakeAtom = caf::atom_constant<caf::atom("wake")>;
using WorkAtom = caf::atom_constant<caf::atom("work")>;

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline Measurement TimeMetric(double seconds) { return {"time", seconds, "s", false}; }

inline Measurement ThroughputMetric(double messages, double seconds) {
  return {"throughput", messages / seconds, "msg/s", true};
}

}  // namespace troupe::bench::caf_side

#endif  // TROUPE_BENCH_CAF_COMMON_H_
