// Finding the nodes of a counter cluster from seed addresses, and the
// workload that exercises and checks it (examples/counter_service.cc). Both
// run on a thread outside actors (they wait on futures); every wait has a
// deadline.
//
// The workload, in order:
//   1. for every key, an Await ask (through a node's Service, which asks
//      the key's entity) for the count the workload will bring it to (keys
//      are new: a prefix unique to the run), so the runner learns when
//      every increment has landed without polling;
//   2. clients on every node (RunClient asks to each Service), which send
//      their increments to the keys' entities, wherever the cluster placed
//      them, and report to a Reporter here, which also monitors them;
//   3. the reports, then the Awaits; then every key is read back (ReadKey
//      asks) and compared with its expected count, and the sum with the
//      increments sent.
// A node lost on the way makes the workload report what it could not
// verify instead of hanging.
//
// A tell-only workload skips the Awaits and the read-back: it checks only
// that every node's region delivered every tell (none dropped) and that no
// client was lost. A check_acked workload (WorkloadOptions) checks that
// every acknowledged increment is counted, once.

#ifndef TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_
#define TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "examples/counter_actors.h"
#include "net/node.h"

namespace counter {

struct KnownMember {
  troupe::Ref<Service> service;
  NodeInfo info;  // as it described itself
};

struct Discovery {
  std::vector<KnownMember> members;  // sorted by node name
  std::vector<std::string> errors;   // seeds or members that did not answer
};

// The Services at `seeds` (and `self`, if this process is a node: pass an
// empty Ref otherwise), then those of every member up in their views, up
// to 256 nodes.
Discovery Discover(troupe::Node& node, const std::vector<std::string>& seeds, const troupe::Ref<Service>& self,
                   absl::Duration timeout);

// Calls `done` every `interval` until it returns true (true) or `timeout`
// has passed (false). For waits on a remote state that sends no event.
bool PollUntil(absl::FunctionRef<bool()> done, absl::Duration timeout, absl::Duration interval);

// Describes `cluster` again (at most every 50 ms) until every node hosts
// and sees every other one of them up, or `timeout` passes. True if so;
// `cluster` then holds the last descriptions.
bool AwaitAgreement(std::vector<KnownMember>& cluster, absl::Duration timeout);

struct WorkloadOptions {
  int clients_per_node = 1;
  int64_t increments = 10000;  // per client
  int64_t keys = 1000;
  // Every this many increments a client asks (Add) rather than tells, and
  // waits for the answer; 0: tells only.
  int64_t ask_every = 100;
  // Deadline of each step, beyond the pacing: the clients' sending gets
  // increments x pace more.
  absl::Duration timeout = absl::Seconds(30);
  // Each client sends one increment per pace (0: as fast as it can).
  absl::Duration pace = absl::ZeroDuration();
  bool tell_only = false;
  // Check acknowledged increments rather than exact counts: no Awaits;
  // once the clients have reported (or are lost), every key is read back
  // (retried until the deadline) and must hold at least the Adds
  // acknowledged to it and at most the increments meant for it. For runs
  // with faults, with ask_every = 1.
  bool check_acked = false;
  // Unique to the run, so that counts of earlier runs do not count.
  std::string key_prefix;
};

// Runs the workload over `cluster` and prints what it did and whether the
// counts check out. True if they do (tell-only: if every increment was
// delivered).
bool RunWorkload(troupe::ActorSystem& sys, const std::vector<KnownMember>& cluster, const WorkloadOptions& options);

// A line per node of `cluster`: "<node> sees: <the other members it has up,
// sorted>" (as it described itself last).
void PrintMembers(const std::vector<KnownMember>& cluster);

// A line per node: address, whether it hosts, entities, handoffs in and
// out, increments applied, messages in and out (since each node started).
// `extra` adds a column (header `extra_header`) by node name.
void PrintNodeTable(const std::vector<KnownMember>& cluster, absl::Duration timeout, const std::string& extra_header,
                    const absl::flat_hash_map<std::string, std::string>& extra);

}  // namespace counter

#endif  // TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_
