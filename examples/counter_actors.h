// The actors of the sharded counter service (examples/counter_service.cc);
// the messages between them are in examples/counter_service.capnp.
//
// Each node process runs:
//   - Shards, published as "shard-0".."shard-<k-1>": the counts of the keys
//     that hash to them. Increments are tells; Read and Await are asks
//     (Await is a long poll: the shard holds the reply until the count
//     reaches the threshold).
//   - One Directory, published as "directory": describes the node (its
//     shards as Refs, the members it knows, its traffic counters), takes
//     Joins, and keeps the membership from the node's NodeUp, NodeDown and
//     NodeLeft: a member that leaves (its node shut down cleanly, NodeLeft)
//     is told from one that fails (NodeDown). On a failure it prints which
//     shards became unavailable and probes one of them with an ask, which
//     fails at once. A member marked down whose node comes up again
//     (NodeUp, same incarnation) is marked up; a restarted member (a new
//     incarnation) comes back through its Join instead.
//   - Clients, started by RunClient asks from whoever runs a workload:
//     children of the Directory that send their increments and report to
//     the workload's Reporter.
//
// A workload runner (counter_workload.h) has a Reporter, which collects the
// ClientDone reports and monitors the clients, so that a client lost with
// its node is reported rather than waited for.
//
// Everything here runs as actors; output goes to stdout, one line at a
// time, prefixed with the node's name.

#ifndef TROUPE_EXAMPLES_COUNTER_ACTORS_H_
#define TROUPE_EXAMPLES_COUNTER_ACTORS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "examples/counter_service.troupe.h"
#include "net/node.h"

namespace counter {

// The shard a key belongs to among `ring` (sorted by node, then index):
// FNV-1a (64 bits) of the key, modulo the ring's size. Stable across
// processes and hosts. `ring` is not empty.
size_t ShardIndex(const std::string& key, size_t ring_size);

// Sorts shards by (node, index): the ring every client of a workload uses.
void SortRing(std::vector<ShardInfo>& ring);

// A node's traffic counters, for Describe, readable until the node goes.
// Any thread.
class NodeStatsSource {
 public:
  explicit NodeStatsSource(troupe::Node* node) : node_(node) {}
  // Before the node is destroyed; stats() then returns zeros.
  void Detach();
  troupe::NodeStats stats() const;

 private:
  mutable std::mutex mu_;
  troupe::Node* node_;  // guarded by mu_; not owned
};

struct Shard : troupe::Actor<Shard> {
  using Remote = troupe::Accepts<Increment, Read, Await, GetShardStats>;

  void On(const Increment& m);
  int64_t On(const Read& m);
  void On(const Await& m, troupe::Reply<int64_t> reply);
  ShardStats On(const GetShardStats&);

  struct Waiter {
    int64_t at_least;
    troupe::Reply<int64_t> reply;
  };
  absl::flat_hash_map<std::string, int64_t> counts;
  absl::flat_hash_map<std::string, std::vector<Waiter>> waiters;
  uint64_t increments = 0;
  int64_t total = 0;
  uint64_t waiting = 0;
};

// Local messages of the Directory (they never cross nodes).
struct KnownMember {
  troupe::Ref<Directory> directory;
  NodeInfo info;
};
// Adds members found by discovery; replies how many nodes the directory
// knows, itself included.
struct Learn {
  std::vector<KnownMember> members;
};
// The process is stopping: no more membership reports.
struct Quiet {};

struct DirectoryOptions {
  std::string node;                    // this node's name
  std::string address;                 // where it listens; empty if it does not
  uint64_t incarnation = 0;            // this node's (troupe::Node::incarnation)
  std::vector<troupe::Ref<Shard>> shards;
  std::shared_ptr<NodeStatsSource> stats;
  // Set (release) when a Leave ask arrives: main then shuts the node down.
  std::atomic<bool>* leave = nullptr;
  // Print joins (node processes) and not only failures and leaves.
  bool announce_joins = true;
  absl::Duration probe_timeout = absl::Seconds(10);
};

struct Directory : troupe::Actor<Directory> {
  using Remote = troupe::Accepts<Describe, Join, Leave, RunClient>;

  explicit Directory(DirectoryOptions options) : options_(std::move(options)) {}

  NodeInfo On(const Describe&);
  void On(const Join& m, troupe::Reply<uint32_t> reply);
  std::string On(const Leave&);
  ClientStarted On(const RunClient& m);
  void On(const troupe::NodeUp& m);
  void On(const troupe::NodeDown& m);
  void On(const troupe::NodeLeft& m);
  uint32_t On(const Learn& m);
  void On(const Quiet&) { quiet_ = true; }

 private:
  enum class State { kUp, kLeft, kDown };
  struct Member {
    troupe::Ref<Directory> directory;
    NodeInfo info;
    State state = State::kUp;
  };

  void Register(const troupe::Ref<Directory>& directory, NodeInfo info);
  void MarkDown(Member& m, const absl::Status& reason);
  uint32_t known() const { return static_cast<uint32_t>(members_.size() + 1); }

  DirectoryOptions options_;
  absl::flat_hash_map<std::string, Member> members_;
  bool quiet_ = false;
};

// Sends a RunClient's increments in slices (other messages run in
// between), or one per pace if the RunClient has one, then reports to its
// Reporter and stops.
struct Client : troupe::Actor<Client> {
  Client(RunClient run, std::string node) : run_(std::move(run)), node_(std::move(node)) {}

  void OnStart();
  struct Next {};
  void On(const Next&);

 private:
  void Finish();

  RunClient run_;
  std::string node_;
  absl::Time started_;
  int64_t next_ = 0;
  int64_t sent_ = 0;
  int64_t failed_ = 0;
  int exhausted_in_a_row_ = 0;
};

// Collects `expected` ClientDone reports (or the loss of their clients)
// for the workload runner.
struct ClientReports {
  std::vector<ClientDone> done;
  std::vector<std::string> lost;  // clients whose node failed before they reported
};

struct Reporter : troupe::Actor<Reporter> {
  using Remote = troupe::Accepts<ClientDone>;

  Reporter(size_t expected, troupe::Promise<ClientReports> result)
      : expected_(expected), result_(std::move(result)) {}

  // A client started by the workload: watched until it reports.
  struct WatchClient {
    std::string name;
    troupe::Ref<Client> client;
  };
  void On(const WatchClient& m);
  // A client whose RunClient ask failed.
  struct NotStarted {
    std::string name;
    absl::Status status;
  };
  void On(const NotStarted& m);
  void On(const ClientDone& m);
  void On(const troupe::Down& m);

 private:
  void MaybeFinish();

  size_t expected_;
  troupe::Promise<ClientReports> result_;
  ClientReports reports_;
  absl::flat_hash_map<troupe::ActorRef, std::string> watched_;
  absl::flat_hash_map<std::string, bool> reported_;
};

}  // namespace counter

#endif  // TROUPE_EXAMPLES_COUNTER_ACTORS_H_
