// RefTable: the Node's RefCodec — how Refs cross the wire. A local actor
// whose address leaves this node is exported (findable by id for frames
// that target it, watched by the node's agent so that it is forgotten when
// it stops); an address of another node's actor becomes a proxy
// (RemoteActor), one per (node, incarnation, actor) while any Ref holds it.
// Also keeps which peers monitor which exported actors, one entry per
// (actor, peer) however often a peer asks, dropped with the peer. Part of
// a Node (net/node_state.h).
//
// Who may call what: any thread. exports_mu_ and proxies_mu_ are leaves.

#ifndef TROUPE_NET_REF_TABLE_H_
#define TROUPE_NET_REF_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "actors/actor_system.h"
#include "actors/wire.h"
#include "net/peer.h"
#include "net/wire/codec.h"

namespace troupe::internal {

class RemoteActor;

// The last target a connection's sends went to: most streams of messages
// go to one actor, and this skips the exports table's lock for them. Valid
// while the exports generation is unchanged (nothing was unexported).
struct ExportCache {
  uint64_t generation = 0;
  ActorId id = 0;
  ActorRef ref;
};

class RefTable final : public RefCodec {
 public:
  explicit RefTable(NodeState& node) : node_(node) {}

  // RefCodec.
  absl::Status Encode(const ActorRef& ref, wire::ActorAddress::Builder out) override;
  absl::StatusOr<ActorRef> Decode(wire::ActorAddress::Reader in, std::string_view actor_type) override;

  // The exported actor `id`, or an empty Ref; `cache` saves the lock for
  // repeated lookups of one id.
  ActorRef Find(ActorId id);
  const ActorRef& Find(ActorId id, ExportCache& cache);
  // `peer` asks to hear when exported actor `id` stops: nullopt once it
  // will, or the reason to send it at once — the exit reason of an actor
  // whose stop is being reported right now (Stopping to Forget), NotFound
  // for an id that is not exported. Asking twice changes nothing.
  std::optional<absl::Status> AddWatcher(ActorId id, const std::shared_ptr<Peer>& peer);
  // The down a watch of `id` gets when no such actor is exported here.
  absl::Status NotExported(ActorId id) const;
  // Exported actor `id` stopped with `reason`: it is no longer found, and
  // the watchers are returned; until Forget(id), a late watcher is given
  // `reason` too, so it cannot overtake the watchers' Downs with a
  // different one.
  std::vector<std::shared_ptr<Peer>> Stopping(ActorId id, const absl::Status& reason);
  void Forget(ActorId id);
  // `peer` is lost, replaced or gone: it watches nothing any more.
  void ForgetWatcher(const Peer* peer);
  // A proxy's last reference went.
  void ForgetProxy(const RemoteActor* proxy);
  void Clear();

 private:
  struct Export {
    ActorRef ref;  // empty once stopping
    absl::flat_hash_map<const Peer*, std::weak_ptr<Peer>> watchers;
    absl::Status exit_reason;  // once stopping
  };
  ActorRef ProxyFor(const std::shared_ptr<Peer>& peer, std::string_view node, uint64_t incarnation, uint64_t actor);

  NodeState& node_;
  mutable std::mutex exports_mu_;
  absl::flat_hash_map<ActorId, Export> exports_ ABSL_GUARDED_BY(exports_mu_);
  // Bumped (release, under exports_mu_) each time an export is removed;
  // read (acquire) by Find with a cache, so a cached Ref is dropped once its
  // actor has been unexported.
  std::atomic<uint64_t> generation_{1};
  std::mutex proxies_mu_;
  // Proxies by (node, incarnation, actor), without holding them.
  absl::flat_hash_map<std::tuple<std::string, uint64_t, uint64_t>, RemoteActor*> proxies_ ABSL_GUARDED_BY(proxies_mu_);
};

class RemoteActor final : public RemoteCell {
 public:
  RemoteActor(std::shared_ptr<NodeState> node, std::shared_ptr<Peer> peer, std::string node_name, uint64_t incarnation,
              uint64_t actor);

  absl::Status SendRemote(RemoteSend& send) noexcept override;
  void RefusedAtSender(const absl::Status& error) noexcept override;
  void StopRemote(absl::Status reason) noexcept override;
  void WatchRemote(ActorCell* watcher, DownFactory make_down) noexcept override;
  void UnwatchRemote(ActorCell* watcher, uint64_t monitor) noexcept override;
  void LinkRemote(ActorCell* from) noexcept override;
  void UnlinkRemote(ActorCell* from) noexcept override;
  void ExitRemote(ActorCell* from) noexcept override;
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

}  // namespace troupe::internal

#endif  // TROUPE_NET_REF_TABLE_H_
