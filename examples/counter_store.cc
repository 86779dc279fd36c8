#include "examples/counter_store.h"

#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cluster/etcd/etcd_client.h"

namespace counter {

std::string EncodeStored(const Stored& s) {
  std::string out = absl::StrCat(s.count);
  for (const std::string& tag : s.tags) absl::StrAppend(&out, " ", tag);
  return out;
}

absl::StatusOr<Stored> DecodeStored(const std::string& value, int64_t revision) {
  std::vector<std::string> words = absl::StrSplit(value, ' ', absl::SkipEmpty());
  Stored s;
  s.revision = revision;
  if (words.empty() || !absl::SimpleAtoi(words[0], &s.count)) {
    return absl::InvalidArgumentError(absl::StrCat("a stored counter is \"<count> <tags>\", not \"", value.substr(0, 80),
                                                   "\""));
  }
  s.tags.assign(words.begin() + 1, words.end());
  return s;
}

namespace {

class EtcdStore final : public CounterStore {
 public:
  EtcdStore(const std::string& endpoint, const std::string& cluster, absl::Duration timeout)
      : client_(troupe::cluster::etcd::EtcdClientOptions{.address = endpoint}),
        prefix_(absl::StrCat("/troupe/", cluster, "/counters/")),
        timeout_(timeout) {}

  absl::StatusOr<Stored> Load(const std::string& key) override {
    absl::StatusOr<troupe::cluster::etcd::GetResult> got = client_.Get(prefix_ + key, absl::Now() + timeout_);
    if (!got.ok()) return got.status();
    if (!got->kv.has_value()) return Stored{};
    return DecodeStored(got->kv->value, got->kv->mod_revision);
  }

  absl::StatusOr<Saved> Save(const std::string& key, const Stored& next, int64_t expected) override {
    absl::StatusOr<troupe::cluster::etcd::SwapResult> swap =
        client_.PutIfUnchanged(prefix_ + key, EncodeStored(next), expected, absl::Now() + timeout_);
    if (!swap.ok()) return swap.status();
    Saved saved;
    saved.written = swap->written;
    if (swap->written) {
      saved.current = next;
      saved.current.revision = swap->revision;
    } else if (swap->current.has_value()) {
      absl::StatusOr<Stored> now = DecodeStored(swap->current->value, swap->current->mod_revision);
      if (!now.ok()) return now.status();
      saved.current = *std::move(now);
    }
    return saved;
  }

  std::string where() const override { return absl::StrCat("etcd at ", client_.address(), " under ", prefix_); }

 private:
  troupe::cluster::etcd::EtcdClient client_;
  const std::string prefix_;
  const absl::Duration timeout_;
};

std::mutex store_mu;
std::shared_ptr<CounterStore>* the_store = new std::shared_ptr<CounterStore>;  // guarded by store_mu

}  // namespace

std::shared_ptr<CounterStore> EtcdCounterStore(const std::string& endpoint, const std::string& cluster,
                                               absl::Duration timeout) {
  return std::make_shared<EtcdStore>(endpoint, cluster, timeout);
}

void SetCounterStore(std::shared_ptr<CounterStore> store) {
  std::lock_guard<std::mutex> lock(store_mu);
  *the_store = std::move(store);
}

std::shared_ptr<CounterStore> CounterStoreOfThisProcess() {
  std::lock_guard<std::mutex> lock(store_mu);
  return *the_store;
}

}  // namespace counter
