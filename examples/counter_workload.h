// Finding a counter cluster from seed addresses, and the workload that
// exercises and checks it (examples/counter_service.cc). Both run on a
// thread outside actors (they wait on futures); every wait has a deadline.
//
// The workload, in order:
//   1. the ring: every shard of the cluster, sorted by (node, index);
//   2. for every key, an Await ask for the count the workload will bring
//      it to, held by the key's shard (keys are new: a prefix unique to the
//      run), so the runner learns when every increment has landed without
//      polling;
//   3. clients on every node (RunClient asks to each directory), which tell
//      their increments to the shards, node to node, and report to a
//      Reporter here, which also monitors them;
//   4. the reports, then the Awaits; then every key is read back (Read
//      asks) and compared with its expected count, and the sum with the
//      increments sent.
// A node lost on the way makes its shards' asks fail with Unavailable: the
// workload then reports what it could not verify instead of hanging.
//
// A tell-only workload skips 2 and the read-back: between the nodes only
// Increment tells flow (and ClientDone tells to the runner); it checks only
// that no increment was refused and no client lost.

#ifndef TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_
#define TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "examples/counter_actors.h"
#include "net/node.h"

namespace counter {

struct Discovery {
  std::vector<KnownMember> members;  // sorted by node name
  std::vector<std::string> errors;   // seeds or members that did not answer
};

// The directories at `seeds` (and `self`, if this process is a node: pass
// an empty Ref otherwise), then every member they know, transitively, up
// to 256 nodes.
Discovery Discover(troupe::Node& node, const std::vector<std::string>& seeds, const troupe::Ref<Directory>& self,
                   absl::Duration timeout);

struct WorkloadOptions {
  int clients_per_node = 1;
  int64_t increments = 10000;  // per client
  int64_t keys = 1000;
  // Deadline of each step, beyond the pacing: the clients' sending gets
  // increments x pace more.
  absl::Duration timeout = absl::Seconds(30);
  // Each client sends one increment per pace (0: as fast as it can).
  absl::Duration pace = absl::ZeroDuration();
  bool tell_only = false;
  // Unique to the run, so that counts of earlier runs do not count.
  std::string key_prefix;
};

// Runs the workload over `cluster` and prints what it did and whether the
// counts check out. True if they do (tell-only: if every increment was
// sent).
bool RunWorkload(troupe::ActorSystem& sys, const std::vector<KnownMember>& cluster, const WorkloadOptions& options);

// A line per node: address, shards, keys, increments applied, messages in
// and out (since each node started). `extra` adds a column (header
// `extra_header`) by node name.
// A line per node of `cluster`: "<node> sees: <the members its directory
// has up, sorted>" (as it described itself during discovery).
void PrintMembers(const std::vector<KnownMember>& cluster);

void PrintNodeTable(const std::vector<KnownMember>& cluster, absl::Duration timeout, const std::string& extra_header,
                    const absl::flat_hash_map<std::string, std::string>& extra);

}  // namespace counter

#endif  // TROUPE_EXAMPLES_COUNTER_WORKLOAD_H_
