// The actors of the counter service (examples/counter_service.cc); the
// messages between them are in examples/counter_service.capnp.
//
// Each node process is a member of a troupe cluster (cluster/cluster.h)
// and runs:
//   - Counter entities (cluster/entity.h), one per key, wherever the
//     cluster places the key's shard. Increment is a tell; Add, Read and
//     Await are asks (Await is a long poll: the entity holds the reply
//     until the count reaches the threshold). A Counter keeps its count in
//     memory, or (--cluster=etcd://) in etcd (examples/counter_store.h),
//     where an Add is acknowledged only once written. When its shard moves
//     (a member joins or leaves) it sends what it has not kept elsewhere,
//     and the replies it owes, to its own next activation, which the
//     cluster forwards to the new owner with the shard's messages. In
//     memory, a member lost without leaving loses the counts it held; in
//     etcd only what it had not written yet, which it never acknowledged.
//   - One Service, published as "counter": describes the node (its view
//     of the cluster, its region's figures, its traffic), prints every
//     membership change it is told, reads keys for processes that are not
//     members, starts clients, and leaves the cluster when asked.
//   - Clients, started by RunClient asks from whoever runs a workload:
//     children of the Service that send their increments through entity
//     handles and report to the workload's Reporter.
//
// A workload runner (counter_workload.h) has a Reporter, which collects the
// ClientDone reports and monitors the clients, so that a client lost with
// its node is reported rather than waited for.
//
// Output goes to stdout, one line at a time, prefixed with the node's name.

#ifndef TROUPE_EXAMPLES_COUNTER_ACTORS_H_
#define TROUPE_EXAMPLES_COUNTER_ACTORS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "cluster/cluster.h"
#include "examples/counter_service.troupe.h"
#include "examples/counter_store.h"
#include "net/node.h"

namespace counter {

// Increments applied by the Counters of this process (one node per
// process), for Describe.
std::atomic<uint64_t>& AppliedIncrements();

struct Counter : troupe::Actor<Counter> {
  using Remote = troupe::Accepts<Increment, Add, Read, Await, Carried>;

  explicit Counter(const troupe::cluster::EntityRef<Counter>& self);

  void OnStart();
  void On(const Increment& m);
  void On(const Add& m, troupe::Reply<int64_t> reply);
  void On(const Read&, troupe::Reply<int64_t> reply);
  void On(const Await& m, troupe::Reply<int64_t> reply);
  void On(const Carried& m);
  // The shard moves (or the node stops hosting): what is not kept yet, and
  // the replies it owes, go to the next activation.
  void OnStop(const absl::Status&);

  // Local: try the store again after a failure.
  struct RetryStore {};
  void On(const RetryStore&);

 private:
  struct Waiter {
    int64_t at_least;
    troupe::Reply<int64_t> reply;
  };
  // A write to the store: its tag, the increments it adds, the replies
  // owed once it is kept, and which unsure writes its increments include.
  struct Write {
    std::string tag;
    int64_t delta = 0;
    std::vector<troupe::Reply<int64_t>> acks;
    std::vector<std::string> includes;
    Stored next;
  };

  int64_t kept() const { return store_ ? durable_.count : count_; }
  void Received(int64_t by);
  void AnswerWaiters();
  // Store mode.
  void Load();
  void SettleApplied();
  void Reconcile(Stored current);
  void Kept();
  void Flush();
  void Send();
  void Retry();

  troupe::cluster::EntityRef<Counter> self_;
  std::shared_ptr<CounterStore> store_;  // null: counts live in memory
  int64_t count_ = 0;                    // memory mode
  std::vector<Waiter> waiters_;
  // Store mode: what the store holds as last read or written, what has
  // arrived since, and the one write in flight.
  bool loaded_ = false;
  Stored durable_;
  int64_t pending_ = 0;
  std::vector<troupe::Reply<int64_t>> pending_acks_;
  std::vector<troupe::Reply<int64_t>> reads_;  // before the first load
  std::optional<Write> inflight_;
  std::vector<UnsureWrite> unsure_;  // carried writes not yet resolved
  std::string activation_;           // unique to this activation, for tags
  uint64_t writes_ = 0;
};

// How long an Await handed on to the next activation may wait there.
inline constexpr absl::Duration kCarriedAwaitLimit = absl::Minutes(10);

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

struct ServiceOptions {
  std::string node;        // this node's name
  std::string address;     // its cluster address
  uint64_t incarnation = 0;
  std::string membership;  // "static" or "etcd <endpoint>"
  // Outlives the Service: main stops the Service (Quiet, then its Stop)
  // before it destroys the Cluster.
  troupe::cluster::Cluster* cluster = nullptr;
  std::shared_ptr<NodeStatsSource> stats;
  // Set (release) when a Leave ask arrives: main then leaves the cluster.
  std::atomic<bool>* leave = nullptr;
  // Set (release) the first time the node hosts entities.
  std::atomic<bool>* hosted = nullptr;
};

// The most keys one RunClient may spread its increments over (a client
// holds a handle per key).
inline constexpr int64_t kMaxClientKeys = 1'000'000;

// Local: no more membership lines, and stop (main, before it destroys the
// Cluster).
struct Quiet {};

struct Service : troupe::Actor<Service> {
  using Remote = troupe::Accepts<Describe, RunClient, ReadKey, AwaitKey, Leave>;

  explicit Service(ServiceOptions options) : options_(std::move(options)) {}

  NodeInfo On(const Describe&);
  absl::StatusOr<ClientStarted> On(const RunClient& m);
  void On(const ReadKey& m, troupe::Reply<int64_t> reply);
  void On(const AwaitKey& m, troupe::Reply<int64_t> reply);
  std::string On(const Leave&);
  void On(const troupe::cluster::MemberChanged& m);
  void On(const troupe::cluster::HostingChanged& m);
  void On(const Quiet&);

 private:
  ServiceOptions options_;
  bool quiet_ = false;
};

// Sends a RunClient's increments in slices (other messages run in
// between), or one per pace if the RunClient has one, waiting for each Add
// ask it makes, then reports to its Reporter and stops.
struct Client : troupe::Actor<Client> {
  Client(RunClient run, std::string node, std::vector<troupe::cluster::EntityRef<Counter>> keys)
      : run_(std::move(run)), node_(std::move(node)), keys_(std::move(keys)) {}

  void OnStart();
  struct Next {};
  void On(const Next&);
  struct Acked {
    bool ok = false;
    size_t key = 0;
  };
  void On(const Acked& m);

 private:
  void Finish();

  RunClient run_;
  std::string node_;
  std::vector<troupe::cluster::EntityRef<Counter>> keys_;  // by key index
  absl::Time started_;
  int64_t next_ = 0;
  int64_t acked_ = 0;
  int64_t unknown_ = 0;
  std::vector<int64_t> acked_per_key_;  // with run_.count_acked
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
