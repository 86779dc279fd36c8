// The inside of a Node (net/node.h), in parts with one job each:
//
// - NodeState (this file): what one Node shares — options, identity, the
//   reactor, counters — and the glue between the parts. Held by the Node,
//   by every Peer and Link (weakly, or strongly while they run) and by
//   every proxy (strongly, so a Ref outliving its Node finds a closed
//   state, not freed memory).
// - PeerDirectory (peer_directory.h): the Peer for an address or a name.
// - Peer (peer.h): one remote node, its link and what waits on it; the
//   decisions that keep one connection per pair and heal lost links.
// - Link (link.cc): the handler of one connection: the handshake, then
//   frames handed to the dispatch.
// - Dispatch (dispatch.cc): what each frame does — deliveries into
//   mailboxes, replies, lookups, spawns, stops, monitors, leaves — and the
//   per-message refusals.
// - RefTable (ref_table.h): Refs across the wire: exports, proxies, the
//   RefCodec.
// - Subscribers and HandshakeGate (below): NodeUp/NodeDown/NodeLeft
//   delivery; the cap on connections that have not finished a handshake.
//
// Threads: Link and dispatch run on the connection's I/O thread; the rest
// on any thread (sending actors, timers, I/O threads). Every mutex here is
// a leaf: no callback, future completion or actor send runs under one.

#ifndef TROUPE_NET_NODE_STATE_H_
#define TROUPE_NET_NODE_STATE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "actors/wire.h"
#include "capnp/message.h"
#include "net/frame_codec.h"
#include "net/io/reactor.h"
#include "net/node.h"
#include "net/peer.h"
#include "net/peer_directory.h"
#include "net/ref_table.h"
#include "net/wire/codec.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::internal {

// The subscribers of NodeUp, NodeDown and NodeLeft.
class Subscribers {
 public:
  void Add(ActorRef subscriber, NodeEvents events);
  // Tells every subscriber (outside the lock; the calls only queue).
  void Notify(const std::variant<NodeUp, NodeDown, NodeLeft>& event);
  void Clear();

 private:
  struct Entry {
    ActorRef ref;
    NodeEvents events;
  };
  std::mutex mu_;
  std::vector<std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// Accepted connections that have not finished their handshake, oldest
// first, within max_unauthenticated in all and
// max_unauthenticated_per_source from one source address.
class HandshakeGate {
 public:
  // Admits connection `id` from `source`; returns the connections to close
  // (the oldest ones) to stay within the limits.
  std::vector<std::shared_ptr<net::Connection>> Admit(uint64_t id, const std::shared_ptr<net::Connection>& connection,
                                                      const std::string& source, const NodeOptions& options);
  // Connection `id` finished its handshake, or closed.
  void Done(uint64_t id);
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<net::Connection> connection;
    std::string source;
  };
  void EraseLocked(std::map<uint64_t, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable std::mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);  // by id: oldest first
  absl::flat_hash_map<std::string, size_t> per_source_ ABSL_GUARDED_BY(mu_);
};

// Refused messages are logged once per kind, then counted only; past
// kMaxKinds kinds, one line a second at most. Inbound refusals are of a
// kind per (reason, actor type, message type); sends refused at the sender
// per the error's text (which names the message type).
class RefusalLog {
 public:
  // True if this refusal is to be logged.
  bool ShouldLog(std::string_view reason, std::string_view actor_type, uint64_t type_id, absl::Time now);
  bool ShouldLog(std::string kind, absl::Time now);

 private:
  static constexpr size_t kMaxKinds = 256;
  std::mutex mu_;
  absl::flat_hash_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  absl::Time last_overflow_line_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The body of a reply frame: a value, an ActorAddress, or nothing.
struct ReplyBody {
  uint64_t type_id = 0;
  EncodeFn encode = nullptr;
  const void* value = nullptr;
  const ActorRef* ref = nullptr;  // lookups and spawns
  std::string_view refused_by;    // the target refused the message's type
  bool refused_accepts_some = false;

  static ReplyBody Value(uint64_t type_id, EncodeFn encode, const void* value) {
    ReplyBody b;
    b.type_id = type_id;
    b.encode = encode;
    b.value = value;
    return b;
  }
  static ReplyBody Address(const ActorRef* ref) {
    ReplyBody b;
    b.ref = ref;
    return b;
  }
  static ReplyBody Refused(std::string_view by, bool accepts_some) {
    ReplyBody b;
    b.refused_by = by;
    b.refused_accepts_some = accepts_some;
    return b;
  }
};

// What a Link hands the dispatch with each frame.
struct LinkContext {
  Peer& peer;
  net::Connection& connection;
  ExportCache& cache;
  size_t peer_max_frame_bytes;
};

class NodeState : public std::enable_shared_from_this<NodeState> {
 public:
  NodeState(ActorSystem& system, NodeOptions options);
  ~NodeState();

  void Start();  // spawns the agent; after construction (needs shared_from_this)
  void Shutdown();

  // --- The Node API (net/node.h).
  absl::StatusOr<std::string> Listen(std::string_view address);
  absl::Status Publish(std::string_view name, const ActorRef& ref);
  void Unpublish(std::string_view name);
  void Lookup(std::string_view address, std::string_view name, std::string_view actor_type, absl::Duration timeout,
              RefCallback done);
  void SpawnOn(std::string_view address, std::string_view actor_type, uint64_t args_type, EncodeFn encode,
               const void* args, absl::Duration timeout, RefCallback done);
  void RegisterSpawn(std::string_view actor_type, uint64_t args_type, SpawnFactory factory);
  void AddSubscriber(ActorRef subscriber, NodeEvents events) { subscribers_.Add(std::move(subscriber), std::move(events)); }
  Future<void> WaitForRoom(const ActorRef& target);

  // --- Proxies (RemoteActor).
  absl::Status SendTo(Peer& peer, uint64_t incarnation, uint64_t actor, RemoteSend& send);
  // A send to an actor on `peer_node` that its Ref refused (RemoteCell::
  // RefusedAtSender): counted in rejected_sends, logged once per kind.
  void RefusedAtSender(std::string_view peer_node, const absl::Status& error);
  void StopRemote(Peer& peer, uint64_t incarnation, uint64_t actor, const absl::Status& reason);
  // Sends a link (or unlink) frame: `from`, an actor of ours, and `actor`
  // of `peer`'s incarnation `incarnation`.
  void SendLink(Peer& peer, uint64_t incarnation, uint64_t actor, const ActorRef& from, bool link);

  // --- Peers and links.
  PeerDirectory& directory() { return directory_; }
  RefTable& refs() { return refs_; }
  uint64_t NextAttempt() { return next_attempt_.fetch_add(1, std::memory_order_relaxed); }
  // Dials `peer`'s address as attempt `attempt` (Peer::Submit and Retry).
  void Connect(std::shared_ptr<Peer> peer, uint64_t attempt);
  // The handler of a connection a peer opened.
  std::shared_ptr<net::ConnectionHandler> AcceptLink(net::Connection& connection);
  HandshakeGate& gate() { return gate_; }
  void Notify(const std::variant<NodeUp, NodeDown, NodeLeft>& event) { subscribers_.Notify(event); }
  void ForgetPeer(const Peer& peer) { directory_.Forget(peer); }
  void ForgetRemoteWatcher(const Peer* peer) { refs_.ForgetWatcher(peer); }
  // RefTable: a local actor was exported; the agent tells the node when it stops.
  void WatchExport(const ActorRef& ref);
  void ActorGone(ActorId id, const absl::Status& reason);

  // --- Dispatch (dispatch.cc), on the connection's I/O thread. Only a
  // frame the node cannot make sense of returns an error (the Link closes
  // the connection); a bad message is refused alone.
  absl::Status HandleFrame(LinkContext& link, wire::Frame::Reader frame);
  // Sends the reply of request `request_id` on the control lane; a reply
  // that does not encode or is over `limit` bytes becomes an error reply.
  void Reply(net::Connection& connection, uint64_t request_id, const absl::Status& status, const ReplyBody& body,
             size_t limit);

  // --- Shared facts.
  net::ConnectionOptions connection_options() const;
  capnp::ReaderOptions reader_options(size_t payload_bytes) const;
  ActorSystem& system() { return system_; }
  const NodeOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  uint64_t incarnation() const { return incarnation_; }
  const std::string& key() const { return key_; }
  // Why the node cannot work (see Node::ready), or OK.
  const absl::Status& ready() const { return ready_; }
  // TLS: the credentials new connections use; null in shared-secret mode.
  const std::shared_ptr<net::TlsConfig>& tls() const { return tls_; }
  absl::Status ReloadTls();
  std::string listen_address() const;
  uint64_t NextRequestId() { return next_request_.fetch_add(1, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  spdlog::logger& log() { return system_.log(); }
  NodeStats stats() const;

  // Counters (relaxed: statistics only).
  std::atomic<uint64_t> connections{0}, handshakes_failed{0}, unauthenticated_closed{0}, bad_frames{0},
      unknown_targets{0}, unknown_types{0}, undecodable{0}, stale_incarnation{0}, rejected_sends{0}, reconnects{0},
      messages_in{0}, messages_out{0}, tls_name_refused{0};

 private:
  // Builds a frame with `fill` (which writes the root Frame with a
  // RefCodec at hand) and submits it to `peer`; a frame that does not
  // encode fails the submission's reply with the error, which is returned.
  template <class Fill>
  absl::Status SubmitFrame(Peer& peer, Fill&& fill, Submission s);
  void SendDown(Peer& peer, uint64_t actor, const absl::Status& reason);
  absl::Status HandleSend(LinkContext& link, wire::Envelope::Reader envelope);
  // A message refused alone: counted, logged once per kind, an ask answered.
  void Refuse(LinkContext& link, uint64_t request_id, std::atomic<uint64_t>& counter, std::string_view reason,
              std::string_view actor_type, uint64_t type_id, const absl::Status& status, const ReplyBody& body = {});
  void HandleLookup(LinkContext& link, wire::Lookup::Reader lookup);
  void HandleSpawn(LinkContext& link, wire::Spawn::Reader spawn);
  void HandleStop(LinkContext& link, wire::Stop::Reader stop);
  void HandleWatch(LinkContext& link, wire::Watch::Reader watch);
  void HandleLink(LinkContext& link, wire::Link::Reader frame, bool link_them);
  // TLS: loads the credentials (ready_ says if that failed), and checks the
  // files for changes every tls_reload_interval.
  void LoadTls();
  void ScheduleTlsCheck();
  // "certificate <subject> (valid until <time>)" of what new connections use.
  std::string CurrentCertificate() const;

  ActorSystem& system_;
  const NodeOptions options_;
  const uint64_t incarnation_;
  const std::string key_;  // the stretched cluster secret
  std::shared_ptr<net::TlsConfig> tls_;  // set by the constructor, then read-only
  absl::Status ready_;                   // likewise
  std::string mismatch_reply_;           // a `refused` frame for a peer of the other mode
  TimerId tls_timer_;                    // set by Start, cancelled by Shutdown
  std::atomic<uint64_t> next_request_{1};
  std::atomic<uint64_t> next_attempt_{1};
  std::atomic<bool> closed_{false};  // release store in Shutdown; acquire loads
  std::unique_ptr<net::Reactor> reactor_;
  ActorRef agent_;
  PeerDirectory directory_;
  RefTable refs_;
  Subscribers subscribers_;
  HandshakeGate gate_;
  RefusalLog refusals_;

  mutable std::mutex mu_;
  std::string listen_address_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ActorRef> published_ ABSL_GUARDED_BY(mu_);
  struct Spawnable {
    uint64_t args_type;
    std::shared_ptr<SpawnFactory> factory;
  };
  absl::flat_hash_map<std::string, Spawnable> spawnable_ ABSL_GUARDED_BY(mu_);
};

template <class Fill>
absl::Status NodeState::SubmitFrame(Peer& peer, Fill&& fill, Submission s) {
  bool built = false;
  absl::Status status = net::WithFrame(
      std::forward<Fill>(fill), [&](net::FrameWriter& frame) { return peer.Submit(*this, frame, std::move(s)); },
      built);
  if (!built) {
    rejected_sends.fetch_add(1, std::memory_order_relaxed);
    if (s.reply != nullptr) s.reply->Complete(nullptr, Unshared(status));
  }
  return status;
}

// The status a reply or down frame carries.
inline absl::Status StatusFromWire(uint32_t code, std::string_view message) {
  if (code == 0) return absl::OkStatus();
  if (code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) code = static_cast<uint32_t>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), std::string(message));
}

// Into a Reply, Stop or Down frame: each carries a status as code and message.
template <class Builder>
void WriteStatus(Builder frame, const absl::Status& status) {
  frame.setCode(static_cast<uint32_t>(status.code()));
  frame.setMessage(std::string(status.message()));
}

}  // namespace troupe::internal

#endif  // TROUPE_NET_NODE_STATE_H_
