// Sharded entities on a static cluster, every member in this process on its
// own ActorSystem, linked over loopback: activation, the handle from every
// node, passivation, restarts, keep-majority, and a join and a graceful
// leave during a stream of increments. The test entity keeps its state in
// a store outside the entities, as a real one keeps it in a database: what
// OnStop saves, the next activation loads. It checks that each sender's
// messages arrive in order and that a key never has two activations.

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "cluster/cluster.h"
#include "cluster/cluster_test_util.h"
#include "cluster/testdata/entity_test.troupe.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"

namespace troupe::cluster {
namespace {

using clustertest::TestMember;
using nettest::Eventually;

// What the entities save and load, and what they saw go wrong.
struct Store {
  struct State {
    int64_t count = 0;
    absl::flat_hash_map<std::string, int64_t> next_seq;  // by sender
  };
  std::mutex mu;
  absl::flat_hash_map<std::string, State> states;
  absl::flat_hash_map<std::string, int> active;  // live activations by key
  std::vector<std::string> violations;

  void Reset() {
    std::lock_guard<std::mutex> lock(mu);
    states.clear();
    active.clear();
    violations.clear();
  }
  std::vector<std::string> Violations() {
    std::lock_guard<std::mutex> lock(mu);
    return violations;
  }
  int64_t Saved(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    return states[key].count;
  }
};

Store& TheStore() {
  static Store* store = new Store;
  return *store;
}

struct TestCounter : Actor<TestCounter> {
  using Remote = Accepts<testmsg::Add, testmsg::Get, testmsg::Fail>;

  explicit TestCounter(const std::string& key) : key_(key) {
    Store& store = TheStore();
    std::lock_guard<std::mutex> lock(store.mu);
    state_ = store.states[key_];
    if (++store.active[key_] > 1) store.violations.push_back(absl::StrCat("two activations of ", key_));
  }
  ~TestCounter() {
    Store& store = TheStore();
    std::lock_guard<std::mutex> lock(store.mu);
    --store.active[key_];
  }
  void OnStop(const absl::Status&) {
    Store& store = TheStore();
    std::lock_guard<std::mutex> lock(store.mu);
    store.states[key_] = state_;
  }

  void On(const testmsg::Add& m) {
    int64_t& next = state_.next_seq[m.sender];
    if (m.seq != next) {
      Store& store = TheStore();
      std::lock_guard<std::mutex> lock(store.mu);
      if (store.violations.size() < 20) {
        store.violations.push_back(
            absl::StrCat(key_, ": from ", m.sender, " seq ", m.seq, " arrived when ", next, " was due"));
      }
    }
    next = m.seq + 1;
    state_.count += m.by;
  }
  int64_t On(const testmsg::Get&) { return state_.count; }
  void On(const testmsg::Fail&) { throw std::runtime_error("asked to fail"); }

 private:
  std::string key_;
  Store::State state_;
};

// Keeps its count in memory only: when it stops it sends what it has to
// its own handle, so that the count reaches its next activation, wherever
// that is.
// Activations alive by key, and the most any key had at once.
std::mutex carrying_mu;
absl::flat_hash_map<std::string, int> carrying_active;  // guarded by carrying_mu
int carrying_most = 0;                                  // guarded by carrying_mu

struct CarryingCounter : Actor<CarryingCounter> {
  using Remote = Accepts<testmsg::Carry, testmsg::Get>;

  explicit CarryingCounter(const EntityRef<CarryingCounter>& self) : self_(self) {
    std::lock_guard<std::mutex> lock(carrying_mu);
    carrying_most = std::max(carrying_most, ++carrying_active[self_.key()]);
  }
  ~CarryingCounter() {
    std::lock_guard<std::mutex> lock(carrying_mu);
    --carrying_active[self_.key()];
  }
  void OnStop(const absl::Status&) {
    if (count_ != 0) self_.Tell(testmsg::Carry{.by = count_});
  }
  void On(const testmsg::Carry& m) { count_ += m.by; }
  int64_t On(const testmsg::Get&) { return count_; }

 private:
  EntityRef<CarryingCounter> self_;
  int64_t count_ = 0;
};

EntityOptions Quick() {
  EntityOptions o;
  o.shards = 32;
  o.handoff_timeout = absl::Seconds(10);
  o.lookup_timeout = absl::Seconds(2);
  o.retry_interval = absl::Milliseconds(20);
  return o;
}

// Starts entities on each member and waits until every member sees every
// other up and hosts.
void StartAll(const std::vector<TestMember*>& members, const EntityOptions& options = Quick()) {
  for (TestMember* m : members) ASSERT_TRUE(m->cluster->StartEntities<TestCounter>(options).ok());
  const std::vector<std::string> all_up = clustertest::AllUp(members);
  for (TestMember* m : members) {
    ASSERT_TRUE(Eventually([&] { return m->States() == all_up && m->cluster->hosting(); }))
        << m->node->name() << " sees " << ::testing::PrintToString(m->States());
  }
}

uint64_t Sum(const std::vector<TestMember*>& members, uint64_t RegionStats::*field) {
  uint64_t n = 0;
  for (TestMember* m : members) n += m->cluster->entity_stats<TestCounter>().*field;
  return n;
}

class EntityTest : public ::testing::Test {
 protected:
  void SetUp() override { TheStore().Reset(); }
};

TEST_F(EntityTest, EachKeyActivatesOnceAndAnswersThroughEveryMember) {
  TestMember a("a"), b("b"), c("c");
  const std::vector<std::string> list{a.address, b.address, c.address};
  for (TestMember* m : {&a, &b, &c}) m->Join(list);
  StartAll({&a, &b, &c});

  constexpr int kKeys = 60;
  for (TestMember* m : {&a, &b, &c}) {
    for (int k = 0; k < kKeys; ++k) {
      EntityRef<TestCounter> e = m->cluster->Entity<TestCounter>(absl::StrCat("key-", k));
      ASSERT_TRUE(e.valid());
      // Asked, so that every member's increment is in before the reads.
      absl::Status added = e.Ask(testmsg::Add{.sender = m->node->name(), .seq = 0, .by = 1}, absl::Seconds(5)).Wait();
      ASSERT_TRUE(added.ok()) << added;
    }
  }
  for (TestMember* m : {&a, &b, &c}) {
    for (int k = 0; k < kKeys; ++k) {
      Result<int64_t> v = m->cluster->Entity<TestCounter>(absl::StrCat("key-", k)).Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(*v, 3) << "key-" << k << " through " << m->node->name();
    }
  }
  EXPECT_EQ(Sum({&a, &b, &c}, &RegionStats::activations), uint64_t{kKeys});
  EXPECT_EQ(Sum({&a, &b, &c}, &RegionStats::entities), uint64_t{kKeys});
  EXPECT_EQ(Sum({&a, &b, &c}, &RegionStats::shards_owned), uint64_t{Quick().shards});
  // Spread: each member hosts some.
  for (TestMember* m : {&a, &b, &c}) EXPECT_GT(m->cluster->entity_stats<TestCounter>().entities, 0u) << m->node->name();
  EXPECT_TRUE(TheStore().Violations().empty()) << ::testing::PrintToString(TheStore().Violations());
  EXPECT_EQ(Sum({&a, &b, &c}, &RegionStats::dropped) + Sum({&a, &b, &c}, &RegionStats::refused), 0u);
}

TEST_F(EntityTest, AnIdleEntityIsPassivatedAndItsNextMessageActivatesItAgain) {
  TestMember a("a");
  a.Join({a.address});
  EntityOptions o = Quick();
  o.passivate_after = absl::Milliseconds(100);
  StartAll({&a}, o);
  EntityRef<TestCounter> e = a.cluster->Entity<TestCounter>("idle");
  ASSERT_TRUE(e.Ask(testmsg::Add{.sender = "t", .seq = 0, .by = 2}).Wait().ok());
  ASSERT_TRUE(Eventually([&] { return a.cluster->entity_stats<TestCounter>().passivations == 1; }));
  ASSERT_TRUE(Eventually([&] { return a.cluster->entity_stats<TestCounter>().entities == 0; }));
  EXPECT_EQ(TheStore().Saved("idle"), 2);  // its OnStop ran
  ASSERT_TRUE(e.Ask(testmsg::Add{.sender = "t", .seq = 1, .by = 3}).Wait().ok());
  Result<int64_t> v = e.Ask(testmsg::Get{}).Wait(absl::Seconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 5);
  EXPECT_EQ(a.cluster->entity_stats<TestCounter>().activations, 2u);
}

TEST_F(EntityTest, AFailingEntityIsRestartedInPlaceAndKeepsItsHandle) {
  TestMember a("a"), b("b");
  const std::vector<std::string> list{a.address, b.address};
  a.Join(list);
  b.Join(list);
  StartAll({&a, &b});
  // Asked through both members: one of them reaches it remotely.
  for (TestMember* m : {&a, &b}) {
    EntityRef<TestCounter> e = m->cluster->Entity<TestCounter>("fragile");
    ASSERT_TRUE(e.Ask(testmsg::Add{.sender = m->node->name(), .seq = 0, .by = 1}).Wait(absl::Seconds(5)).ok());
    absl::Status failed = e.Ask(testmsg::Fail{}, absl::Seconds(5)).Wait();
    EXPECT_EQ(failed.code(), absl::StatusCode::kInternal) << failed;
    EXPECT_NE(failed.message().find("asked to fail"), std::string::npos) << failed;
  }
  Result<int64_t> v = a.cluster->Entity<TestCounter>("fragile").Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2);  // what OnStop saved before each restart
  EXPECT_EQ(Sum({&a, &b}, &RegionStats::restarts), 2u);
  EXPECT_EQ(Sum({&a, &b}, &RegionStats::activations), 1u);
}

TEST_F(EntityTest, AMemberWithoutAMajorityServesNothing) {
  TestMember a("a"), b("b"), c("c");
  // b and c listen but never join: a sees one of three.
  a.Join({a.address, b.address, c.address});
  ASSERT_TRUE(a.cluster->StartEntities<TestCounter>(Quick()).ok());
  absl::Status s = a.cluster->Entity<TestCounter>("k").Ask(testmsg::Get{}, absl::Seconds(5)).Wait().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("majority"), std::string::npos) << s;
  EXPECT_EQ(a.cluster->entity_stats<TestCounter>().activations, 0u);
  EXPECT_EQ(a.cluster->entity_stats<TestCounter>().refused, 1u);
}

TEST_F(EntityTest, BadOptionsAndUnstartedTypesAreClearErrors) {
  TestMember a("a");
  a.Join({a.address});
  EntityOptions zero = Quick();
  zero.shards = 0;
  EXPECT_EQ(a.cluster->StartEntities<TestCounter>(zero).code(), absl::StatusCode::kInvalidArgument);
  EntityRef<TestCounter> none = a.cluster->Entity<TestCounter>("k");
  EXPECT_FALSE(none.valid());
  absl::Status s = none.Ask(testmsg::Get{}).Wait().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("StartEntities"), std::string::npos) << s;
  ASSERT_TRUE(a.cluster->StartEntities<TestCounter>(Quick()).ok());
  EXPECT_EQ(a.cluster->StartEntities<TestCounter>(Quick()).code(), absl::StatusCode::kAlreadyExists);
}

// Envelopes another node could send a region by mistake or malice: each
// is refused with an error naming what is wrong, and the region and the
// entity go on serving.
TEST_F(EntityTest, BadEnvelopesAreRefusedByNameAndNothingElseIsDisturbed) {
  TestMember a("a"), b("b");
  const std::vector<std::string> list{a.address, b.address};
  a.Join(list);
  b.Join(list);
  StartAll({&a, &b});
  // A key b owns, and b's region as a plain remote Ref from a.
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = absl::StrCat("k", i);
    if (OwnerOf(ShardOf(k, Quick().shards), {"a", "b"}) == "b") key = k;
  }
  const uint32_t shard = ShardOf(key, Quick().shards);
  const std::string type(troupe::internal::TypeName<TestCounter>());
  Result<Ref<internal::ShardRegion>> region =
      a.node->Lookup<internal::ShardRegion>(b.address, internal::RegionName(type)).Wait(absl::Seconds(5));
  ASSERT_TRUE(region.ok()) << region.status();
  ASSERT_TRUE(a.cluster->Entity<TestCounter>(key).Ask(testmsg::Add{.sender = "t", .seq = 0, .by = 1}).Wait(
      absl::Seconds(5)).ok());

  auto envelope = [&](uint64_t type_id, std::string payload) {
    return wire::EntityEnvelope{.entity_type = type,
                                .key = key,
                                .shard = shard,
                                .type_id = type_id,
                                .payload = std::move(payload),
                                .forwarded = false,
                                .origin = "a",
                                .hops = 1,
                                .sender = "a"};
  };
  auto ask = [&](wire::EntityEnvelope e) {
    return region->Ask(wire::EntityAsk{.envelope = std::move(e)}, absl::Seconds(5)).Wait().status();
  };
  const uint64_t get_id = WireTraits<testmsg::Get>::kTypeId;
  absl::Status garbage = ask(envelope(get_id, "not a Cap'n Proto message"));
  EXPECT_EQ(garbage.code(), absl::StatusCode::kInvalidArgument) << garbage;
  EXPECT_NE(garbage.message().find("nested message"), std::string::npos) << garbage;
  EXPECT_NE(garbage.message().find(key), std::string::npos) << garbage;
  const testmsg::Get get;
  absl::StatusOr<std::string> get_bytes =
      a.node->EncodeNested(get_id, &troupe::internal::EncodeErased<testmsg::Get>, &get);
  ASSERT_TRUE(get_bytes.ok()) << get_bytes.status();
  absl::Status unknown = ask(envelope(0x1234, *get_bytes));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument) << unknown;
  EXPECT_NE(unknown.message().find("type id 4660"), std::string::npos) << unknown;
  EXPECT_NE(unknown.message().find(key), std::string::npos) << unknown;
  wire::EntityEnvelope other_type = envelope(get_id, "");
  other_type.entity_type = "no::SuchEntity";
  absl::Status wrong = ask(std::move(other_type));
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument) << wrong;
  EXPECT_NE(wrong.message().find("no::SuchEntity"), std::string::npos) << wrong;
  wire::EntityEnvelope far = envelope(get_id, "");
  far.shard = 100000;
  absl::Status out_of_range = ask(std::move(far));
  EXPECT_EQ(out_of_range.code(), absl::StatusCode::kInvalidArgument) << out_of_range;
  EXPECT_NE(out_of_range.message().find("shard 100000"), std::string::npos) << out_of_range;

  // The entity still counts, through either member.
  for (TestMember* m : {&a, &b}) {
    Result<int64_t> v = m->cluster->Entity<TestCounter>(key).Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 1);
  }
  EXPECT_EQ(b.cluster->entity_stats<TestCounter>().activations, 1u);
  EXPECT_EQ(b.cluster->entity_stats<TestCounter>().restarts, 0u);
}

// A cluster singleton: counts its activations and those alive, and says
// which activation answers.
std::atomic<int> singletons_alive{0};
std::atomic<int> singleton_activations{0};
std::atomic<int> singletons_most{0};  // the most alive at once

struct Leader : Actor<Leader> {
  using Remote = Accepts<testmsg::Get>;
  explicit Leader(const std::string&) : activation(singleton_activations.fetch_add(1) + 1) {
    const int alive = ++singletons_alive;
    int most = singletons_most.load();
    while (alive > most && !singletons_most.compare_exchange_weak(most, alive)) {
    }
  }
  ~Leader() { --singletons_alive; }
  int64_t On(const testmsg::Get&) { return activation; }
  const int activation;
};

TEST_F(EntityTest, ASingletonRunsOnceWithoutAMessageAndMovesWhenItsMemberLeaves) {
  singletons_alive = 0;
  singleton_activations = 0;
  singletons_most = 0;
  TestMember a("a"), b("b"), c("c");
  const std::vector<std::string> list{a.address, b.address, c.address};
  for (TestMember* m : {&a, &b, &c}) m->Join(list);
  for (TestMember* m : {&a, &b, &c}) {
    ASSERT_TRUE(m->cluster->StartSingletons<Leader>({"leader"}, Quick()).ok());
  }
  const std::vector<std::string> all_up = clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) ASSERT_TRUE(Eventually([&] { return m->States() == all_up; }));
  // Running with no message sent, once.
  ASSERT_TRUE(Eventually([&] { return singletons_alive.load() == 1; })) << singletons_alive.load();
  // The activation is alive before its region counts it: wait for both.
  TestMember* host = nullptr;
  ASSERT_TRUE(Eventually([&] {
    for (TestMember* m : {&a, &b, &c}) {
      if (m->cluster->entity_stats<Leader>().entities == 1) host = m;
    }
    return host != nullptr;
  }));
  std::vector<int64_t> seen;
  for (TestMember* m : {&a, &b, &c}) {
    Result<int64_t> v = m->cluster->Singleton<Leader>("leader").Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
    ASSERT_TRUE(v.ok()) << v.status();
    seen.push_back(*v);
  }
  EXPECT_EQ(seen, std::vector<int64_t>(3, seen[0])) << "one activation answers every member";

  // Its member leaves: it starts on a survivor, again with no message.
  ASSERT_TRUE(host->cluster->Leave().Wait(absl::Seconds(20)).ok());
  host->Stop();
  std::vector<TestMember*> rest;
  for (TestMember* m : {&a, &b, &c}) {
    if (m != host) rest.push_back(m);
  }
  ASSERT_TRUE(Eventually([&] {
    uint64_t n = 0;
    for (TestMember* m : rest) n += m->cluster->entity_stats<Leader>().entities;
    return n == 1 && singletons_alive.load() == 1;
  })) << singletons_alive.load();
  Result<int64_t> v = rest[0]->cluster->Singleton<Leader>("leader").Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_NE(*v, seen[0]) << "a new activation on a survivor";
  // (It may have moved while the members first found each other, but was
  // never running twice.)
  EXPECT_EQ(singletons_most.load(), 1) << "never two at once";
}

// Client threads that stream increments through their home members'
// handles: `total` in all, a tell each and every `ask_every`-th an ask
// (which paces the stream and is an increment acknowledged), each client
// numbering its messages to each key from 0. Joined by Join or the
// destructor; SentTo after Join.
class Stream {
 public:
  Stream(std::vector<TestMember*> homes, int keys, int64_t total, int ask_every, int stride)
      : total_(total), sent_(homes.size(), std::vector<int64_t>(static_cast<size_t>(keys), 0)) {
    const int clients = static_cast<int>(homes.size());
    for (int t = 0; t < clients; ++t) {
      threads_.emplace_back([this, t, clients, keys, ask_every, stride, home = homes[t]] {
        const std::string name = absl::StrCat("client-", t);
        std::vector<EntityRef<TestCounter>> handles;
        for (int k = 0; k < keys; ++k) handles.push_back(home->cluster->Entity<TestCounter>(absl::StrCat("key-", k)));
        const int64_t mine = total_ / clients + (t < total_ % clients ? 1 : 0);
        for (int64_t i = 0; i < mine; ++i) {
          const int k = static_cast<int>((i * stride + t) % keys);
          const testmsg::Add add{.sender = name, .seq = sent_[t][k]++, .by = 1};
          if (i % ask_every == ask_every - 1) {
            absl::Status acked = handles[k].Ask(add, absl::Seconds(30)).Wait();
            if (!acked.ok() && failures_.fetch_add(1) == 0) {
              std::lock_guard<std::mutex> lock(mu_);
              first_failure_ = acked;
            }
          } else {
            handles[k].Tell(add);
          }
          progress_.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
  }
  ~Stream() { Join(); }

  void Join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Waits (bounded) until `percent` of the increments have been sent.
  bool Reached(int percent) {
    return Eventually([&] { return progress_.load() >= total_ * percent / 100; }, absl::Seconds(60));
  }
  int64_t progress() const { return progress_.load(); }
  int64_t failures() const { return failures_.load(); }
  absl::Status first_failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_failure_;
  }
  int64_t SentTo(int key) const {
    int64_t n = 0;
    for (const std::vector<int64_t>& client : sent_) n += client[static_cast<size_t>(key)];
    return n;
  }
  int keys() const { return static_cast<int>(sent_.front().size()); }
  int64_t total() const { return total_; }

 private:
  const int64_t total_;
  std::vector<std::vector<int64_t>> sent_;  // by client, by key
  std::atomic<int64_t> progress_{0}, failures_{0};
  std::mutex mu_;
  absl::Status first_failure_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// Every key's count, read through `reader`, is what the stream sent it, and
// nothing went wrong in the entities.
void ExpectEverythingCounted(TestMember& reader, Stream& stream) {
  EXPECT_EQ(stream.failures(), 0) << stream.first_failure();
  int64_t total = 0;
  for (int k = 0; k < stream.keys(); ++k) {
    Result<int64_t> v =
        reader.cluster->Entity<TestCounter>(absl::StrCat("key-", k)).Ask(testmsg::Get{}, absl::Seconds(10)).Wait();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, stream.SentTo(k)) << "key-" << k;
    total += *v;
  }
  EXPECT_EQ(total, stream.total());
  EXPECT_TRUE(TheStore().Violations().empty()) << ::testing::PrintToString(TheStore().Violations());
}

// The stream: three clients send 100,000 increments in all (a tell
// each, an acknowledged ask every 100) while a fourth listed member joins
// and then one of the first three leaves. Nothing is lost, nothing
// doubled, each client's messages to each key arrive in order, and no key
// is ever active twice.
// Links that survive a slow (sanitizer) run: only planned changes here.
NodeOptions Patient(const std::string& name) {
  NodeOptions o = nettest::QuickOptions(name);
  o.heartbeat_timeout = absl::Seconds(10);
  return o;
}

// An entity built from its own handle reaches itself through the cluster:
// what it sends itself from OnStop while its shard moves is forwarded with
// the shard and reaches the next activation on the new owner.
TEST_F(EntityTest, AnEntityCarriesItsStateToItsNextActivationThroughItsOwnHandle) {
  {
    std::lock_guard<std::mutex> lock(carrying_mu);
    carrying_active.clear();
    carrying_most = 0;
  }
  TestMember a("a", Patient("a")), b("b", Patient("b")), c("c", Patient("c"));
  const std::vector<std::string> list{a.address, b.address, c.address};
  EntityOptions options = Quick();
  options.passivate_after = absl::ZeroDuration();
  for (TestMember* m : {&a, &b}) m->Join(list);
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(m->cluster->StartEntities<CarryingCounter>(options).ok());
  const std::vector<std::string> two = clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == two && m->cluster->hosting(); }));

  constexpr int kKeys = 64;
  auto key = [](int k) { return absl::StrCat("carried-", k); };
  for (int round = 1; round <= 3; ++round) {
    for (int k = 0; k < kKeys; ++k) {
      absl::Status added =
          a.cluster->Entity<CarryingCounter>(key(k)).Ask(testmsg::Carry{.by = k + 1}, absl::Seconds(10)).Wait();
      ASSERT_TRUE(added.ok()) << added;
    }
  }
  auto expect_counts = [&](TestMember& reader) {
    for (int k = 0; k < kKeys; ++k) {
      Result<int64_t> v = reader.cluster->Entity<CarryingCounter>(key(k)).Ask(testmsg::Get{}, absl::Seconds(10)).Wait();
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(*v, 3 * (k + 1)) << key(k) << " read through " << reader.node->name();
    }
  };
  ASSERT_NO_FATAL_FAILURE(expect_counts(b));

  // c joins: the shards it now owns move, their counts with them.
  c.Join(list);
  ASSERT_TRUE(c.cluster->StartEntities<CarryingCounter>(options).ok());
  const std::vector<std::string> three = clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) ASSERT_TRUE(Eventually([&] { return m->States() == three; }));
  ASSERT_TRUE(Eventually([&] { return c.cluster->entity_stats<CarryingCounter>().handoffs_in > 0; }));
  ASSERT_NO_FATAL_FAILURE(expect_counts(c));
  EXPECT_GT(c.cluster->entity_stats<CarryingCounter>().entities, 0u) << "some counts now live on c";

  // a leaves: everything it held moves to b and c.
  ASSERT_TRUE(a.cluster->Leave().Wait(absl::Seconds(30)).ok());
  EXPECT_EQ(a.cluster->entity_stats<CarryingCounter>().entities, 0u);
  a.Stop();
  ASSERT_NO_FATAL_FAILURE(expect_counts(b));
  std::lock_guard<std::mutex> lock(carrying_mu);
  EXPECT_EQ(carrying_most, 1) << "each move stops the old activation before the new one starts";
}

TEST_F(EntityTest, AJoinAndAGracefulLeaveDuringAStreamLoseNothing) {
  TestMember a("a", Patient("a")), b("b", Patient("b")), c("c", Patient("c")), d("d", Patient("d"));
  const std::vector<std::string> list{a.address, b.address, c.address, d.address};
  for (TestMember* m : {&a, &b, &c}) m->Join(list);
  StartAll({&a, &b, &c});

  Stream stream({&a, &c, &a}, /*keys=*/300, /*total=*/100000, /*ask_every=*/100, /*stride=*/7);

  ASSERT_TRUE(stream.Reached(20));
  d.Join(list);
  ASSERT_TRUE(d.cluster->StartEntities<TestCounter>(Quick()).ok());
  const std::vector<std::string> four = clustertest::AllUp({&a, &b, &c, &d});
  for (TestMember* m : {&a, &b, &c, &d}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == four; })) << m->node->name();
  }
  ASSERT_TRUE(Eventually([&] { return d.cluster->entity_stats<TestCounter>().handoffs_in > 0; }));
  const int64_t at_join = stream.progress();

  ASSERT_TRUE(stream.Reached(60));
  const int64_t at_leave = stream.progress();
  absl::Status left = b.cluster->Leave().Wait(absl::Seconds(30));
  ASSERT_TRUE(left.ok()) << left;
  const RegionStats b_stats = b.cluster->entity_stats<TestCounter>();
  EXPECT_GT(b_stats.handoffs_out, 0u);
  EXPECT_EQ(b_stats.entities, 0u);
  b.Stop();
  stream.Join();
  const int64_t at_end = stream.progress();
  EXPECT_LT(at_join, at_leave);
  EXPECT_LT(at_leave, at_end) << "the leave ended after the stream";

  const std::vector<std::string> three = clustertest::AllUp({&a, &c, &d});
  for (TestMember* m : {&a, &c, &d}) ASSERT_TRUE(Eventually([&] { return m->States() == three; })) << m->node->name();
  ExpectEverythingCounted(c, stream);
  for (TestMember* m : {&a, &c, &d}) {
    const RegionStats s = m->cluster->entity_stats<TestCounter>();
    EXPECT_EQ(s.dropped + s.refused, 0u) << m->node->name();
    EXPECT_EQ(s.handoff_timeouts, 0u) << m->node->name();
  }
  EXPECT_EQ(b_stats.handoff_timeouts, 0u);
}

// Five listed members, three up; while two clients stream increments, one
// joins, another joins, the first leaves and comes back as a new
// incarnation at its address, and one of the first three leaves: every
// change moves shards under load, some of them twice. Nothing is lost,
// nothing doubled, each client in order, no key active twice.
TEST_F(EntityTest, RepeatedJoinsAndLeavesUnderLoadLoseNothing) {
  auto a = std::make_unique<TestMember>("a", Patient("a"));
  auto b = std::make_unique<TestMember>("b", Patient("b"));
  auto c = std::make_unique<TestMember>("c", Patient("c"));
  auto d = std::make_unique<TestMember>("d", Patient("d"));
  auto e = std::make_unique<TestMember>("e", Patient("e"));
  const std::string d_address = d->address;
  const std::vector<std::string> list{a->address, b->address, c->address, d->address, e->address};
  for (TestMember* m : {a.get(), b.get(), c.get()}) m->Join(list);
  StartAll({a.get(), b.get(), c.get()});

  Stream stream({a.get(), c.get()}, /*keys=*/200, /*total=*/60000, /*ask_every=*/50, /*stride=*/11);
  auto leave = [](std::unique_ptr<TestMember>& m) {
    ASSERT_TRUE(m->cluster->Leave().Wait(absl::Seconds(30)).ok()) << m->node->name();
    m->Stop();
    m.reset();
  };
  auto join = [&](TestMember& m) {
    m.Join(list);
    ASSERT_TRUE(m.cluster->StartEntities<TestCounter>(Quick()).ok());
  };

  ASSERT_TRUE(stream.Reached(10));
  join(*d);
  ASSERT_TRUE(stream.Reached(25));
  join(*e);
  ASSERT_TRUE(stream.Reached(40));
  leave(d);
  ASSERT_TRUE(stream.Reached(55));
  d = std::make_unique<TestMember>("d", Patient("d"), d_address);
  join(*d);
  ASSERT_TRUE(stream.Reached(70));
  leave(b);
  stream.Join();

  const std::vector<std::string> four = clustertest::AllUp({a.get(), c.get(), d.get(), e.get()});
  for (TestMember* m : {a.get(), c.get(), d.get(), e.get()}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == four; })) << m->node->name();
  }
  ExpectEverythingCounted(*e, stream);
  for (TestMember* m : {a.get(), c.get(), d.get(), e.get()}) {
    const RegionStats st = m->cluster->entity_stats<TestCounter>();
    EXPECT_EQ(st.dropped + st.refused, 0u) << m->node->name();
    EXPECT_EQ(st.handoff_timeouts, 0u) << m->node->name();
  }
}

}  // namespace
}  // namespace troupe::cluster
