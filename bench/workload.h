// The benchmark suite's workloads: the same program logic written for troupe
// and for CAF 0.17, measured in the same run.
//
// Each workload function runs once, at the sizes given, checks its own
// result (returning an error if it is wrong — a wrong answer never becomes a
// figure), and returns its measurements. The suite (bench/suite.cc) runs
// every (workload, system) pair in a fresh child process, so threads, heap
// and resident memory of one never leak into another's figures.

#ifndef TROUPE_BENCH_WORKLOAD_H_
#define TROUPE_BENCH_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace troupe::bench {

struct Measurement {
  std::string metric;  // "time", "throughput", "p50", "bytes_per_actor", ...
  double value;
  std::string unit;  // "s", "msg/s", "us", "B", "%"
  // Whether a larger value is better (throughput) or a smaller one (time).
  bool higher_is_better;
};

// Workload sizes; the defaults keep the whole suite well under two minutes
// on 2 cores. Every field has a --flag in the suite.
struct Sizes {
  int workers = 0;  // scheduler threads for both systems; 0: hardware threads

  int64_t skynet_leaves = 1000000;  // a power of 10

  int64_t pingpong_round_trips = 1000000;  // one pair
  int pingpong_pairs = 100;                // many pairs at once
  int64_t pingpong_pairs_round_trips = 20000;  // per pair

  int fanin_senders = 20;
  int64_t fanin_messages = 500000;  // per sender

  int forkjoin_actors = 60;
  int64_t forkjoin_messages = 10000;  // per actor
  int64_t forkjoin_creation_actors = 40000;

  int threadring_actors = 100;
  int64_t threadring_hops = 1000000;

  int chameneos_creatures = 100;
  int64_t chameneos_meetings = 200000;

  int big_actors = 120;
  int64_t big_pings = 20000;  // per actor

  int64_t spawn_idle_actors = 1000000;

  int ask_latency_samples = 20000;

  double idle_seconds = 2.0;

  int64_t restart_failures = 100000;     // one child, one failure and restart each
  int64_t link_fanout_actors = 100000;   // linked to the one that fails

  int64_t remote_rtt_samples = 20000;         // after kRemoteRttWarmup (remote.h)
  int64_t remote_oneway_messages = 1000000;

  int64_t entity_rtt_samples = 5000;          // asks of each kind; keys activated
  int64_t entity_handoff_entities = 100000;   // active when a member joins

  // The cost curves of --scale (docs/benchmarks.md, "Cost curves"); each
  // point of a curve is one child run at one of these values.
  int oneway_peers = 1;                     // remote-oneway-peers: sender processes
  int64_t oneway_peer_messages = 250000;    // remote-oneway-peers: messages per sender
  int ask_load_percent = 0;                 // ask-under-load: background load, % of saturated
  // skynet-peak: also the largest number of actors alive at once, polled
  // (PeakSampler) every 0.5 ms.
  bool skynet_sample_live = false;
};

using WorkloadFn = absl::StatusOr<std::vector<Measurement>> (*)(const Sizes&);

struct Workload {
  const char* name;
  const char* description;
  WorkloadFn troupe;  // nullptr: not written yet; the suite prints n/a
  WorkloadFn caf;
  // A third system, for the remote workloads: the raw TCP floor (remote.h).
  WorkloadFn floor = nullptr;
  // And a fourth: troupe with its links on TLS ("troupe-tls", remote.h).
  WorkloadFn troupe_tls = nullptr;
};

// Every workload, in the order the suite runs them.
const std::vector<Workload>& AllWorkloads();

// The workloads behind the cost curves of --scale (bench/workloads.cc), run
// only there, each at several sizes.
const std::vector<Workload>& ScaleWorkloads();

// Implemented in troupe_workloads.cc and caf_workloads.cc.
absl::StatusOr<std::vector<Measurement>> TroupeSkynet(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupePingPong(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupePingPongPairs(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeFanIn(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeForkJoinThroughput(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeForkJoinCreation(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeThreadRing(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeChameneos(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeBig(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeSpawnIdle(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeRestart(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeLinkFanout(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeAskLatency(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeIdleCpu(const Sizes&);
// ask-latency's round trip while other actors keep the workers
// Sizes::ask_load_percent busy.
absl::StatusOr<std::vector<Measurement>> TroupeAskUnderLoad(const Sizes&);
// Implemented in troupe_cluster.cc.
absl::StatusOr<std::vector<Measurement>> TroupeEntityRtt(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeEntityHandoff(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeEntityFailover(const Sizes&);
absl::StatusOr<std::vector<Measurement>> TroupeEntityFailoverKill(const Sizes&);

absl::StatusOr<std::vector<Measurement>> CafSkynet(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafPingPong(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafPingPongPairs(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafFanIn(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafForkJoinThroughput(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafForkJoinCreation(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafThreadRing(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafChameneos(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafBig(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafSpawnIdle(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafAskLatency(const Sizes&);
absl::StatusOr<std::vector<Measurement>> CafIdleCpu(const Sizes&);

// Shared helpers for both sides (bench/measure.cc).
double CpuSeconds();       // user + system CPU of this process so far
size_t ResidentBytes();    // resident set size now
size_t PeakResidentBytes();  // the largest resident set size so far
double Percentile(std::vector<double>& samples, double q);  // sorts samples
std::string SelfExecutable();  // this program's path (/proc/self/exe); empty if unknown
// Polls `read` every `period` on a thread of its own until Stop, which
// returns the largest value seen: the peak of a statistic that keeps none.
// A peak shorter than the period can be missed.
class PeakSampler {
 public:
  PeakSampler(std::function<uint64_t()> read, absl::Duration period);
  ~PeakSampler();
  PeakSampler(const PeakSampler&) = delete;
  PeakSampler& operator=(const PeakSampler&) = delete;
  uint64_t Stop();

 private:
  std::function<uint64_t()> read_;
  std::atomic<bool> stop_{false};
  uint64_t peak_ = 0;  // the thread's until it is joined
  std::thread thread_;
};
// p50 and p99 (us) of `micros`, which must hold `samples` round trips.
absl::StatusOr<std::vector<Measurement>> LatencyFigures(const char* workload, std::vector<double>& micros,
                                                        int64_t samples);

}  // namespace troupe::bench

#endif  // TROUPE_BENCH_WORKLOAD_H_
