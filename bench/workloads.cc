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

}  // namespace troupe::bench
