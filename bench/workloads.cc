#include "bench/remote.h"
#include "bench/workload.h"

namespace troupe::bench {

const std::vector<Workload>& AllWorkloads() {
  static const std::vector<Workload>* const kAll = new std::vector<Workload>{
      {"skynet", "1,000,000 leaf actors in a tree of fan-out 10; the sum flows up", TroupeSkynet, CafSkynet},
      {"pingpong", "one pair, round trips", TroupePingPong, CafPingPong},
      {"pingpong-pairs", "many pairs at once, aggregate messages/s", TroupePingPongPairs, CafPingPongPairs},
      {"fan-in", "many threads send to one actor", TroupeFanIn, CafFanIn},
      {"forkjoin-throughput", "Savina fork-join throughput", TroupeForkJoinThroughput, CafForkJoinThroughput},
      {"forkjoin-creation", "Savina fork-join creation", TroupeForkJoinCreation, CafForkJoinCreation},
      {"threadring", "Savina thread ring", TroupeThreadRing, CafThreadRing},
      {"chameneos", "Savina chameneos", TroupeChameneos, CafChameneos},
      {"big", "Savina big", TroupeBig, CafBig},
      {"spawn-idle", "spawn actors that wait; time and resident bytes per actor", TroupeSpawnIdle, CafSpawnIdle},
      {"ask-latency", "request/reply round trip between two actors, p50 and p99", TroupeAskLatency, CafAskLatency},
      {"idle-cpu", "CPU of an idle system", TroupeIdleCpu, CafIdleCpu},
      {"restart", "a one-for-one child that fails on every message: restarts per second (troupe only)",
       TroupeRestart, nullptr},
      {"link-fanout", "one actor linked to many fails: time until all have stopped (troupe only)",
       TroupeLinkFanout, nullptr},
      // The remote workloads (bench/remote.h).
      {"remote-rtt", "request/reply round trip over loopback TCP, p50 and p99; troupe also over TLS",
       TroupeRemoteRtt, CafRemoteRtt, FloorRemoteRtt, TroupeRemoteRttTls},
      {"remote-oneway", "one-way messages over loopback TCP until the receiver has all; troupe also over TLS",
       TroupeRemoteOneway, CafRemoteOneway, FloorRemoteOneway, TroupeRemoteOnewayTls},
      // The cluster workloads (bench/troupe_cluster.cc).
      {"entity-rtt", "ask of a sharded entity on another member, first and later, against a plain remote ask "
                     "(troupe only)",
       TroupeEntityRtt, nullptr},
      {"entity-handoff", "a member joins three that host 100,000 entities: time until its shards are handed over "
                         "(troupe only)",
       TroupeEntityHandoff, nullptr},
      {"entity-failover", "a member on etcd (TTL 2 s) is cut off from it: time until its entity answers from a "
                          "survivor (troupe only)",
       TroupeEntityFailover, nullptr},
      {"entity-failover-kill", "a counter_service node process on etcd (TTL 2 s) is killed (SIGKILL): time until a "
                               "survivor has it removed and serves its key (troupe only)",
       TroupeEntityFailoverKill, nullptr},
  };
  return *kAll;
}

namespace {

// A skynet workload's figures plus how much the resident set grew at its
// peak, in all and per actor of the tree (leaves and inner nodes:
// (10 * leaves - 1) / 9). Not every actor of the tree is alive at the peak:
// how many are depends on the order the system runs them in, so the figure
// says how much memory a tree of that size takes, not what one idle actor
// costs (spawn-idle measures that); peak_live_actors, polled while the tree
// runs, says how many were alive at once.
template <WorkloadFn kSkynet>
absl::StatusOr<std::vector<Measurement>> SkynetWithPeak(const Sizes& sizes) {
  const size_t before = ResidentBytes();
  Sizes sampled = sizes;
  sampled.skynet_sample_live = true;
  absl::StatusOr<std::vector<Measurement>> result = kSkynet(sampled);
  if (!result.ok()) return result;
  const size_t peak = PeakResidentBytes();
  const double actors = static_cast<double>(10 * sizes.skynet_leaves - 1) / 9;
  const double growth = static_cast<double>(peak > before ? peak - before : 0);
  result->push_back({"peak_growth", growth, "B", false});
  result->push_back({"peak_bytes_per_actor", growth / actors, "B", false});
  return result;
}

}  // namespace

const std::vector<Workload>& ScaleWorkloads() {
  static const std::vector<Workload>* const kAll = new std::vector<Workload>{
      {"skynet-peak", "skynet, with the peak resident bytes per actor", SkynetWithPeak<TroupeSkynet>,
       SkynetWithPeak<CafSkynet>},
      {"remote-oneway-peers", "one-way messages from several sender processes to one node (troupe only)",
       TroupeRemoteOnewayPeers, nullptr},
      {"ask-under-load", "ask-latency while spinners keep the workers busy (troupe only)", TroupeAskUnderLoad,
       nullptr},
  };
  return *kAll;
}

}  // namespace troupe::bench
