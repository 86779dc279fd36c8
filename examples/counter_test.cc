// The Counter entity with a store (examples/counter_store.h), on a static
// cluster in this process, against a fake store whose writes the test can
// fail, delay, or race: a write applied whose answer is lost is not applied
// again; a write that loses its compare-and-swap to another writer adds on
// top of it; a shard that moves while a write is in flight neither loses
// nor doubles it, whichever write lands first. Every check reads both the
// entity and the store.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cluster/cluster.h"
#include "cluster/cluster_test_util.h"
#include "cluster/placement.h"
#include "examples/counter_actors.h"
#include "examples/counter_store.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"

namespace counter {
namespace {

using troupe::cluster::clustertest::TestMember;
using troupe::nettest::Eventually;

constexpr uint32_t kShards = 16;

// Keys in memory, one revision counter; Save can be told to fail once, to
// apply and then fail (the answer lost), or to wait at a gate.
class FakeStore final : public CounterStore {
 public:
  enum class Next { kNormal, kFailBefore, kFailAfter };

  absl::StatusOr<Stored> Load(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++loads_;
    if (auto bad = corrupt_.find(key); bad != corrupt_.end()) return DecodeStored(bad->second, 1);
    auto it = keys_.find(key);
    return it != keys_.end() ? it->second : Stored{};
  }

  absl::StatusOr<Saved> Save(const std::string& key, const Stored& next, int64_t expected) override {
    std::unique_lock<std::mutex> lock(mu_);
    const int call = ++saves_;
    if (call == gated_call_) {
      gate_reached_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return gate_open_; });
    }
    Next how = Next::kNormal;
    if (!script_.empty()) {
      how = script_.front();
      script_.erase(script_.begin());
    }
    if (how == Next::kFailBefore) return absl::UnavailableError("fake store: refused before writing");
    Stored& now = keys_[key];
    if (now.revision != expected) return Saved{.written = false, .current = now};
    now = next;
    now.revision = ++revision_;
    if (how == Next::kFailAfter) return absl::DeadlineExceededError("fake store: written, answer lost");
    return Saved{.written = true, .current = now};
  }

  std::string where() const override { return "a fake store"; }

  // The next Saves, in order, behave as `script` says.
  void Script(std::vector<Next> script) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(script);
  }
  // The Save call number `call` (counting from 1 over every Save) waits
  // until Open().
  void GateCall(int call) {
    std::lock_guard<std::mutex> lock(mu_);
    gated_call_ = call;
    gate_open_ = false;
    gate_reached_ = false;
  }
  bool WaitAtGate() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return gate_reached_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = true;
    changed_.notify_all();
  }
  int saves() {
    std::lock_guard<std::mutex> lock(mu_);
    return saves_;
  }
  int64_t Count(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_[key].count;
  }
  // What a key holds made unreadable: Load fails as DecodeStored does.
  void Corrupt(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    corrupt_[key] = value;
  }
  // Another writer (another activation) adds `by` under tag `tag`.
  void AddBehind(const std::string& key, int64_t by, const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu_);
    Stored& now = keys_[key];
    now.count += by;
    now.tags.push_back(tag);
    now.revision = ++revision_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  absl::flat_hash_map<std::string, Stored> keys_;
  absl::flat_hash_map<std::string, std::string> corrupt_;
  int64_t revision_ = 0;
  int saves_ = 0, loads_ = 0;
  std::vector<Next> script_;
  int gated_call_ = 0;
  bool gate_open_ = true, gate_reached_ = false;
};

class CounterTest : public ::testing::Test {
 public:
  void SetUp() override {
    store_ = std::make_shared<FakeStore>();
    SetCounterStore(store_);
  }
  void TearDown() override { SetCounterStore(nullptr); }

  static troupe::cluster::EntityOptions Options() {
    troupe::cluster::EntityOptions o;
    o.shards = kShards;
    o.passivate_after = absl::ZeroDuration();
    o.retry_interval = absl::Milliseconds(20);
    return o;
  }
  static void Start(const std::vector<TestMember*>& members, const std::vector<std::string>& list) {
    for (TestMember* m : members) {
      m->Join(list);
      ASSERT_TRUE(m->cluster->StartEntities<Counter>(Options()).ok());
    }
    const std::vector<std::string> up = troupe::cluster::clustertest::AllUp(members);
    for (TestMember* m : members) {
      ASSERT_TRUE(Eventually([&] { return m->States() == up && m->cluster->hosting(); })) << m->node->name();
    }
  }
  static int64_t Add(TestMember& via, const std::string& key, int64_t by) {
    troupe::Result<int64_t> r = via.cluster->Entity<Counter>(key).Ask(counter::Add{.by = by}, absl::Seconds(20)).Wait();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : -1;
  }
  static int64_t ReadBack(TestMember& via, const std::string& key) {
    troupe::Result<int64_t> r = via.cluster->Entity<Counter>(key).Ask(Read{}, absl::Seconds(20)).Wait();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : -1;
  }

  std::shared_ptr<FakeStore> store_;
};

TEST_F(CounterTest, AWriteAppliedWhoseAnswerIsLostIsNotAppliedAgain) {
  TestMember a("a");
  ASSERT_NO_FATAL_FAILURE(Start({&a}, {a.address}));
  EXPECT_EQ(Add(a, "k", 1), 1);
  // Refused before writing, then written with the answer lost: the Add is
  // answered once, and counted once.
  store_->Script({FakeStore::Next::kFailBefore, FakeStore::Next::kFailAfter});
  EXPECT_EQ(Add(a, "k", 2), 3);
  EXPECT_EQ(store_->Count("k"), 3);
  EXPECT_EQ(Add(a, "k", 4), 7);
  EXPECT_EQ(ReadBack(a, "k"), 7);
  EXPECT_EQ(store_->Count("k"), 7);
}

TEST_F(CounterTest, AWriteThatLosesToAnotherWriterAddsOnTopOfIt) {
  TestMember a("a");
  ASSERT_NO_FATAL_FAILURE(Start({&a}, {a.address}));
  EXPECT_EQ(Add(a, "k", 3), 3);
  store_->AddBehind("k", 100, "another-activation:1");
  EXPECT_EQ(Add(a, "k", 1), 104);
  EXPECT_EQ(store_->Count("k"), 104);
}

TEST_F(CounterTest, AKeyThatHoldsNoCountFailsItsAsksByNameAndOtherKeysGoOn) {
  TestMember a("a");
  ASSERT_NO_FATAL_FAILURE(Start({&a}, {a.address}));
  store_->Corrupt("broken", "not a count");
  troupe::Result<int64_t> r = a.cluster->Entity<Counter>("broken").Ask(Read{}, absl::Seconds(20)).Wait();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("counter 'broken'"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("not a count"), std::string::npos) << r.status();
  EXPECT_EQ(Add(a, "fine", 2), 2);
}

// A key whose shard moves from a (or b) to c when c joins the listed three.
std::string KeyMovingTo(const std::string& to, const std::vector<std::string>& before,
                        const std::vector<std::string>& after) {
  for (int i = 0;; ++i) {
    std::string key = absl::StrCat("moving-", i);
    const uint32_t s = troupe::cluster::ShardOf(key, kShards);
    if (troupe::cluster::OwnerOf(s, after) == to && troupe::cluster::OwnerOf(s, before) != to) return key;
  }
}

// A tell's write is held in flight (at the store's gate) while c joins and
// the key's shard moves to c. Its next activation carries the write as
// unsure and writes it itself; the held write, released afterwards, loses
// its compare-and-swap. `answer_lost`: the held write is then released as
// applied-but-unanswered instead, before the next activation writes, and
// the next activation finds it applied. Either way the count is exact.
void MoveWhileAWriteIsInFlight(FakeStore& store, bool held_lands_first) {
  TestMember a("a", troupe::nettest::QuickOptions("a")), b("b", troupe::nettest::QuickOptions("b")),
      c("c", troupe::nettest::QuickOptions("c"));
  const std::vector<std::string> list{a.address, b.address, c.address};
  for (TestMember* m : {&a, &b}) {
    m->Join(list);
    ASSERT_TRUE(m->cluster->StartEntities<Counter>(CounterTest::Options()).ok());
  }
  const std::vector<std::string> two = troupe::cluster::clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == two && m->cluster->hosting(); }));
  const std::string key = KeyMovingTo("c", {"a", "b"}, {"a", "b", "c"});
  EXPECT_EQ(CounterTest::Add(a, key, 3), 3);

  store.GateCall(store.saves() + 1);
  a.cluster->Entity<Counter>(key).Tell(Increment{.by = 5});
  ASSERT_TRUE(store.WaitAtGate());
  if (held_lands_first) {
    // It lands now, but its answer never reaches the old activation.
    store.Script({FakeStore::Next::kFailAfter});
    store.Open();
    ASSERT_TRUE(Eventually([&] { return store.Count(key) == 8; }));
  }
  c.Join(list);
  ASSERT_TRUE(c.cluster->StartEntities<Counter>(CounterTest::Options()).ok());
  const std::vector<std::string> three = troupe::cluster::clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) ASSERT_TRUE(Eventually([&] { return m->States() == three; }));
  ASSERT_TRUE(Eventually([&] { return c.cluster->entity_stats<Counter>().entities == 1; }));
  if (!held_lands_first) {
    // The new activation writes the carried 5 itself; then the held write
    // is let go, and loses its compare-and-swap.
    ASSERT_TRUE(Eventually([&] { return store.Count(key) == 8; }));
    store.Open();
  }
  EXPECT_EQ(CounterTest::Add(c, key, 0), 8);
  EXPECT_EQ(CounterTest::ReadBack(b, key), 8);
  EXPECT_EQ(store.Count(key), 8);
  EXPECT_EQ(CounterTest::Add(a, key, 1), 9);
  EXPECT_EQ(store.Count(key), 9);
}

TEST_F(CounterTest, AShardMovedWhileAWriteIsInFlightCountsItOnceWhenTheNewOwnerWritesFirst) {
  MoveWhileAWriteIsInFlight(*store_, /*held_lands_first=*/false);
}

TEST_F(CounterTest, AShardMovedWhileAWriteIsInFlightCountsItOnceWhenTheHeldWriteLandsFirst) {
  MoveWhileAWriteIsInFlight(*store_, /*held_lands_first=*/true);
}

// Two moves while writes are unsure. The first owner's write (5) is held at
// the gate when c joins; c's activation writes the carried 5 itself, and
// that write lands but its answer is lost; c leaves before it reads the
// store again, so the next owner gets both writes as unsure, the second
// including the first. It finds the second applied, so the first counts
// through it and not again; the held write, released last, loses its
// compare-and-swap.
TEST_F(CounterTest, AWriteCarriedTwiceIsCountedThroughTheWriteThatIncludedIt) {
  TestMember a("a", troupe::nettest::QuickOptions("a")), b("b", troupe::nettest::QuickOptions("b"));
  auto c = std::make_unique<TestMember>("c", troupe::nettest::QuickOptions("c"));
  const std::vector<std::string> list{a.address, b.address, c->address};
  for (TestMember* m : {&a, &b}) {
    m->Join(list);
    ASSERT_TRUE(m->cluster->StartEntities<Counter>(Options()).ok());
  }
  const std::vector<std::string> two = troupe::cluster::clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == two && m->cluster->hosting(); }));
  const std::string key = KeyMovingTo("c", {"a", "b"}, {"a", "b", "c"});
  EXPECT_EQ(Add(a, key, 3), 3);

  store_->GateCall(store_->saves() + 1);
  a.cluster->Entity<Counter>(key).Tell(Increment{.by = 5});
  ASSERT_TRUE(store_->WaitAtGate());
  store_->Script({FakeStore::Next::kFailAfter});  // c's write: applied, answer lost
  c->Join(list);
  ASSERT_TRUE(c->cluster->StartEntities<Counter>(Options()).ok());
  ASSERT_TRUE(Eventually([&] { return store_->Count(key) == 8; }));
  ASSERT_TRUE(c->cluster->Leave().Wait(absl::Seconds(20)).ok());
  c->Stop();
  EXPECT_EQ(Add(b, key, 0), 8);
  store_->Open();
  EXPECT_EQ(Add(a, key, 1), 9);
  EXPECT_EQ(ReadBack(b, key), 9);
  EXPECT_EQ(store_->Count(key), 9);
}

}  // namespace
}  // namespace counter
