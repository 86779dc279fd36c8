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
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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

// A CAF error as a status, with what failed.
inline absl::Status CafError(const caf::actor_system& sys, const std::string& what, const caf::error& err) {
  return absl::InternalError(absl::StrCat(what, ": ", sys.render(err)));
}

// Runs a round-trip client: an actor that, asked GoAtom, measures its round
// trips and answers (mismatched replies, microseconds per sample). Stops the
// client afterwards. An error unless every reply matched its request and
// `samples` were taken; `workload` names the workload in errors.
inline absl::StatusOr<std::vector<double>> RunRttClient(caf::actor_system& sys, caf::scoped_actor& self,
                                                        const caf::actor& client, int64_t samples,
                                                        const std::string& workload) {
  absl::Status status;
  int64_t mismatches = -1;
  std::vector<double> micros;
  // The client bounds each of its own requests, so its answer comes.
  self->request(client, caf::infinite, GoAtom::value)
      .receive(
          [&](int64_t m, std::vector<double>& us) {
            mismatches = m;
            micros = std::move(us);
          },
          [&](caf::error& err) { status = CafError(sys, workload + ": the client failed", err); });
  self->send_exit(client, caf::exit_reason::user_shutdown);
  if (!status.ok()) return status;
  if (mismatches != 0 || static_cast<int64_t>(micros.size()) != samples) {
    return absl::InternalError(absl::StrCat(workload, ": ", mismatches, " replies did not match their request; ",
                                            micros.size(), " samples, expected ", samples));
  }
  return micros;
}

}  // namespace troupe::bench::caf_side

#endif  // TROUPE_BENCH_CAF_COMMON_H_
