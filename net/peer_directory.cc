#include "net/peer_directory.h"

#include <utility>

#include "absl/container/flat_hash_set.h"

namespace troupe::internal {

std::shared_ptr<Peer> PeerDirectory::ForAddress(std::string_view address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& peer = by_address_[std::string(address)];
  if (peer == nullptr) peer = std::make_shared<Peer>(node_, std::string(address));
  return peer;
}

std::shared_ptr<Peer> PeerDirectory::ForRefAddress(std::string_view address) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key(address);
  if (auto it = by_address_.find(key); it != by_address_.end()) return it->second;
  std::weak_ptr<Peer>& weak = by_ref_address_[key];
  std::shared_ptr<Peer> peer = weak.lock();
  if (peer == nullptr) {
    peer = std::make_shared<Peer>(node_, key);
    weak = peer;
  }
  if (by_ref_address_.size() > 2 * swept_size_ + 16) {
    absl::erase_if(by_ref_address_, [](const auto& entry) { return entry.second.expired(); });
    swept_size_ = by_ref_address_.size();
  }
  return peer;
}

std::shared_ptr<Peer> PeerDirectory::ForName(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(std::string(name));
  return it != by_name_.end() ? it->second : nullptr;
}

std::shared_ptr<Peer> PeerDirectory::Named(std::string_view name, std::string_view address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& by_name = by_name_[std::string(name)];
  if (by_name != nullptr) return by_name;
  if (!address.empty()) {
    // A peer dialled at that address and not yet named is this node's.
    std::shared_ptr<Peer>& by_address = by_address_[std::string(address)];
    if (by_address == nullptr) by_address = std::make_shared<Peer>(node_, std::string(address));
    by_name = by_address;
  } else {
    by_name = std::make_shared<Peer>(node_, "");
  }
  return by_name;
}

std::shared_ptr<Peer> PeerDirectory::BindDialled(std::string_view name, const std::shared_ptr<Peer>& dialled) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& by_name = by_name_[std::string(name)];
  if (by_name == nullptr) by_name = dialled;
  return by_name;
}

void PeerDirectory::BindAddress(std::string_view address, const std::shared_ptr<Peer>& peer) {
  if (address.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  by_address_[std::string(address)] = peer;
}

void PeerDirectory::Forget(const Peer& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::erase_if(by_address_, [&](const auto& entry) { return entry.second.get() == &peer; });
  absl::erase_if(by_name_, [&](const auto& entry) { return entry.second.get() == &peer; });
  absl::erase_if(by_ref_address_, [&](const auto& entry) {
    std::shared_ptr<Peer> held = entry.second.lock();
    return held == nullptr || held.get() == &peer;
  });
  swept_size_ = by_ref_address_.size();
}

std::vector<std::shared_ptr<Peer>> PeerDirectory::TakeAll() {
  absl::flat_hash_map<std::string, std::shared_ptr<Peer>> by_address, by_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_address.swap(by_address_);
    by_name.swap(by_name_);
    for (auto& [address, weak] : by_ref_address_) {
      if (std::shared_ptr<Peer> peer = weak.lock()) by_address.emplace(address, std::move(peer));
    }
    by_ref_address_.clear();
  }
  absl::flat_hash_set<Peer*> seen;
  std::vector<std::shared_ptr<Peer>> all;
  for (auto* map : {&by_name, &by_address}) {
    for (auto& [key, peer] : *map) {
      if (seen.insert(peer.get()).second) all.push_back(std::move(peer));
    }
  }
  return all;
}

size_t PeerDirectory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size();
}

}  // namespace troupe::internal
