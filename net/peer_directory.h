// PeerDirectory: finds the Peer (net/peer.h) for a dial address or a node
// name, keeps one canonical Peer per node name, and forgets peers that left
// or were given up, so that it holds only nodes worth knowing. Part of a
// Node (net/node_state.h).
//
// Who may call what: any thread; mu_ is a leaf lock (no Peer method is
// called under it).

#ifndef TROUPE_NET_PEER_DIRECTORY_H_
#define TROUPE_NET_PEER_DIRECTORY_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "net/peer.h"

namespace troupe::internal {

class PeerDirectory {
 public:
  PeerDirectory() = default;
  // Before first use: the node the Peers belong to.
  void set_node(std::weak_ptr<NodeState> node) { node_ = std::move(node); }

  // The peer dialled at `address`, made on first use.
  std::shared_ptr<Peer> ForAddress(std::string_view address);
  // The peer for a Ref whose node is not known by name yet, reached at
  // `address`: the one dialled there if any, else one the directory keeps
  // only while some proxy holds it (a Ref that is never used leaves
  // nothing behind). Named once its first connection's handshake is done.
  std::shared_ptr<Peer> ForRefAddress(std::string_view address);
  // The canonical peer of node `name`, or null.
  std::shared_ptr<Peer> ForName(std::string_view name);
  // The canonical peer of node `name`, made on first use (an inbound
  // connection, or a Ref naming a node reached at `address`).
  std::shared_ptr<Peer> Named(std::string_view name, std::string_view address);
  // A handshake on a connection to `dialled` named the node `name`: the
  // canonical peer (`dialled` itself if the node had none).
  std::shared_ptr<Peer> BindDialled(std::string_view name, const std::shared_ptr<Peer>& dialled);
  // `peer` listens at `address`: dials of that address reach it.
  void BindAddress(std::string_view address, const std::shared_ptr<Peer>& peer);
  // Drops every entry that leads to `peer`.
  void Forget(const Peer& peer);
  // Every distinct peer, emptying the directory (shutdown).
  std::vector<std::shared_ptr<Peer>> TakeAll();
  // Canonical peers known.
  size_t size() const;

 private:
  std::weak_ptr<NodeState> node_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Peer>> by_address_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Peer>> by_name_ ABSL_GUARDED_BY(mu_);
  // ForRefAddress's peers, held by their proxies only; expired entries are
  // swept whenever the map has doubled since the last sweep.
  absl::flat_hash_map<std::string, std::weak_ptr<Peer>> by_ref_address_ ABSL_GUARDED_BY(mu_);
  size_t swept_size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace troupe::internal

#endif  // TROUPE_NET_PEER_DIRECTORY_H_
