// Node: makes the actors of one ActorSystem reachable from other processes
// and hosts, with the same Ref, Tell and Ask as local ones.
//
//   troupe::ActorSystem sys;
//   troupe::NodeOptions options{.name = "a"};
//   options.tls.certificate_chain_file = "certs/a.pem";  // tools/make-certs
//   options.tls.private_key_file = "certs/a.key";
//   options.tls.trusted_ca_file = "certs/ca.pem";
//   troupe::Node node(sys, options);  // or {.name = "a", .cluster_secret = s}: development
//   node.Listen("0.0.0.0:7000");
//   node.Publish("counter", sys.Spawn<Counter>());
//
//   // on another host
//   troupe::Node other(sys2, options_b);  // b's certificate, the same CA
//   troupe::Ref<Counter> c = other.Lookup<Counter>("10.0.0.2:7000", "counter").Wait().value();
//   c.Tell(Add{.by = 5});                       // Add comes from a .capnp schema
//   int64_t n = c.Ask(Get{}, absl::Seconds(1)).Wait().value();
//
// What crosses: message types generated from .capnp schemas (bazel/capnp.bzl,
// troupe_messages), to actor types that list them (`using Remote =
// troupe::Accepts<Add, Get>`, actors/wire.h). A Ref inside such a message
// stays usable on the receiving node and routes back to its actor. A send
// of anything else through a Ref to a remote actor — a struct of your own,
// a type the actor type does not list — fails at the sender with
// InvalidArgument naming the type (TryTell returns it, Ask fails with it);
// a Tell drops it, counted in stats().rejected_sends and logged as an
// error once per kind ("... cannot be sent to another node: declare it in
// a .capnp schema (troupe_messages)").
//
// Links (docs/protocol.md has the states and the frames): one connection
// per pair of nodes, whichever dials first or both at once, used in both
// directions. Opened on first use (Lookup, SpawnOn, a send through a Ref
// that came in a message); sends before the first connection is up wait in
// a bounded backlog. A lost link is redialled by each side that knows where
// the other listens, with backoff (reconnect_min doubling to reconnect_max,
// with jitter) until it heals, the peer leaves, or reconnect_give_up has
// passed. While a link is down, sends fail at once with Unavailable. Per
// sender and receiver, sends arrive in send order while a connection
// lives; delivery is at-most-once.
//
// Incarnations: every start of a node is a new incarnation (ordered by
// start time), carried in every address and in every frame that targets an
// actor. A send through a Ref of an earlier incarnation fails with
// Unavailable (naming the restart) and is never delivered to the new one.
//
// Failure: each connection carries a heartbeat every heartbeat_interval; a
// connection that brings nothing for heartbeat_timeout is closed (both
// settings must be equal across a cluster: the handshake refuses a
// mismatch). When a link is lost, every pending ask through it fails at
// once with Unavailable, monitors of its actors get Down (Unavailable), and
// subscribers get NodeDown. A node that shuts down (Shutdown, or the
// destructor) leaves: its peers' subscribers get NodeLeft instead, pending
// asks on it fail with Unavailable saying it left, and it is not redialled.
// Asks honour their deadline across nodes.
//
// Back-pressure: bytes queued for one connection are bounded
// (max_outbound_bytes); past the bound TryTell returns ResourceExhausted,
// Tell drops (both counted in stats().rejected_sends), Ask fails with
// ResourceExhausted, and WaitForRoom says when to send again. Replies,
// stops, monitors and leaves are never refused for a full send queue: they
// come from a reserve and keep their place after the sends before them
// (an actor's Down never overtakes its last messages). Heartbeats take a
// control lane, written ahead of queued sends. A message over
// max_frame_bytes fails at the sender with InvalidArgument.
//
// Bad input: framing errors (garbage, an oversized or truncated frame,
// malformed Cap'n Proto at the frame level), failed handshakes and silent
// or trickling peers close that connection with one log line and a
// counter. A single bad message does not: a payload of a type the target
// does not accept, one that does not decode, one for an actor that is gone
// or for an earlier incarnation is refused alone — an ask gets an error
// naming the reason (for a refused type: both the actor type and the
// message type), a tell is counted and logged once per kind.
//
// Security: see docs/protocol.md. With NodeOptions::tls every link is
// TLS 1.3 with both ends' certificates checked against the cluster's CAs,
// and the name each node claims must be one of its certificate's DNS names;
// the node handshake is bound to the TLS connection. Without it (the
// shared-secret mode, for loopback and development) peers prove knowledge
// of cluster_secret (stretched with PBKDF2) by HMAC over the handshake's
// transcript, the connector first, and traffic is NOT encrypted. A node
// refuses a peer of the other mode. Connections that have not finished
// their handshake are bounded in number and in frame size.
//
// Who may call what: every method from any thread. Destroy the Node before
// its ActorSystem (declare it after the system). Several Nodes (each on its
// own system) can live in one process.

#ifndef TROUPE_NET_NODE_H_
#define TROUPE_NET_NODE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "actors/ref.h"
#include "actors/wire.h"
#include "net/io/tls.h"
#include "net/wire/codec.h"

namespace troupe {

struct NodeOptions {
  // Unique within the cluster; names this node in logs and addresses.
  // Default: "<hostname>-<pid>". With TLS, the certificate must name it
  // (subjectAltName DNS:<name>).
  std::string name;
  // TLS 1.3 with certificates (net/io/tls.h), for nodes across hosts: this
  // node's certificate chain and key, and the CAs it accepts peers'
  // certificates from. Every link is encrypted, and each end checks that
  // the name the other claims is in its certificate. Empty: shared-secret
  // mode, plaintext, for loopback and development. A node refuses a peer of
  // the other mode (both ends log why). tools/make-certs makes the files.
  net::TlsCredentials tls;
  // How often the files in `tls` are checked for changes: a changed
  // certificate or key is loaded for new connections (links already up
  // keep theirs). Zero: only Node::ReloadTls.
  absl::Duration tls_reload_interval = absl::Seconds(2);
  // Shared by every node of the cluster; required without TLS (non-empty).
  // With TLS it is optional: if set, peers must know it as well.
  std::string cluster_secret;
  // The "host:port" other nodes reach this one by, carried in the Refs it
  // sends. Default: the address Listen bound. Set it when listening on
  // 0.0.0.0 (or behind NAT) and Refs must reach nodes that never connected
  // here: nodes that did connect route by this node's name anyway.
  std::string advertise_address;
  int io_threads = 1;
  // Every node sends a heartbeat on each connection every interval, and
  // closes a connection that brought nothing for the timeout: use the same
  // values across a cluster (a timeout shorter than a peer's interval drops
  // that peer).
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  absl::Duration handshake_timeout = absl::Seconds(5);
  // A TCP connect must complete within this; a dial into a silent network
  // is then retried rather than left waiting for the kernel's retries.
  absl::Duration connect_timeout = absl::Seconds(2);
  // A frame begun must be complete within this (a trickling peer).
  absl::Duration frame_timeout = absl::Seconds(10);
  // Redialling a lost link: the first retry after reconnect_min, then
  // doubling up to reconnect_max, each delay drawn from [d/2, d] (jitter).
  absl::Duration reconnect_min = absl::Milliseconds(50);
  absl::Duration reconnect_max = absl::Seconds(2);
  // A peer still unreachable this long after its link was lost is given up:
  // forgotten, no longer redialled; its Refs fail with Unavailable.
  absl::Duration reconnect_give_up = absl::Hours(1);
  size_t max_frame_bytes = size_t{16} << 20;
  size_t max_outbound_bytes = size_t{64} << 20;
  // Accepted connections that have not finished their handshake, in all
  // and from one source address; past either, the oldest is closed.
  size_t max_unauthenticated = 256;
  size_t max_unauthenticated_per_source = 64;
  // Cap'n Proto limits for each received message, checked while reading.
  int nesting_limit = 64;
  // The I/O thread that reads a message for an actor with nothing else to
  // do runs that actor's turn itself (InlineTurn, actors/system_core.h)
  // instead of waking a worker for it: a remote request then costs one
  // wake-up fewer. The turn is the actor's usual one (up to the system's
  // batch of messages; the rest go to the workers), but while it runs the
  // thread reads, writes and heartbeats none of its connections, so a
  // handler that blocks or computes for long delays them by as much: turn
  // this off for actors whose handlers block (or give such work to the
  // blocking pool, as handlers should anyway).
  bool io_thread_runs_actors = true;
};

// Delivered to subscribers (Node::Subscribe), in order for each peer.
//
// NodeUp: a link to the peer's `incarnation` came up. `reconnected`: the
// same incarnation was connected before (the link healed after a loss);
// false for a node first seen, or for a new incarnation (a restart; the
// old one then got a NodeDown first).
struct NodeUp {
  std::string node;
  std::string address;  // where it listens; empty if it does not
  uint64_t incarnation = 0;
  bool reconnected = false;
};
// NodeDown: the link to `incarnation` was lost (a crash, a hang past the
// heartbeat timeout, a partition), or that incarnation was replaced by a
// new one (a restart: `replaced`). Unless replaced, the peer may come back
// with a NodeUp(reconnected).
struct NodeDown {
  std::string node;
  std::string address;
  uint64_t incarnation = 0;
  absl::Status reason;
  bool replaced = false;
};
// NodeLeft: the peer shut down cleanly (it sent `leave`); it is forgotten.
struct NodeLeft {
  std::string node;
  std::string address;
  uint64_t incarnation = 0;
  std::string reason;
};

struct NodeStats {
  uint64_t connections = 0;        // open, handshake done
  uint64_t peers = 0;              // nodes known: connected, or unreachable and redialled
  uint64_t handshakes_failed = 0;  // wrong secret, version, settings, bad hello, timeout
  uint64_t unauthenticated_closed = 0;  // closed for the cap on unauthenticated connections
  uint64_t bad_frames = 0;         // connections closed for bad framing
  uint64_t unknown_targets = 0;    // messages for actors not (any more) here
  uint64_t unknown_types = 0;      // messages of types the target does not accept
  uint64_t undecodable = 0;        // messages whose payload did not decode
  uint64_t stale_incarnation = 0;  // messages for an earlier incarnation of this node
  // Sends not sent: the outbound bound reached, too large, the peer
  // unreachable, or refused at the sender (a type that cannot cross: see
  // the header comment).
  uint64_t rejected_sends = 0;
  uint64_t reconnects = 0;         // links that healed (NodeUp with reconnected)
  // TLS: connections refused for a certificate (this node's or the
  // peer's), an old TLS version, a peer of the other mode, a stalled TLS
  // handshake, or a name that is not in the peer's certificate (these are
  // counted in handshakes_failed too); and connections closed for TLS
  // records that failed their integrity check or were not TLS.
  uint64_t tls_refused = 0;
  uint64_t tls_errors = 0;
  uint64_t messages_in = 0, messages_out = 0;
};

// What a subscriber is told; see Subscribe.
struct NodeEvents {
  absl::AnyInvocable<void(NodeUp)> up;
  absl::AnyInvocable<void(NodeDown)> down;
  absl::AnyInvocable<void(NodeLeft)> left;
};

namespace internal {
class NodeState;
using RefCallback = absl::AnyInvocable<void(absl::StatusOr<ActorRef>) &&>;
using SpawnFactory = absl::AnyInvocable<absl::StatusOr<ActorRef>(WireReader* args)>;
}  // namespace internal

class Node {
 public:
  Node(ActorSystem& system, NodeOptions options);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Shutdown.
  ~Node();

  // Accepts connections on "host:port" (IPv4, or "[v6]:port"; port 0 picks
  // one). Returns the address bound. May be called once.
  absl::StatusOr<std::string> Listen(std::string_view address);

  // Makes `ref` findable by Lookup under `name` (replacing an earlier one).
  // The name is dropped when the actor stops.
  absl::Status Publish(std::string_view name, const ActorRef& ref);
  // Publishes the actor registered in this node's ActorSystem as `name`
  // (ActorSystem::registry()) under that name: the one registered now;
  // NotFound if none is. A supervised child keeps its Ref across restarts,
  // so it stays published through them.
  absl::Status PublishRegistered(std::string_view name);
  void Unpublish(std::string_view name);

  // The actor published as `name` on the node listening at `address`.
  // NotFound if there is none, FailedPrecondition if it is not an A,
  // Unavailable if the node cannot be reached.
  template <class A>
  Future<Ref<A>> Lookup(std::string_view address, std::string_view name, absl::Duration timeout = absl::Seconds(10)) {
    Promise<Ref<A>> promise;
    Future<Ref<A>> future = promise.GetFuture();
    LookupRef(address, name, internal::TypeName<A>(), timeout, TypedCallback<A>(std::move(promise)));
    return future;
  }

  // Lets other nodes spawn actors of type A here with SpawnOn: A is
  // constructed from a wire-type Args (or with no arguments: Args = void).
  template <class A, class Args = void>
  void AllowSpawn() {
    if constexpr (std::is_void_v<Args>) {
      RegisterSpawn(internal::TypeName<A>(), 0,
                    [this](WireReader*) -> absl::StatusOr<ActorRef> { return system_.Spawn<A>(); });
    } else {
      static_assert(WireMessage<Args>, "troupe: AllowSpawn's Args must be a wire type (a .capnp struct)");
      RegisterSpawn(internal::TypeName<A>(), WireTraits<Args>::kTypeId,
                    [this](WireReader* in) -> absl::StatusOr<ActorRef> {
                      absl::StatusOr<Args> args = WireTraits<Args>::Decode(*in);
                      if (!args.ok()) return args.status();
                      return system_.Spawn<A>(*std::move(args));
                    });
    }
  }

  // Spawns an A on the node listening at `address` (which must AllowSpawn
  // it) and returns a Ref to it.
  template <class A>
  Future<Ref<A>> SpawnOn(std::string_view address, absl::Duration timeout = absl::Seconds(10)) {
    Promise<Ref<A>> promise;
    Future<Ref<A>> future = promise.GetFuture();
    SpawnRef(address, internal::TypeName<A>(), 0, nullptr, nullptr, timeout, TypedCallback<A>(std::move(promise)));
    return future;
  }
  template <class A, class Args>
  Future<Ref<A>> SpawnOn(std::string_view address, const Args& args, absl::Duration timeout = absl::Seconds(10)) {
    static_assert(WireMessage<Args>, "troupe: SpawnOn's arguments must be a wire type (a .capnp struct)");
    Promise<Ref<A>> promise;
    Future<Ref<A>> future = promise.GetFuture();
    SpawnRef(address, internal::TypeName<A>(), WireTraits<Args>::kTypeId, &internal::EncodeErased<Args>, &args,
             timeout, TypedCallback<A>(std::move(promise)));
    return future;
  }

  // `subscriber` receives NodeUp, NodeDown and NodeLeft for every peer node
  // from now on; W handles all three.
  template <class W>
  void Subscribe(const Ref<W>& subscriber) {
    static_assert(internal::Handles<W, NodeUp> && internal::Handles<W, NodeDown> && internal::Handles<W, NodeLeft>,
                  "troupe: a subscriber of a Node handles NodeUp, NodeDown and NodeLeft");
    // Each event is made for this subscriber and moved into its mailbox: a
    // NodeDown's reason is shared with no other thread.
    AddSubscriber(subscriber, NodeEvents{
                                  .up = [subscriber](NodeUp e) { subscriber.Tell(std::move(e)); },
                                  .down = [subscriber](NodeDown e) { subscriber.Tell(std::move(e)); },
                                  .left = [subscriber](NodeLeft e) { subscriber.Tell(std::move(e)); },
                              });
  }

  // A future that completes once the send queue toward `target`'s node has
  // drained to half of max_outbound_bytes (at once if it is there already,
  // or if `target` is local); Unavailable if that node cannot be reached.
  // For a sender whose TryTell returned ResourceExhausted.
  Future<void> WaitForRoom(const ActorRef& target);

  // Leaves the cluster: tells every connected peer (they report NodeLeft
  // and fail their pending asks here saying this node left), closes every
  // connection after what is queued is written (up to a second), and stops
  // accepting. Pending asks through the connections fail with Unavailable
  // (the reason says the node shut down), later sends with Cancelled.
  // Idempotent.
  void Shutdown();

  // TLS: rereads the certificate, key and CA files now (as the periodic
  // check does when they change; e.g. from a SIGHUP handler's thread). New
  // connections use what loaded; on an error the credentials in use stay,
  // and the error names the file and the fault. FailedPrecondition without
  // TLS.
  absl::Status ReloadTls();

  // OK if the options can work: FailedPrecondition without TLS and without
  // a cluster secret, or the error that loading the TLS credentials met
  // (a file missing, a key that does not match, a certificate that does not
  // name this node or is expired). Listen, Lookup and SpawnOn return it.
  absl::Status ready() const;

  // Messages inside messages, for layers above net/ that carry a message
  // in one of their own (cluster/ routes entity messages through its shard
  // regions). EncodeNested gives the standalone Cap'n Proto encoding of a
  // wire-type value, its Refs written as addresses, as a send would; an
  // encoding error (InvalidArgument) names the type. Any node can decode
  // the bytes.
  absl::StatusOr<std::string> EncodeNested(uint64_t type_id, internal::EncodeFn encode, const void* value);
  // Decodes `bytes` as a message of `type_id` for `target`, a local actor,
  // and queues it as a send from another node would be: a tell, or an ask
  // whose reply goes to `route`. The errors of such a send: Unimplemented
  // for a type the actor does not accept, InvalidArgument for bytes that do
  // not decode, ResourceExhausted for a full bounded mailbox; `route` is
  // dropped unanswered then, and the caller reports the error.
  absl::Status DeliverNested(const ActorRef& target, uint64_t type_id, std::string_view bytes,
                             std::unique_ptr<internal::ReplyRoute> route);
  // Decodes EncodeNested's bytes of a T (void: nothing to decode).
  template <class T>
  absl::StatusOr<T> DecodeNested(std::string_view bytes) {
    std::optional<absl::StatusOr<T>> out;
    absl::Status s = DecodeNestedWith(bytes, [&out](WireReader& in) {
      out.emplace(WireTraits<T>::Decode(in));
      return out->status();
    });
    if (!s.ok()) return s;
    return *std::move(out);
  }

  const std::string& name() const;
  uint64_t incarnation() const;
  // The address Listen bound, or empty.
  std::string address() const;
  NodeStats stats() const;

 private:
  template <class A>
  static internal::RefCallback TypedCallback(Promise<Ref<A>> promise) {
    return [promise = std::move(promise)](absl::StatusOr<ActorRef> ref) mutable {
      if (ref.ok()) {
        promise.SetValue(Ref<A>::UncheckedCast(*std::move(ref)));
      } else {
        // Moved, not copied: TSan cannot see the reference count of a Status
        // shared across threads (Debian's Abseil is not instrumented).
        promise.SetError(std::move(ref).status());
      }
    };
  }

  void LookupRef(std::string_view address, std::string_view name, std::string_view actor_type,
                 absl::Duration timeout, internal::RefCallback done);
  void SpawnRef(std::string_view address, std::string_view actor_type, uint64_t args_type, internal::EncodeFn encode,
                const void* args, absl::Duration timeout, internal::RefCallback done);
  void RegisterSpawn(std::string_view actor_type, uint64_t args_type, internal::SpawnFactory factory);
  void AddSubscriber(const ActorRef& subscriber, NodeEvents events);
  absl::Status DecodeNestedWith(std::string_view bytes, absl::FunctionRef<absl::Status(WireReader&)> decode);

  ActorSystem& system_;
  std::shared_ptr<internal::NodeState> state_;
};

}  // namespace troupe

#endif  // TROUPE_NET_NODE_H_
