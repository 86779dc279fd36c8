// Where the counter service keeps its counts when they must outlive the
// node that holds them (examples/counter_service.cc with --cluster=etcd://):
// one etcd key per counter, written by compare and swap.
//
// A stored counter is its count and the tags of the writes that made it
// (the last kKeptTags): a Counter tags each write with its activation and
// a sequence number, so that after a write whose outcome it did not learn
// (a timeout, etcd restarting) it can read the key and tell whether the
// write was applied, and neither lose nor repeat it. Every write is
// conditional on the revision the writer last read, so two activations of
// one key (a partition, a view that lags) cannot overwrite each other:
// the loser reads again and adds its increments to what is there.
//
// Who may call what: the calls block (they wait for etcd) and may run on
// any thread at once; an actor runs them on the blocking pool.

#ifndef TROUPE_EXAMPLES_COUNTER_STORE_H_
#define TROUPE_EXAMPLES_COUNTER_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace counter {

inline constexpr size_t kKeptTags = 32;

struct Stored {
  int64_t count = 0;
  int64_t revision = 0;           // the key's revision; 0: it does not exist
  std::vector<std::string> tags;  // the last writes, oldest first
};

// "<count> <tag> <tag> ...": what a key holds.
std::string EncodeStored(const Stored& s);
// InvalidArgument naming what is wrong if `value` is not EncodeStored's.
absl::StatusOr<Stored> DecodeStored(const std::string& value, int64_t revision);

struct Saved {
  bool written = false;
  Stored current;  // written: what was written; else what the key holds now
};

class CounterStore {
 public:
  virtual ~CounterStore() = default;
  virtual absl::StatusOr<Stored> Load(const std::string& key) = 0;
  // Writes `next` if the key's revision is still `expected` (0: if it
  // does not exist).
  virtual absl::StatusOr<Saved> Save(const std::string& key, const Stored& next, int64_t expected) = 0;
  // Where it keeps the counts, for messages.
  virtual std::string where() const = 0;
};

// Counts in the etcd at `endpoint`, under /troupe/<cluster>/counters/;
// each call waits at most `timeout`.
std::shared_ptr<CounterStore> EtcdCounterStore(const std::string& endpoint, const std::string& cluster,
                                               absl::Duration timeout = absl::Seconds(2));

// The store of this process's Counters: set once, before the node starts
// its entities; null (the default) keeps counts in the Counters' memory.
void SetCounterStore(std::shared_ptr<CounterStore> store);
std::shared_ptr<CounterStore> CounterStoreOfThisProcess();

}  // namespace counter

#endif  // TROUPE_EXAMPLES_COUNTER_STORE_H_
