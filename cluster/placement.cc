#include "cluster/placement.h"

#include <algorithm>
#include <utility>

namespace troupe::cluster {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv1a(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// A 64-bit finalizer (the one of splitmix64): spreads FNV's low-entropy
// high bits, so shard and weight are well mixed.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

const std::string& Empty() {
  static const std::string* empty = new std::string();
  return *empty;
}

}  // namespace

uint32_t ShardOf(std::string_view key, uint32_t shards) {
  return static_cast<uint32_t>(Mix(Fnv1a(key)) % shards);
}

uint64_t RendezvousWeight(uint32_t shard, std::string_view member) {
  unsigned char s[4] = {static_cast<unsigned char>(shard), static_cast<unsigned char>(shard >> 8),
                        static_cast<unsigned char>(shard >> 16), static_cast<unsigned char>(shard >> 24)};
  const uint64_t h = Fnv1a(std::string_view(reinterpret_cast<const char*>(s), sizeof s));
  return Mix(Fnv1a(member, h));
}

namespace {

// Index of the winner among sorted, unique `members` (not empty).
size_t Winner(uint32_t shard, const std::vector<std::string>& members) {
  size_t best = 0;
  uint64_t best_weight = RendezvousWeight(shard, members[0]);
  for (size_t i = 1; i < members.size(); ++i) {
    const uint64_t w = RendezvousWeight(shard, members[i]);
    if (w > best_weight) {  // a tie keeps the lower name (sorted first)
      best = i;
      best_weight = w;
    }
  }
  return best;
}

std::vector<std::string> SortedUnique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

std::string OwnerOf(uint32_t shard, const std::vector<std::string>& members) {
  if (members.empty()) return "";
  const std::vector<std::string> sorted = SortedUnique(members);
  return sorted[Winner(shard, sorted)];
}

ShardTable::ShardTable(uint32_t shards, std::vector<std::string> members)
    : members_(SortedUnique(std::move(members))), owner_(shards, 0) {
  if (members_.empty()) return;
  for (uint32_t s = 0; s < shards; ++s) owner_[s] = static_cast<uint32_t>(Winner(s, members_));
}

const std::string& ShardTable::owner(uint32_t shard) const {
  return members_.empty() ? Empty() : members_[owner_[shard]];
}

std::vector<uint32_t> ShardTable::Moved(const ShardTable& next) const {
  std::vector<uint32_t> moved;
  const uint32_t n = std::min(shards(), next.shards());
  for (uint32_t s = 0; s < n; ++s) {
    if (owner(s) != next.owner(s)) moved.push_back(s);
  }
  return moved;
}

}  // namespace troupe::cluster
