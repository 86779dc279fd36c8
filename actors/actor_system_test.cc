// The actor system on its real work-stealing pool: many actors, many
// threads, shutdown, parking. Every wait is bounded.

#include "actors/actor_system.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "actors/actor.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

// --- ping-pong ---------------------------------------------------------------

struct Ball {
  int64_t left;
};
struct Player;
struct Serve {
  Ref<Player> other;
  int64_t hits;
};
struct Hits {};

struct Player : Actor<Player> {
  Ref<Player> other;
  int64_t hits = 0;
  std::unique_ptr<Reply<int64_t>> done;
  void On(const Serve& s, Reply<int64_t> reply) {
    other = s.other;
    done = std::make_unique<Reply<int64_t>>(std::move(reply));
    other.Tell(Ball{s.hits});
  }
  void On(const Ref<Player>& o) { other = o; }
  void On(const Ball& b) {
    if (b.left < 0) {  // the rally is over
      if (done) done->Send(hits);
      return;
    }
    ++hits;
    other.Tell(Ball{b.left - 1});  // Ball{-1} after the last hit
  }
  int64_t On(const Hits&) { return hits; }
};

TEST(ActorSystem, ManyPingPongPairsAllFinish) {
  ActorSystem sys({.workers = 2});
  constexpr int kPairs = 50;
  constexpr int64_t kHits = 2000;
  std::vector<Future<int64_t>> results;
  std::vector<Ref<Player>> keep;
  for (int i = 0; i < kPairs; ++i) {
    Ref<Player> a = sys.Spawn<Player>();
    Ref<Player> b = sys.Spawn<Player>();
    b.Tell(a);
    results.push_back(a.Ask(Serve{.other = b, .hits = kHits}));
    keep.push_back(a);
    keep.push_back(b);
  }
  for (Future<int64_t>& f : results) {
    Result<int64_t> r = f.Wait(kGenerous);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, kHits / 2);  // the server hits every odd-numbered ball
  }
}

// --- per-sender FIFO across threads --------------------------------------------

struct Seq {
  int sender;
  int64_t n;
};
struct Check {};
struct Sink : Actor<Sink> {
  std::vector<int64_t> next = std::vector<int64_t>(8, 0);
  int64_t out_of_order = 0;
  int64_t received = 0;
  void On(const Seq& s) {
    if (s.n != next[s.sender]) ++out_of_order;
    next[s.sender] = s.n + 1;
    ++received;
  }
  std::pair<int64_t, int64_t> On(const Check&) { return {received, out_of_order}; }
};

struct Forward {
  Ref<Sink> sink;
  int sender;
  int64_t count;
};
struct Source : Actor<Source> {
  bool On(const Forward& f) {
    for (int64_t i = 0; i < f.count; ++i) f.sink.Tell(Seq{f.sender, i});
    return true;
  }
};

TEST(ActorSystem, MessagesFromEachSenderArriveInSendOrder) {
  ActorSystem sys({.workers = 2});
  constexpr int64_t kEach = 20000;
  Ref<Sink> sink = sys.Spawn<Sink>();
  // Four senders: two threads outside the system, two actors inside it.
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; i < kEach; ++i) sink.Tell(Seq{t, i});
    });
  }
  std::vector<Future<bool>> sent;
  for (int a = 2; a < 4; ++a) sent.push_back(sys.Spawn<Source>().Ask(Forward{sink, a, kEach}));
  for (std::thread& t : threads) t.join();
  for (Future<bool>& f : sent) ASSERT_TRUE(f.Wait(kGenerous).ok());
  Result<std::pair<int64_t, int64_t>> r = sink.Ask(Check{}).Wait(kGenerous);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 4 * kEach);
  EXPECT_EQ(r->second, 0);
}

// --- bounded mailboxes under load ----------------------------------------------

struct Bounded : Actor<Bounded> {
  static constexpr uint32_t kMailboxCapacity = 64;
  int64_t received = 0;
  void On(int64_t) { ++received; }
  int64_t On(const Check&) { return received; }
};

TEST(ActorSystem, BoundedMailboxAccountsForEveryMessageUnderManySenders) {
  ActorSystem sys({.workers = 2});
  Ref<Bounded> b = sys.Spawn<Bounded>();
  constexpr int kThreads = 4;
  constexpr int64_t kEach = 20000;
  std::atomic<int64_t> accepted{0}, refused{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&] {
      for (int64_t i = 0; i < kEach; ++i) {
        absl::Status s = b.TryTell(i);
        if (s.ok()) {
          accepted.fetch_add(1, std::memory_order_relaxed);
        } else {
          ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
          refused.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& t : senders) t.join();
  // The Check ask itself needs a place: retry while the mailbox drains.
  // Each refused ask is counted as dropped too.
  Result<int64_t> received = absl::UnknownError("not asked");
  int64_t refused_asks = 0;
  const absl::Time give_up = absl::Now() + kGenerous;
  while (absl::Now() < give_up) {
    received = b.Ask(Check{}).Wait(kGenerous);
    if (received.status().code() != absl::StatusCode::kResourceExhausted) break;
    ++refused_asks;
    std::this_thread::yield();
  }
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(*received, accepted.load());
  EXPECT_EQ(accepted.load() + refused.load(), kThreads * kEach);
  EXPECT_EQ(sys.stats().dropped, static_cast<uint64_t>(refused.load() + refused_asks));
}

// --- failure isolation ----------------------------------------------------------

struct Explode {};
struct Echo : Actor<Echo> {
  int On(int x) { return x; }
  void On(const Explode&) { throw std::logic_error("boom"); }
};

TEST(ActorSystem, AThrowingHandlerStopsOnlyItsActor) {
  ActorSystem sys({.workers = 1});
  Ref<Echo> bad = sys.Spawn<Echo>();
  Ref<Echo> good = sys.Spawn<Echo>();
  absl::Status exploded = bad.Ask(Explode{}).Wait(kGenerous);
  EXPECT_EQ(exploded.code(), absl::StatusCode::kInternal);
  EXPECT_NE(exploded.message().find("boom"), std::string::npos) << exploded;
  for (int i = 0; i < 100; ++i) ASSERT_EQ(*good.Ask(i).Wait(kGenerous), i);
  EXPECT_EQ(bad.Ask(1).Wait(kGenerous).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sys.stats().failures, 1u);
}

// --- blocking offload -------------------------------------------------------------

struct Offload {
  std::shared_ptr<std::latch> gate;
};
struct Offloader : Actor<Offloader> {
  Task<int> On(const Offload& o) {
    std::shared_ptr<std::latch> gate = o.gate;
    Future<int> job = Blocking([gate] {
      gate->wait();  // blocks a blocking-pool thread, not a worker
      return 42;
    });
    Result<int> r = co_await std::move(job);
    co_return r.value_or(-1);
  }
  int On(int x) { return x; }
};

TEST(ActorSystem, BlockingCallsDoNotStallTheWorkers) {
  ActorSystem sys({.workers = 1});
  auto gate = std::make_shared<std::latch>(1);
  Ref<Offloader> o = sys.Spawn<Offloader>();
  std::vector<Future<int>> blocked;
  for (int i = 0; i < 4; ++i) blocked.push_back(o.Ask(Offload{gate}));
  // The only worker still serves messages while four jobs block.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(*o.Ask(i).Wait(kGenerous), i);
  for (Future<int>& f : blocked) EXPECT_FALSE(f.ready());
  gate->count_down();
  for (Future<int>& f : blocked) EXPECT_EQ(*f.Wait(kGenerous), 42);
}

// --- deadlines on the real clock --------------------------------------------------

struct Never {};
struct Silent : Actor<Silent> {
  std::vector<Reply<int>> held;
  void On(const Never&, Reply<int> r) { held.push_back(std::move(r)); }
};

TEST(ActorSystem, AskWithoutReplyEndsAtItsDeadline) {
  ActorSystem sys({.workers = 2});
  Ref<Silent> s = sys.Spawn<Silent>();
  const absl::Time start = absl::Now();
  Result<int> r = s.Ask(Never{}, absl::Milliseconds(50)).Wait(kGenerous);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST(ActorSystem, WaitInsideAnActorOnTheRealPoolFailsFast) {
  struct Inner : Actor<Inner> {
    absl::StatusCode On(const Ref<Silent>& s) { return s.Ask(Never{}).Wait(absl::Seconds(30)).status().code(); }
  };
  ActorSystem sys({.workers = 1});
  Ref<Silent> s = sys.Spawn<Silent>();
  EXPECT_EQ(*sys.Spawn<Inner>().Ask(s).Wait(kGenerous), absl::StatusCode::kFailedPrecondition);
}

// --- shutdown -------------------------------------------------------------------

struct Bounce {
  Ref<struct Chatter> to;
};
struct Chatter : Actor<Chatter> {
  void On(const Bounce& b) { b.to.Tell(Bounce{Self()}); }  // forever
};

// An actor in the middle of its own ask: a coroutine awaiting a reply that
// never comes.
struct AskOnward {
  Ref<Silent> to;
};
struct MidAsk : Actor<MidAsk> {
  Task<int> On(const AskOnward& a) {
    Future<int> reply = a.to.Ask(Never{});
    Result<int> r = co_await std::move(reply);
    co_return r.value_or(-1);
  }
};

TEST(ActorSystem, ShutdownEndsBusyActorsAndPendingAsksWithoutHanging) {
  auto sys = std::make_unique<ActorSystem>(ActorSystemOptions{.workers = 2});
  // Actors that keep sending to each other, forever.
  for (int i = 0; i < 20; ++i) {
    Ref<Chatter> a = sys->Spawn<Chatter>();
    Ref<Chatter> b = sys->Spawn<Chatter>();
    a.Tell(Bounce{b});
  }
  // Asks held by an actor, and asks queued behind them.
  Ref<Silent> s = sys->Spawn<Silent>();
  std::vector<Future<int>> pending;
  for (int i = 0; i < 50; ++i) pending.push_back(s.Ask(Never{}));
  // Actors suspended mid-ask.
  std::vector<Future<int>> mid_ask;
  for (int i = 0; i < 10; ++i) mid_ask.push_back(sys->Spawn<MidAsk>().Ask(AskOnward{s}));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(sys->Shutdown(absl::Seconds(30)).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  for (Future<int>& f : pending) EXPECT_EQ(f.Wait(kGenerous).status().code(), absl::StatusCode::kCancelled);
  for (Future<int>& f : mid_ask) {
    // Either the coroutine saw its own ask cancelled and answered -1, or it
    // was destroyed with its actor and the outer ask was cancelled.
    Result<int> r = f.Wait(kGenerous);
    EXPECT_TRUE(r.status().code() == absl::StatusCode::kCancelled || (r.ok() && *r == -1)) << r.status();
  }
  EXPECT_EQ(sys->stats().live, 0u);
  // Refs outlive the system: sends fail cleanly.
  sys.reset();
  EXPECT_EQ(s.Ask(Never{}).Wait(kGenerous).status().code(), absl::StatusCode::kCancelled);
}

// --- cells that outlive their actors ------------------------------------------------

// Each link of the chain spawns the next in OnStart; the last hands its Ref
// out. A child's cell holds its parent's, so that Ref holds the whole chain.
struct ChainLink : Actor<ChainLink> {
  ChainLink(int left, std::shared_ptr<std::promise<Ref<ChainLink>>> last) : left(left), last(std::move(last)) {}
  void OnStart() {
    if (left == 0) {
      last->set_value(Self());
    } else {
      Spawn<ChainLink>(left - 1, last);
    }
  }
  void On(const Never&) {}
  int left;
  std::shared_ptr<std::promise<Ref<ChainLink>>> last;
};

TEST(ActorSystem, AChildsRefOutlivesItsParentAndTheSystem) {
  auto sys = std::make_unique<ActorSystem>(ActorSystemOptions{.workers = 2});
  auto last = std::make_shared<std::promise<Ref<ChainLink>>>();
  std::future<Ref<ChainLink>> got = last->get_future();
  sys->Spawn<ChainLink>(3, last);
  ASSERT_EQ(got.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  Ref<ChainLink> grandchild = got.get();
  ASSERT_TRUE(sys->Shutdown(absl::Seconds(30)).ok());
  sys.reset();
  // Its parents and the system are gone; the cell and what it points to
  // (the core, through its ancestors) are not.
  absl::Status sent = grandchild.Ask(Never{}).Wait(kGenerous);
  EXPECT_EQ(sent.code(), absl::StatusCode::kCancelled) << sent;
}

TEST(ActorSystem, TheLastRefToTheEndOfADeepChainFreesItWithoutRecursing) {
  // Deep enough that freeing the cells one inside another would overflow
  // the stack.
  constexpr int kDepth = 200000;
  auto sys = std::make_unique<ActorSystem>(ActorSystemOptions{.workers = 2});
  auto last = std::make_shared<std::promise<Ref<ChainLink>>>();
  std::future<Ref<ChainLink>> got = last->get_future();
  sys->Spawn<ChainLink>(kDepth, last);
  ASSERT_EQ(got.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  Ref<ChainLink> end = got.get();
  EXPECT_EQ(sys->stats().live, uint64_t{kDepth} + 1);
  ASSERT_TRUE(sys->Shutdown(absl::Seconds(60)).ok());
  EXPECT_EQ(sys->stats().live, 0u);
  sys.reset();
  end = Ref<ChainLink>();  // the chain's last reference: every cell, then the core
}

TEST(ActorSystem, SeveralSystemsLiveInOneProcess) {
  ActorSystem a({.workers = 1, .name = "a"});
  ActorSystem b({.workers = 1, .name = "b"});
  Ref<Echo> ea = a.Spawn<Echo>();
  Ref<Echo> eb = b.Spawn<Echo>();
  EXPECT_EQ(*ea.Ask(1).Wait(kGenerous), 1);
  EXPECT_EQ(*eb.Ask(2).Wait(kGenerous), 2);
  ASSERT_TRUE(a.Shutdown().ok());
  EXPECT_EQ(*eb.Ask(3).Wait(kGenerous), 3);  // b is untouched by a's shutdown
}

// --- parking ---------------------------------------------------------------------

TEST(ActorSystem, ParkedWorkersWakeForEveryMessageFromOutside) {
  ActorSystem sys({.workers = 2});
  Ref<Echo> e = sys.Spawn<Echo>();
  // Each round trip lets the workers run dry and park, so every ask goes
  // through the wake-up path.
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(*e.Ask(i).Wait(kGenerous), i);
}

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

TEST(ActorSystem, AnIdleSystemUsesUnderOnePercentOfACore) {
  ActorSystem sys({.workers = 2});
  Ref<Echo> e = sys.Spawn<Echo>();
  ASSERT_EQ(*e.Ask(1).Wait(kGenerous), 1);  // warm: workers ran and went idle
  // One-second windows of an idle system, up to three: a loaded machine
  // can delay the workers' last search before they park into the first
  // window, but a system that spins or polls uses its share in every one.
  double best = 1.0;
  for (int window = 0; window < 3 && best >= 0.01; ++window) {
    const double cpu_before = CpuSeconds();
    const absl::Time start = absl::Now();
    absl::SleepFor(absl::Seconds(1));  // the measurement itself
    const double cpu = CpuSeconds() - cpu_before;
    const double wall = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("idle system: %.3f%% of one core over %.2f s\n", 100 * cpu / wall, wall);
    best = std::min(best, cpu / wall);
  }
  EXPECT_LT(best, 0.01) << "the idle system used " << 100 * best << "% of a core in its quietest second";
}

}  // namespace
}  // namespace troupe
