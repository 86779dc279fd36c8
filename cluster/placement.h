// Placement: which shard a key belongs to, and which member owns a shard.
//
// A key maps to one of a fixed number of shards (the same number on every
// node); a shard maps to a member by rendezvous (highest-random-weight)
// hashing over the members that host: each member's weight for the shard
// is a hash of (shard, member name), and the highest weight owns it. Every
// node computes the same owner from the same member set, with no table to
// keep or agree on; when a member joins, only the shards it now wins move
// to it, and when one leaves, only its own shards move — each to the
// member with the next-highest weight. Names, not incarnations, are
// hashed, so a restarted node wins back the shards it had.
//
// The hashes are fixed (FNV-1a, then a 64-bit finalizer) and independent of
// the platform and of the process, so all nodes agree.
//
// Who may call what: pure functions and a value type; any thread.

#ifndef TROUPE_CLUSTER_PLACEMENT_H_
#define TROUPE_CLUSTER_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::cluster {

// The shard of `key` among `shards` (> 0).
uint32_t ShardOf(std::string_view key, uint32_t shards);

// The weight of `member` for `shard`: the owner is the member with the
// highest weight (ties, which need equal 64-bit hashes, go to the lower
// name).
uint64_t RendezvousWeight(uint32_t shard, std::string_view member);

// The owner of `shard` among `members` (names, in any order); empty if
// there are none.
std::string OwnerOf(uint32_t shard, const std::vector<std::string>& members);

// Owners of every shard for one member set.
class ShardTable {
 public:
  ShardTable(uint32_t shards, std::vector<std::string> members);

  uint32_t shards() const { return static_cast<uint32_t>(owner_.size()); }
  const std::vector<std::string>& members() const { return members_; }
  // The owner of `shard` (< shards()), or empty if there are no members.
  const std::string& owner(uint32_t shard) const;
  // The shards whose owner differs between this table and `next` (the same
  // number of shards), in increasing order.
  std::vector<uint32_t> Moved(const ShardTable& next) const;

 private:
  std::vector<std::string> members_;  // sorted, unique
  std::vector<uint32_t> owner_;       // index into members_; unused if members_ is empty
};

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_PLACEMENT_H_
