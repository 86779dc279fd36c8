// Node: makes the actors of one ActorSystem reachable from other processes
// and hosts, with the same Ref, Tell and Ask as local ones.
//
//   troupe::ActorSystem sys;
//   troupe::Node node(sys, {.name = "a", .cluster_secret = secret});
//   node.Listen("0.0.0.0:7000");
//   node.Publish("counter", sys.Spawn<Counter>());
//
//   // on another host
//   troupe::Node other(sys2, {.name = "b", .cluster_secret = secret});
//   troupe::Ref<Counter> c = other.Lookup<Counter>("10.0.0.2:7000", "counter").Wait().value();
//   c.Tell(Add{.by = 5});                       // Add comes from a .capnp schema
//   int64_t n = c.Ask(Get{}, absl::Seconds(1)).Wait().value();
//
// What crosses: message types generated from .capnp schemas (bazel/capnp.bzl,
// troupe_messages), to actor types that list them (`using Remote =
// troupe::Accepts<Add, Get>`, actors/wire.h). A Ref inside such a message
// stays usable on the receiving node and routes back to its actor.
//
// Connections: opened on first use (Lookup, SpawnOn, or a send through a
// Ref that came in a message), one per peer node, shared by every actor;
// both directions use the connection that exists. After a failure the next
// attempt waits a backoff (reconnect_min, doubling to reconnect_max); sends
// in the meantime fail at once with Unavailable. Per sender and receiver,
// messages arrive in send order while a connection lives; delivery is
// at-most-once.
//
// Failure: each connection sends a heartbeat every heartbeat_interval; a
// connection that receives nothing for heartbeat_timeout is closed. When a
// connection is lost, every pending ask through it fails at once with
// Unavailable, monitors of its actors get Down (Unavailable), and
// subscribers get NodeDown. Asks honour their deadline across nodes.
//
// Back-pressure: bytes queued for one connection are bounded
// (max_outbound_bytes); past the bound TryTell returns ResourceExhausted,
// Tell drops (both counted in stats().rejected_sends), Ask fails with
// ResourceExhausted. Nothing grows without bound.
//
// Bad input from the network (garbage, a truncated or oversized frame,
// malformed Cap'n Proto, an unknown message type, a wrong secret, a silent
// or trickling peer) closes that connection with one log line and a
// counter; other connections and actors are not disturbed. A message for
// an actor that does not exist (any more) is dropped and counted
// (unknown_targets); an ask for one fails with NotFound.
//
// Security: see docs/protocol.md. Peers prove knowledge of cluster_secret
// by HMAC challenge-response; traffic is NOT encrypted.
//
// Who may call what: every method from any thread. Destroy the Node before
// its ActorSystem (declare it after the system). Several Nodes (each on its
// own system) can live in one process.

#ifndef TROUPE_NET_NODE_H_
#define TROUPE_NET_NODE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "actors/ref.h"
#include "actors/wire.h"
#include "net/wire/codec.h"

namespace troupe {

struct NodeOptions {
  // Unique within the cluster; names this node in logs and addresses.
  // Default: "<hostname>-<pid>".
  std::string name;
  // Shared by every node of the cluster; required (non-empty).
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
  // A frame begun must be complete within this (a trickling peer).
  absl::Duration frame_timeout = absl::Seconds(10);
  absl::Duration reconnect_min = absl::Milliseconds(50);
  absl::Duration reconnect_max = absl::Seconds(5);
  size_t max_frame_bytes = size_t{16} << 20;
  size_t max_outbound_bytes = size_t{64} << 20;
  // Cap'n Proto limits for each received message, checked while reading.
  int nesting_limit = 64;
};

// Delivered to subscribers (Node::Subscribe) when a peer node's connection
// comes up, and when it goes down.
struct NodeUp {
  std::string node;
  std::string address;  // where it listens; empty if it does not
  uint64_t incarnation = 0;
};
struct NodeDown {
  std::string node;
  std::string address;
  absl::Status reason;
};

struct NodeStats {
  uint64_t connections = 0;        // open, handshake done
  uint64_t handshakes_failed = 0;  // wrong secret, version, bad hello, timeout
  uint64_t bad_frames = 0;         // connections closed for bad input
  uint64_t unknown_targets = 0;    // messages for actors not (any more) here
  uint64_t unknown_types = 0;      // messages of types the target does not accept
  uint64_t rejected_sends = 0;     // outbound bound reached or peer unreachable
  uint64_t messages_in = 0, messages_out = 0;
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

  // `subscriber` receives NodeUp and NodeDown for every peer node from now on.
  template <class W>
  void Subscribe(const Ref<W>& subscriber) {
    AddSubscriber(subscriber, [subscriber](const NodeUp& up) { subscriber.Tell(NodeUp(up)); },
                  [subscriber](const NodeDown& down) { subscriber.Tell(NodeDown(down)); });
  }

  // Closes every connection and stops accepting: pending asks through them
  // fail with Unavailable (the reason says the node shut down), later sends
  // with Cancelled. Idempotent.
  void Shutdown();

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
  void AddSubscriber(const ActorRef& subscriber, absl::AnyInvocable<void(const NodeUp&)> up,
                     absl::AnyInvocable<void(const NodeDown&)> down);

  ActorSystem& system_;
  std::shared_ptr<internal::NodeState> state_;
};

}  // namespace troupe

#endif  // TROUPE_NET_NODE_H_
