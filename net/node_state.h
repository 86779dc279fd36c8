// The inside of a Node (net/node.h): peers, links, proxies, exports.
//
// Objects and who owns whom:
// - NodeState: everything one Node shares. Held by the Node, by every Peer
//   (weakly) and by every proxy (strongly, so a Ref outliving its Node
//   finds a closed state, not freed memory).
// - Peer: one remote node — the connection to it (if up), frames waiting
//   while it connects, asks waiting for replies, monitors of its actors.
//   Found by dial address (peers_by_address_) and, once its hello is
//   known, by node name (peers_by_name_). Held by NodeState's tables and
//   by proxies.
// - Link: the handler of one connection (the reactor holds it): runs the
//   handshake, then decodes frames and hands them on. Bound to its Peer
//   once the handshake is done.
// - RemoteActor: the proxy cell a Ref to a remote actor points to.
//
// Peer states, all under Peer::mu_:
//   kIdle        never connected; the first send starts a connection
//   kConnecting  connect + handshake running; sends wait in the backlog
//   kUp          sends go to the connection
//   kBackoff     the last attempt failed; sends fail with Unavailable until
//                retry_at_, then the next send reconnects
//   kGone        a peer that connected to us and does not listen: nothing
//                to dial once its connection is lost
//
// Threads: Link callbacks run on the connection's I/O thread; Peer methods
// on any thread (sending actors, timers, I/O threads). Locks: NodeState's
// table mutexes and each Peer's mu_ are leaves — never held while calling
// into the reactor's Send/Close, completing a future, or sending to an
// actor — except that Peer::mu_ is held across Connection::Send in the up
// state so that frames of one peer are queued in the order they were
// accepted.

#ifndef TROUPE_NET_NODE_STATE_H_
#define TROUPE_NET_NODE_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "actors/wire.h"
#include "capnp/message.h"
#include "net/io/reactor.h"
#include "net/node.h"
#include "net/wire/codec.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::internal {

class NodeState;
class Peer;
class RemoteActor;

// A request waiting for its reply frame.
struct Pending {
  std::unique_ptr<RemoteReply> reply;
  TimerId timer;
};

// A monitor of a remote actor, held by the Peer until Down is delivered.
struct RemoteWatch {
  ActorCell* watcher;  // holds a reference
  DownFactory make_down;
  ActorCell* proxy;  // holds a reference
};

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  enum class State { kIdle, kConnecting, kUp, kBackoff, kGone };

  Peer(std::weak_ptr<NodeState> node, std::string address) : node_(std::move(node)), address_(std::move(address)) {}

  // Any thread. Queues `frame` for this peer, connecting if needed. With a
  // `reply`, registers it under `request_id` first (and a deadline when
  // `timeout` is finite); on any failure the reply is completed with the
  // error, which is also returned. `incarnation` (0: any) must match the
  // peer's, or the send fails with Unavailable (the node restarted).
  // `node` is this peer's node (its callers hold it).
  absl::Status Submit(NodeState& node, net::OutFrame frame, uint64_t incarnation, uint64_t request_id,
                      std::unique_ptr<RemoteReply> reply, absl::Duration timeout);

  // I/O thread: the reply frame for `request_id` arrived.
  void Complete(uint64_t request_id, WireReader* payload, absl::Status status);
  // Timer: the deadline of `request_id` passed.
  void Expire(uint64_t request_id, absl::Duration timeout);

  // Any thread: `watcher` hears Down when the remote actor `actor` stops
  // or this peer is lost.
  void Watch(uint64_t actor, ActorCell* watcher, DownFactory make_down, ActorCell* proxy);
  // I/O thread: a down frame.
  void DeliverDown(uint64_t actor, const absl::Status& reason);

  // I/O thread: the handshake on `connection` finished; `node` and
  // `incarnation` are the peer's. Flushes the backlog.
  void Up(std::shared_ptr<net::Connection> connection, std::string name, uint64_t incarnation,
          std::string listen_address);
  // I/O thread: `connection` closed after Up, or the attempt failed before
  // it (connection null). Fails everything pending.
  void Lost(const net::Connection* connection, const absl::Status& reason);

  const std::string& address() const { return address_; }
  std::string name() const;
  uint64_t incarnation() const;
  std::shared_ptr<net::Connection> connection() const;

 private:
  void StartConnect();
  void SendHeartbeat();
  // The peer's name for logs and errors: its node name once known, else the
  // address dialled. Holds mu_.
  const std::string& who() const { return name_.empty() ? address_ : name_; }

  const std::weak_ptr<NodeState> node_;
  const std::string address_;  // "" for a peer that does not listen

  mutable std::mutex mu_;
  State state_ = State::kIdle;
  std::string name_;         // guarded by mu_
  uint64_t incarnation_ = 0;  // guarded by mu_
  std::shared_ptr<net::Connection> connection_;  // guarded by mu_; set in kUp
  std::vector<net::OutFrame> backlog_;           // guarded by mu_; kConnecting
  size_t backlog_bytes_ = 0;                     // guarded by mu_
  absl::flat_hash_map<uint64_t, Pending> pending_;  // guarded by mu_
  absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches_;  // guarded by mu_
  absl::Time retry_at_ = absl::InfinitePast();   // guarded by mu_
  absl::Duration backoff_ = absl::ZeroDuration();  // guarded by mu_
  absl::Status last_error_;                       // guarded by mu_
  TimerId heartbeat_;                             // guarded by mu_
};

// The last target a connection's sends went to: most streams of messages
// go to one actor, and this skips the exports table's lock for them. Valid
// while the exports generation is unchanged (nothing was unexported).
struct ExportCache {
  uint64_t generation = 0;
  ActorId id = 0;
  ActorRef ref;
};

class NodeState : public std::enable_shared_from_this<NodeState>, public RefCodec {
 public:
  NodeState(ActorSystem& system, NodeOptions options);
  ~NodeState() override;

  void Start();  // spawns the agent; after construction (needs shared_from_this)
  void Shutdown();

  absl::StatusOr<std::string> Listen(std::string_view address);
  absl::Status Publish(std::string_view name, const ActorRef& ref);
  void Unpublish(std::string_view name);
  void Lookup(std::string_view address, std::string_view name, std::string_view actor_type, absl::Duration timeout,
              RefCallback done);
  void SpawnOn(std::string_view address, std::string_view actor_type, uint64_t args_type, EncodeFn encode,
               const void* args, absl::Duration timeout, RefCallback done);
  void RegisterSpawn(std::string_view actor_type, uint64_t args_type, SpawnFactory factory);
  void AddSubscriber(ActorRef subscriber, absl::AnyInvocable<void(const NodeUp&)> up,
                     absl::AnyInvocable<void(const NodeDown&)> down);

  // Proxy sends.
  absl::Status SendTo(Peer& peer, uint64_t incarnation, uint64_t actor, RemoteSend& send);
  void StopRemote(Peer& peer, uint64_t actor, const absl::Status& reason);
  void WatchRemote(Peer& peer, uint64_t actor, ActorCell* watcher, DownFactory make_down, ActorCell* proxy);
  void ForgetProxy(const RemoteActor* proxy);

  // RefCodec, for messages sent and received by this node.
  absl::Status Encode(const ActorRef& ref, wire::ActorAddress::Builder out) override;
  absl::StatusOr<ActorRef> Decode(wire::ActorAddress::Reader in, std::string_view actor_type) override;

  // Links.
  std::shared_ptr<Peer> PeerForAddress(std::string_view address);
  // Opens a connection to `peer`'s address and runs the handshake.
  void Connect(std::shared_ptr<Peer> peer);
  std::shared_ptr<Peer> BindInbound(std::string_view name, uint64_t incarnation, std::string_view listen_address);
  // A peer we dialled told us its name: addresses naming that node (which
  // may carry an address we cannot dial, such as 0.0.0.0) route to it.
  void BindOutbound(std::string_view name, uint64_t incarnation, const std::shared_ptr<Peer>& peer);
  // I/O thread: a frame after the handshake. An error closes the connection.
  absl::Status HandleFrame(Peer& peer, net::Connection& connection, wire::Frame::Reader frame, ExportCache& cache);
  void PeerUp(const NodeUp& up);
  void PeerDown(const NodeDown& down);
  void ActorGone(ActorId id, const absl::Status& reason);
  void WatchLocal(std::shared_ptr<Peer> peer, uint64_t actor);

  // Builds a frame: `fill` writes the root Frame; encoding errors (a Ref
  // that cannot travel) come back instead of a frame.
  template <class Fill>
  absl::StatusOr<net::OutFrame> BuildFrame(Fill&& fill);
  absl::StatusOr<net::OutFrame> BuildReply(uint64_t request_id, const absl::Status& status, uint64_t type_id,
                                           EncodeFn encode, const void* value);

  net::ConnectionOptions connection_options() const;
  capnp::ReaderOptions reader_options(size_t payload_bytes) const;
  // The handler of a connection a peer opened (its handshake deadline runs).
  std::shared_ptr<net::ConnectionHandler> AcceptLink(net::Connection& connection);

  ActorSystem& system() { return system_; }
  const NodeOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  uint64_t incarnation() const { return incarnation_; }
  std::string listen_address() const;
  uint64_t NextRequestId() { return next_request_.fetch_add(1, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  spdlog::logger& log() { return system_.log(); }
  NodeStats stats() const;

  // Counters (relaxed: statistics only).
  std::atomic<uint64_t> connections{0}, handshakes_failed{0}, bad_frames{0}, unknown_targets{0}, unknown_types{0},
      rejected_sends{0}, messages_in{0}, messages_out{0};

 private:
  ActorRef FindExport(ActorId id);
  // Sends a lookup or spawn frame whose reply is an ActorAddress.
  void SubmitRefRequest(Peer& peer, absl::StatusOr<net::OutFrame> frame, uint64_t request_id,
                        std::string_view actor_type, absl::Duration timeout, RefCallback done);
  void SendDown(Peer& peer, uint64_t actor, const absl::Status& reason);
  ActorRef ProxyFor(const std::shared_ptr<Peer>& peer, std::string_view node, uint64_t incarnation, uint64_t actor);
  void ReplyTo(net::Connection& connection, uint64_t request_id, const absl::Status& status, uint64_t type_id,
               EncodeFn encode, const void* value);
  absl::Status HandleSend(Peer& peer, net::Connection& connection, wire::Envelope::Reader envelope,
                          ExportCache& cache);
  void ReplyWithRef(net::Connection& connection, uint64_t request_id, const absl::Status& status, const ActorRef& ref);
  void HandleLookup(net::Connection& connection, wire::Lookup::Reader lookup);
  void HandleSpawn(net::Connection& connection, wire::Spawn::Reader spawn);

  ActorSystem& system_;
  NodeOptions options_;
  const uint64_t incarnation_;
  std::atomic<uint64_t> next_request_{1};
  std::atomic<bool> closed_{false};  // release store in Shutdown; acquire loads
  std::unique_ptr<net::Reactor> reactor_;
  ActorRef agent_;

  mutable std::mutex mu_;
  std::string listen_address_;  // guarded by mu_
  absl::flat_hash_map<std::string, std::shared_ptr<Peer>> peers_by_address_;  // guarded by mu_
  absl::flat_hash_map<std::string, std::shared_ptr<Peer>> peers_by_name_;     // guarded by mu_
  absl::flat_hash_map<std::string, ActorRef> published_;                      // guarded by mu_
  struct Spawnable {
    uint64_t args_type;
    std::shared_ptr<SpawnFactory> factory;
  };
  absl::flat_hash_map<std::string, Spawnable> spawnable_;  // guarded by mu_
  struct Subscriber {
    ActorRef ref;
    absl::AnyInvocable<void(const NodeUp&)> up;
    absl::AnyInvocable<void(const NodeDown&)> down;
  };
  std::vector<Subscriber> subscribers_;  // guarded by mu_

  // Local actors whose address has left this node: id -> the actor, and
  // which peers asked to hear when it stops.
  std::mutex exports_mu_;
  struct Export {
    ActorRef ref;
    std::vector<std::weak_ptr<Peer>> watchers;
  };
  absl::flat_hash_map<ActorId, Export> exports_;  // guarded by exports_mu_
  // Bumped (release, under exports_mu_) each time an export is removed;
  // read (acquire) by ExportCache users, so a cached Ref is dropped once
  // its actor has been unexported.
  std::atomic<uint64_t> exports_generation_{1};

  // Proxies by (node, incarnation, actor), without holding them.
  std::mutex proxies_mu_;
  absl::flat_hash_map<std::tuple<std::string, uint64_t, uint64_t>, RemoteActor*> proxies_;  // guarded by proxies_mu_
};

class RemoteActor final : public RemoteCell {
 public:
  RemoteActor(std::shared_ptr<NodeState> node, std::shared_ptr<Peer> peer, std::string node_name, uint64_t incarnation,
              uint64_t actor);

  absl::Status SendRemote(RemoteSend& send) noexcept override;
  void StopRemote(absl::Status reason) noexcept override;
  void WatchRemote(ActorCell* watcher, DownFactory make_down) noexcept override;
  std::string_view type_name() const noexcept override { return "remote actor"; }

  const std::string& node_name() const { return node_name_; }
  uint64_t remote_incarnation() const { return incarnation_; }
  uint64_t remote_id() const { return actor_; }
  const std::shared_ptr<Peer>& peer() const { return peer_; }

 private:
  ~RemoteActor() override;

  const std::shared_ptr<NodeState> node_;
  const std::shared_ptr<Peer> peer_;
  const std::string node_name_;
  const uint64_t incarnation_;
  const uint64_t actor_;
};

// A copy of `status` that shares nothing with it. Debian's Abseil is not
// built for ThreadSanitizer, so the reference count of a Status shared
// between threads is invisible to it; statuses handed to other threads (a
// future's error, a Down, a NodeDown) are copied this way instead.
inline absl::Status Unshared(const absl::Status& status) {
  return status.ok() ? absl::OkStatus() : absl::Status(status.code(), std::string(status.message()));
}

// The status a reply or down frame carries.
inline absl::Status StatusFromWire(uint32_t code, std::string_view message) {
  if (code == 0) return absl::OkStatus();
  if (code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) code = static_cast<uint32_t>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), std::string(message));
}

}  // namespace troupe::internal

#endif  // TROUPE_NET_NODE_STATE_H_
