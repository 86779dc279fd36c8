// Cluster membership: the members a node knows, their states, and the
// changes it reports (cluster/cluster.h is the public face).
//
// A member is one incarnation of one node: a node restarted is a new
// member (a new incarnation) and the old one is removed. States:
//
//   joining  -> up        its membership actor answered this node's Hello
//   up       -> down      its link was lost (a crash, a hang past the
//                         heartbeat timeout, a partition)
//   down     -> up        the same incarnation reached again (healed)
//   up/down  -> leaving   it announced a graceful leave (Cluster::Leave)
//   any      -> removed   it shut down (NodeLeft), or a new incarnation of
//                         its node came up
//
// This node is a member too: up from the start (leaving after Leave).

#ifndef TROUPE_CLUSTER_MEMBERSHIP_H_
#define TROUPE_CLUSTER_MEMBERSHIP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::cluster {

enum class MemberState { kJoining, kUp, kLeaving, kDown, kRemoved };

std::string_view MemberStateName(MemberState state);

struct Member {
  std::string name;     // the node's name
  std::string address;  // where it listens ("host:port")
  uint64_t incarnation = 0;
  MemberState state = MemberState::kJoining;
};

// Told to subscribers, one change at a time, in the order this node saw
// them; `sequence` counts this node's changes from 1.
struct MemberChanged {
  Member member;
  MemberState previous = MemberState::kJoining;
  uint64_t sequence = 0;
};

// Told to subscribers when this node starts or stops hosting entities
// (keep-majority; see ClusterOptions).
struct HostingChanged {
  bool hosting = false;
  std::string reason;
};

// A snapshot of what one node knows.
struct MembershipView {
  std::vector<Member> members;  // sorted by address; removed ones left out
  bool hosting = false;
  uint64_t sequence = 0;  // the last change included
};

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_MEMBERSHIP_H_
