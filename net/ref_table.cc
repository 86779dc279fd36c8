#include "net/ref_table.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "net/node_state.h"

namespace troupe::internal {

absl::Status RefTable::Encode(const ActorRef& ref, wire::ActorAddress::Builder out) {
  if (ref.is_remote()) {
    auto* proxy = static_cast<RemoteActor*>(ref.cell());
    out.setNode(proxy->node_name());
    out.setIncarnation(proxy->remote_incarnation());
    out.setActor(proxy->remote_id());
    out.setAddress(proxy->peer()->address());
    return absl::OkStatus();
  }
  if (&ref.cell()->core() != &node_.system().core()) {
    return absl::InvalidArgumentError("a Ref of another ActorSystem cannot travel through this node");
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(exports_mu_);
    auto [it, inserted] = exports_.try_emplace(ref.id());
    if (inserted) {
      it->second.ref = ref;
      first = true;
    }
  }
  if (first) node_.WatchExport(ref);
  out.setNode(node_.name());
  out.setIncarnation(node_.incarnation());
  out.setActor(ref.id());
  out.setAddress(node_.listen_address());
  return absl::OkStatus();
}

absl::StatusOr<ActorRef> RefTable::Decode(wire::ActorAddress::Reader in, std::string_view actor_type) {
  const std::string node = in.getNode().cStr();
  const uint64_t incarnation = in.getIncarnation();
  const uint64_t actor = in.getActor();
  if (node == node_.name()) {
    if (incarnation != node_.incarnation()) {
      return absl::NotFoundError(absl::StrCat("actor ", actor, " belonged to an earlier start of this node"));
    }
    ActorRef ref = Find(actor);
    if (!ref) return absl::NotFoundError(absl::StrCat("actor ", actor, " of this node has stopped"));
    if (!actor_type.empty() && ref.cell()->type_name() != actor_type) {
      return absl::FailedPreconditionError(absl::StrCat("actor ", actor, " is a ", std::string(ref.cell()->type_name()),
                                                        ", not a ", std::string(actor_type)));
    }
    return ref;
  }
  std::shared_ptr<Peer> peer = node_.directory().ForName(node);
  if (peer == nullptr) {
    const std::string address = in.getAddress().cStr();
    if (address.empty()) {
      return absl::UnavailableError(absl::StrCat("node ", node, " does not listen and is not connected"));
    }
    peer = node_.directory().ForRefAddress(address);
  }
  return ProxyFor(peer, node, incarnation, actor);
}

ActorRef RefTable::Find(ActorId id) {
  std::lock_guard<std::mutex> lock(exports_mu_);
  auto it = exports_.find(id);
  return it != exports_.end() ? it->second.ref : ActorRef();
}

const ActorRef& RefTable::Find(ActorId id, ExportCache& cache) {
  const uint64_t generation = generation_.load(std::memory_order_acquire);  // pairs with Stopping's release
  if (cache.id != id || cache.generation != generation || !cache.ref) {
    cache.ref = Find(id);
    cache.id = id;
    cache.generation = generation;
  }
  return cache.ref;
}

std::optional<absl::Status> RefTable::AddWatcher(ActorId id, const std::shared_ptr<Peer>& peer) {
  std::lock_guard<std::mutex> lock(exports_mu_);
  auto it = exports_.find(id);
  if (it == exports_.end()) return NotExported(id);
  if (!it->second.ref) return it->second.exit_reason;
  it->second.watchers.try_emplace(peer.get(), peer);
  return std::nullopt;
}

absl::Status RefTable::NotExported(ActorId id) const {
  return absl::NotFoundError(absl::StrCat("actor ", id, " is not on node ", node_.name()));
}

std::vector<std::shared_ptr<Peer>> RefTable::Stopping(ActorId id, const absl::Status& reason) {
  std::vector<std::shared_ptr<Peer>> watchers;
  ActorRef ref;  // released after the lock
  std::lock_guard<std::mutex> lock(exports_mu_);
  auto it = exports_.find(id);
  if (it == exports_.end() || !it->second.ref) return watchers;
  for (auto& [key, weak] : it->second.watchers) {
    if (std::shared_ptr<Peer> peer = weak.lock()) watchers.push_back(std::move(peer));
  }
  it->second.watchers.clear();
  ref = std::move(it->second.ref);
  it->second.exit_reason = reason;
  generation_.fetch_add(1, std::memory_order_release);  // pairs with Find's acquire
  return watchers;
}

void RefTable::Forget(ActorId id) {
  std::lock_guard<std::mutex> lock(exports_mu_);
  auto it = exports_.find(id);
  if (it != exports_.end() && !it->second.ref) exports_.erase(it);
}

void RefTable::ForgetWatcher(const Peer* peer) {
  std::lock_guard<std::mutex> lock(exports_mu_);
  for (auto& [id, e] : exports_) e.watchers.erase(peer);
}

ActorRef RefTable::ProxyFor(const std::shared_ptr<Peer>& peer, std::string_view node, uint64_t incarnation,
                            uint64_t actor) {
  std::lock_guard<std::mutex> lock(proxies_mu_);
  auto key = std::make_tuple(std::string(node), incarnation, actor);
  RemoteActor*& slot = proxies_[key];
  if (slot != nullptr && slot->TryRetain()) return ActorRef::Adopt(slot);
  slot = new RemoteActor(node_.shared_from_this(), peer, std::string(node), incarnation, actor);
  return ActorRef::Adopt(slot);
}

void RefTable::ForgetProxy(const RemoteActor* proxy) {
  std::lock_guard<std::mutex> lock(proxies_mu_);
  auto it = proxies_.find(std::make_tuple(proxy->node_name(), proxy->remote_incarnation(), proxy->remote_id()));
  if (it != proxies_.end() && it->second == proxy) proxies_.erase(it);
}

void RefTable::Clear() {
  absl::flat_hash_map<ActorId, Export> exports;
  {
    std::lock_guard<std::mutex> lock(exports_mu_);
    exports.swap(exports_);
    generation_.fetch_add(1, std::memory_order_release);
  }
}

RemoteActor::RemoteActor(std::shared_ptr<NodeState> node, std::shared_ptr<Peer> peer, std::string node_name,
                         uint64_t incarnation, uint64_t actor)
    : RemoteCell(&node->system().core()),
      node_(std::move(node)),
      peer_(std::move(peer)),
      node_name_(std::move(node_name)),
      incarnation_(incarnation),
      actor_(actor) {}

RemoteActor::~RemoteActor() { node_->refs().ForgetProxy(this); }

absl::Status RemoteActor::SendRemote(RemoteSend& send) noexcept {
  return node_->SendTo(*peer_, incarnation_, actor_, send);
}

void RemoteActor::RefusedAtSender(const absl::Status& error) noexcept { node_->RefusedAtSender(node_name_, error); }

void RemoteActor::StopRemote(absl::Status reason) noexcept { node_->StopRemote(*peer_, incarnation_, actor_, reason); }

void RemoteActor::WatchRemote(ActorCell* watcher, DownFactory make_down) noexcept {
  peer_->Watch(actor_, incarnation_, watcher, make_down, this);
}

void RemoteActor::UnwatchRemote(ActorCell* watcher, uint64_t monitor) noexcept {
  peer_->Unwatch(actor_, watcher, monitor);
}

void RemoteActor::LinkRemote(ActorCell* from) noexcept {
  // Our half: the remote actor's stop (or the link's loss) is `from`'s
  // exit. Theirs: the link frame makes the target link a proxy of `from`
  // and watch it.
  peer_->Watch(actor_, incarnation_, from, ActorCell::kLinkExit, this);
  from->Retain();
  node_->SendLink(*peer_, incarnation_, actor_, ActorRef::Adopt(from), /*link=*/true);
}

void RemoteActor::UnlinkRemote(ActorCell* from) noexcept {
  peer_->Unwatch(actor_, from, ActorCell::kLinkExit.monitor);
  from->Retain();
  node_->SendLink(*peer_, incarnation_, actor_, ActorRef::Adopt(from), /*link=*/false);
}

void RemoteActor::ExitRemote(ActorCell* from) noexcept { peer_->Unwatch(actor_, from, ActorCell::kLinkExit.monitor); }

}  // namespace troupe::internal
