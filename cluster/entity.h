// Sharded entities (virtual actors): an actor per key, somewhere in the
// cluster, reached by key.
//
//   struct Counter : troupe::Actor<Counter> {
//     using Remote = troupe::Accepts<Add, Get>;     // wire types: they may cross nodes
//     explicit Counter(const std::string& key);     // or no arguments, or its own
//                                                   // handle: const EntityRef<Counter>&
//     void On(const Add& m);
//     int64_t On(const Get&);
//     void OnStop(const absl::Status&);             // save state: the entity may move
//   };
//
//   cluster.StartEntities<Counter>({.shards = 128});        // on every node
//   troupe::cluster::EntityRef<Counter> c = cluster.Entity<Counter>("user-42");
//   c.Tell(Add{.by = 1});
//   troupe::Future<int64_t> v = c.Ask(Get{}, absl::Seconds(2));
//
// A key belongs to one of a fixed number of shards (ShardOf), and a shard
// to one member: the highest rendezvous weight among the members up
// (cluster/placement.h). The entity is activated on that member by its
// first message, constructed from its key, and stopped when idle
// (EntityOptions::passivate_after), when its shard moves, or when its node
// stops hosting. Its handle stays valid through all of that, and through
// restarts: an entity whose handler throws is restarted in place, its
// queued messages kept (max_restarts within restart_within; past that it
// is stopped and its next message starts a fresh one). An entity that
// calls Stop() itself ends its activation: messages already queued to it
// are dead letters, later ones activate it again.
//
// Guarantees, with docs/cluster.md saying where they stop holding:
//   - with a stable membership, each key has at most one activation;
//   - in a planned join or leave no message is lost and each sender's
//     messages arrive in the order sent (the shard region's handoff,
//     cluster/shard_region.h); messages held meanwhile are bounded
//     (buffer_limit) and counted when dropped;
//   - when a member fails, its shards start on the survivors with their
//     next message, once the membership reports it down; asks in flight to
//     it fail with Unavailable;
//   - a node without a majority hosts nothing: its entities stop and asks
//     through it fail with Unavailable.
// An entity's state is its own to keep: what OnStop saves, the next
// activation loads. Nothing is replicated for it. An entity built from its
// own handle can also carry its state along: what it sends to itself from
// OnStop while its shard moves is forwarded with the shard's messages and
// reaches its next activation on the new owner (an idle timeout or a node
// that stops hosting has no new owner: keep passivate_after zero for such
// an entity, and what a node that stops hosting sends is dropped).
//
// Who may call what: an EntityRef is a value; copy it and use it from any
// thread, like a Ref.

#ifndef TROUPE_CLUSTER_ENTITY_H_
#define TROUPE_CLUSTER_ENTITY_H_

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/system_core.h"
#include "cluster/shard_region.h"
#include "net/node.h"

namespace troupe::cluster {

template <class E>
class EntityRef;

namespace internal {

// True if E may be an entity type and M one of its messages; otherwise a
// compile error in troupe's words, and false.
template <class E, class M>
constexpr bool CheckEntityMessage() {
  constexpr bool kWire = WireMessage<M>;
  constexpr bool kListed = troupe::internal::AcceptsRemotely<E, M>();
  static_assert(kWire,
                "troupe: a message to an entity must be a message of a .capnp schema (troupe_messages), since an "
                "entity may live on another node");
  static_assert(!kWire || kListed,
                "troupe: the entity type E does not list the message type M in `using Remote = "
                "troupe::Accepts<...>`: an entity may live on another node, so it takes its messages from there");
  return kWire && kListed;
}

// Spawns E's entity `key` (in shard `shard`) as a supervised child of its
// region: restarts build the next instance the same way.
template <class E>
ActorRef SpawnEntity(troupe::internal::ActorCell* parent, const std::string& key, uint32_t shard) {
  constexpr bool kFromSelf = std::is_constructible_v<E, const EntityRef<E>&>;
  constexpr bool kFromKey = std::is_constructible_v<E, const std::string&>;
  static_assert(kFromSelf || kFromKey || std::is_default_constructible_v<E>,
                "troupe: an entity type is constructed from its own handle (const troupe::cluster::EntityRef<E>&), "
                "from its key (const std::string&) or with no arguments");
  troupe::internal::SpawnOptions options;
  if constexpr (kFromSelf) {
    parent->Retain();
    EntityRef<E> self(Ref<ShardRegion>::UncheckedCast(ActorRef::Adopt(parent)), key, shard);
    options.rebuild = [self](troupe::internal::ActorCell& cell) {
      static_cast<troupe::internal::ActorBox<E>&>(cell).Construct(self);
    };
    return troupe::internal::SpawnIn<E>(parent->core(), parent, &options, self);
  } else if constexpr (kFromKey) {
    options.rebuild = [key](troupe::internal::ActorCell& cell) {
      static_cast<troupe::internal::ActorBox<E>&>(cell).Construct(key);
    };
    return troupe::internal::SpawnIn<E>(parent->core(), parent, &options, key);
  } else {
    options.rebuild = [](troupe::internal::ActorCell& cell) {
      static_cast<troupe::internal::ActorBox<E>&>(cell).Construct();
    };
    return troupe::internal::SpawnIn<E>(parent->core(), parent, &options);
  }
}

// Puts `msg`, encoded, into `envelope`.
template <class M>
absl::Status EncodeInto(Node& node, const M& msg, wire::EntityEnvelope& envelope) {
  absl::StatusOr<std::string> bytes = node.EncodeNested(WireTraits<M>::kTypeId, &troupe::internal::EncodeErased<M>, &msg);
  if (!bytes.ok()) return std::move(bytes).status();
  envelope.type_id = WireTraits<M>::kTypeId;
  envelope.payload = *std::move(bytes);
  return absl::OkStatus();
}

template <class E, class M>
class TypedTell final : public Routed {
 public:
  template <class T>
  TypedTell(std::string key, uint32_t shard, T&& msg) : Routed(std::move(key), shard), msg_(std::forward<T>(msg)) {}

  bool is_ask() const override { return false; }
  void DeliverLocal(Node&, const ActorRef& entity) override { Ref<E>::UncheckedCast(entity).Tell(std::move(msg_)); }
  absl::Status SendRemote(Node& node, const Ref<ShardRegion>& region, wire::EntityEnvelope envelope) override {
    if (absl::Status s = EncodeInto(node, msg_, envelope); !s.ok()) return s;
    region.Tell(std::move(envelope));
    return absl::OkStatus();
  }
  void Fail(absl::Status) override {}

 private:
  M msg_;
};

template <class E, class M, class R>
class TypedAsk final : public Routed {
 public:
  template <class T>
  TypedAsk(std::string key, uint32_t shard, T&& msg, Promise<R> promise, absl::Time deadline)
      : Routed(std::move(key), shard), msg_(std::forward<T>(msg)), promise_(std::move(promise)), deadline_(deadline) {}

  bool is_ask() const override { return true; }
  void DeliverLocal(Node&, const ActorRef& entity) override {
    Ref<E>::UncheckedCast(entity).Ask(std::move(msg_)).OnCompleteInline(
        [promise = std::move(promise_)](Result<R>&& r) mutable { promise.Complete(std::move(r)); });
  }
  absl::Status SendRemote(Node& node, const Ref<ShardRegion>& region, wire::EntityEnvelope envelope) override {
    if (absl::Status s = EncodeInto(node, msg_, envelope); !s.ok()) return s;
    // The remote ask ends by the handle's deadline too, so that the node
    // forgets it.
    const absl::Duration left =
        deadline_ == absl::InfiniteFuture() ? absl::InfiniteDuration() : std::max(deadline_ - absl::Now(), absl::ZeroDuration());
    region.Ask(wire::EntityAsk{.envelope = std::move(envelope)}, left)
        .OnCompleteInline([promise = std::move(promise_), node = &node](Result<wire::EntityReply>&& r) mutable {
          if (!r.ok()) {
            promise.SetError(std::move(r).status());
          } else if constexpr (std::is_void_v<R>) {
            promise.SetValue();
          } else if (r->type_id != WireTraits<R>::kTypeId) {
            promise.SetError(absl::InternalError(absl::StrCat("the entity replied type id ", r->type_id, ", not ",
                                                              std::string(WireTraits<R>::kName))));
          } else {
            absl::StatusOr<R> value = node->DecodeNested<R>(r->payload);
            if (value.ok()) {
              promise.SetValue(*std::move(value));
            } else {
              promise.SetError(std::move(value).status());
            }
          }
        });
    return absl::OkStatus();
  }
  void Fail(absl::Status status) override { promise_.SetError(std::move(status)); }

 private:
  M msg_;
  Promise<R> promise_;
  absl::Time deadline_;
};

}  // namespace internal

// A handle to the entity of type E with one key: Tell and Ask as through
// a Ref<E>, wherever the entity is. See the header comment.
template <class E>
class EntityRef {
 public:
  EntityRef() = default;
  EntityRef(Ref<internal::ShardRegion> region, std::string key, uint32_t shard)
      : region_(std::move(region)), key_(std::move(key)), shard_(shard) {}

  // False for a handle of a type this node runs no region of
  // (Cluster::StartEntities): its sends fail as those of an empty Ref.
  bool valid() const { return static_cast<bool>(region_); }
  const std::string& key() const { return key_; }
  uint32_t shard() const { return shard_; }

  template <class M>
  void Tell(M&& msg) const {
    using Msg = std::remove_cvref_t<M>;
    if constexpr (internal::CheckEntityMessage<E, Msg>()) {
      region_.Tell(internal::RouteMessage{
          std::make_unique<internal::TypedTell<E, Msg>>(key_, shard_, std::forward<M>(msg))});
    }
  }

  // Ends exactly once: the entity's reply or error, DeadlineExceeded after
  // `timeout`, Unavailable if it cannot be reached (its member failed, or
  // no member hosts), ResourceExhausted if too many messages were held for
  // it, Cancelled at shutdown.
  template <class M>
  Future<troupe::internal::AskReplyOf<E, std::remove_cvref_t<M>>> Ask(
      M&& msg, absl::Duration timeout = absl::InfiniteDuration()) const {
    using Msg = std::remove_cvref_t<M>;
    using R = troupe::internal::AskReplyOf<E, Msg>;
    Promise<R> promise;
    Future<R> future = promise.GetFuture();
    if constexpr (internal::CheckEntityMessage<E, Msg>()) {
      static_assert(WireReplyType<R>,
                    "troupe: the entity's handler of this message replies a type that cannot cross nodes: reply "
                    "void, a wire type or a built-in scalar");
      if (!region_) {
        promise.SetError(absl::FailedPreconditionError(
            absl::StrCat("Ask on an empty EntityRef (is Cluster::StartEntities<", std::string(troupe::internal::TypeName<E>()),
                         "> called on this node?)")));
        return future;
      }
      absl::Time deadline = absl::InfiniteFuture();
      if (timeout != absl::InfiniteDuration()) {
        deadline = absl::Now() + timeout;
        ArmDeadline(promise, timeout);
      }
      region_.Tell(internal::RouteMessage{std::make_unique<internal::TypedAsk<E, Msg, R>>(
          key_, shard_, std::forward<M>(msg), std::move(promise), deadline)});
    }
    return future;
  }

 private:
  template <class R>
  void ArmDeadline(Promise<R>& promise, absl::Duration timeout) const {
    const std::shared_ptr<TimerService>& timers = region_.cell()->core().shared_timers();
    TimerId timer = timers->Schedule(timers->Now() + timeout, [expiry = promise.Share(), key = key_, timeout]() mutable {
      expiry.SetError(absl::DeadlineExceededError(
          absl::StrCat("ask to entity '", key, "' got no reply within ", absl::FormatDuration(timeout))));
    });
    if (timer) promise.SetCanceller([timers, timer] { timers->Cancel(timer); });
  }

  Ref<internal::ShardRegion> region_;
  std::string key_;
  uint32_t shard_ = 0;
};

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_ENTITY_H_
