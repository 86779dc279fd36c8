// The troupe side of the benchmark suite: the workloads of
// docs/benchmarks.md ("Workloads") written with troupe's own primitives —
// Tell, Ask, Reply for answers that come later, coroutine handlers, children
// spawned from handlers. The Savina workloads are in troupe_savina.cc.
//
// Each function builds its own ActorSystem, runs its workload once, checks
// the answer (a wrong one is an Internal error, never a figure) and returns
// its measurements. Timings start when the workload's first message is sent
// and end when its answer reaches the measuring thread; spawning the actors
// that do the work is part of the workload. Shutting the system down is not.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "bench/workload.h"

namespace troupe::bench {
namespace {

// How long the measuring thread waits for an answer. The suite kills a
// workload long before this; it matters only when run by hand.
constexpr absl::Duration kAnswerTimeout = absl::Minutes(5);

Measurement TimeFigure(absl::Duration elapsed) { return {"time", absl::ToDoubleSeconds(elapsed), "s", false}; }

Measurement ThroughputFigure(double messages, absl::Duration elapsed) {
  return {"throughput", messages / absl::ToDoubleSeconds(elapsed), "msg/s", true};
}

// Waits, outside the system, for the answer of `workload`.
template <class T>
absl::StatusOr<T> AwaitAnswer(Future<T> answer, absl::string_view workload) {
  absl::StatusOr<T> result = answer.Wait(kAnswerTimeout);
  if (!result.ok()) {
    return absl::InternalError(absl::StrCat(workload, ": no answer: ", result.status().ToString()));
  }
  return result;
}

absl::Status CheckPositive(absl::string_view flag, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be positive, got ", value));
}

// ---------------------------------------------------------------------------
// skynet: a tree of fan-out 10 whose leaves report their numbers; each inner
// node sums its children's reports, sends the sum up and stops.

struct SkynetGo {};  // to the root, asked from outside
struct SkynetSum {
  int64_t sum;
};

class SkynetNode : public Actor<SkynetNode> {
 public:
  // Covers leaves [first, first + leaves). The root has no parent.
  SkynetNode(Ref<SkynetNode> parent, int64_t first, int64_t leaves)
      : parent_(std::move(parent)), first_(first), leaves_(leaves) {}

  void OnStart() {
    if (parent_) Work();  // the root waits for its asker
  }
  void On(const SkynetGo&, Reply<int64_t> answer) {
    answer_.emplace(std::move(answer));
    Work();
  }
  void On(const SkynetSum& child) {
    sum_ += child.sum;
    if (--pending_ == 0) Report(sum_);
  }

 private:
  void Work() {
    if (leaves_ == 1) {
      Report(first_);
      return;
    }
    const int64_t per_child = leaves_ / 10;
    pending_ = 10;
    for (int i = 0; i < 10; ++i) Spawn<SkynetNode>(Self(), first_ + i * per_child, per_child);
  }
  void Report(int64_t value) {
    if (parent_) {
      parent_.Tell(SkynetSum{value});
    } else {
      answer_->Send(value);
    }
    Stop();
  }

  const Ref<SkynetNode> parent_;
  const int64_t first_;
  const int64_t leaves_;
  std::optional<Reply<int64_t>> answer_;  // the root's asker
  int64_t sum_ = 0;
  int pending_ = 0;
};

bool IsPowerOfTen(int64_t n) {
  while (n > 1 && n % 10 == 0) n /= 10;
  return n == 1;
}

// ---------------------------------------------------------------------------
// pingpong: a pinger serves a ball with a countdown to its ponger child,
// which sends it straight back.

struct Ball {
  int64_t left;  // round trips still to start after this one
};
struct Serve {
  int64_t round_trips;
};

class Pinger;

class Ponger : public Actor<Ponger> {
 public:
  explicit Ponger(Ref<Pinger> pinger) : pinger_(std::move(pinger)) {}
  void On(const Ball& ball);

 private:
  const Ref<Pinger> pinger_;
};

class Pinger : public Actor<Pinger> {
 public:
  // Answers with the round trips completed.
  void On(const Serve& serve, Reply<int64_t> done) {
    done_.emplace(std::move(done));
    ponger_ = Spawn<Ponger>(Self());
    ponger_.Tell(Ball{serve.round_trips - 1});
  }
  void On(const Ball& ball) {
    ++returned_;
    if (ball.left == 0) {
      done_->Send(returned_);
      done_.reset();
      return;
    }
    ponger_.Tell(Ball{ball.left - 1});
  }

 private:
  Ref<Ponger> ponger_;
  std::optional<Reply<int64_t>> done_;
  int64_t returned_ = 0;
};

void Ponger::On(const Ball& ball) { pinger_.Tell(ball); }

// ---------------------------------------------------------------------------
// fan-in: threads outside the system send integers to one counting actor.

struct Item {
  int64_t value;
};
struct Expect {
  int64_t items;
};
struct FanInTotals {
  int64_t items;
  uint64_t sum;  // wraps the same way as the expected sum
};

class FanInSink : public Actor<FanInSink> {
 public:
  // Answers once `items` have arrived.
  void On(const Expect& expect, Reply<FanInTotals> done) {
    expected_ = expect.items;
    done_.emplace(std::move(done));
    AnswerIfDone();
  }
  void On(const Item& item) {
    ++items_;
    sum_ += static_cast<uint64_t>(item.value);
    AnswerIfDone();
  }

 private:
  void AnswerIfDone() {
    if (done_ && items_ == expected_) {
      done_->Send(FanInTotals{items_, sum_});
      done_.reset();
    }
  }

  int64_t expected_ = -1;
  std::optional<Reply<FanInTotals>> done_;
  int64_t items_ = 0;
  uint64_t sum_ = 0;
};

// 1 + 2 + ... + n, modulo 2^64.
uint64_t SumUpTo(uint64_t n) { return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2); }

// ---------------------------------------------------------------------------
// spawn-idle: actors that wait for a message, then stop on it.

struct WakeUp {};

class Sleeper : public Actor<Sleeper> {
 public:
  void On(const WakeUp&) { Stop(); }
};

// ---------------------------------------------------------------------------
// ask-latency and idle-cpu: a server that answers each request.

struct Echo {
  int64_t n;
};

class EchoServer : public Actor<EchoServer> {
 public:
  int64_t On(const Echo& echo) { return echo.n + 1; }
};

struct Probe {
  Ref<EchoServer> server;
  int64_t warmup;
  int64_t samples;
};

class LatencyClient : public Actor<LatencyClient> {
 public:
  // Asks the server one request at a time; answers with the round-trip
  // times of the asks after the warm-up, in microseconds.
  Task<std::vector<double>> On(const Probe& probe) {
    std::vector<double> micros;
    micros.reserve(static_cast<size_t>(probe.samples));
    for (int64_t i = 0; i < probe.warmup + probe.samples; ++i) {
      const auto sent = std::chrono::steady_clock::now();
      Future<int64_t> reply = probe.server.Ask(Echo{i});
      const Result<int64_t> answer = co_await std::move(reply);
      const auto received = std::chrono::steady_clock::now();
      if (!answer.ok() || *answer != i + 1) {
        co_return absl::InternalError(absl::StrCat(
            "ask-latency: request ", i, " got ", answer.ok() ? absl::StrCat(*answer) : answer.status().ToString(),
            ", expected ", i + 1));
      }
      if (i >= probe.warmup) micros.push_back(std::chrono::duration<double, std::micro>(received - sent).count());
    }
    co_return std::move(micros);
  }
};

constexpr int64_t kAskWarmup = 1000;

// ---------------------------------------------------------------------------
// ask-under-load: the ask-latency probe while spinners keep the workers
// busy. A pacer thread outside the system tells Spin messages round robin to
// the spinners; each costs a fixed amount of arithmetic (well under a
// microsecond). First the pacer sends as fast as the backlog bound lets it,
// which measures the system's saturated rate; then it paces at
// Sizes::ask_load_percent of that rate while the probe runs.

struct Spin {};

class Spinner : public Actor<Spinner> {
 public:
  explicit Spinner(std::atomic<int64_t>* handled) : handled_(handled) {}
  void On(const Spin&) {
    uint64_t x = state_;
    for (int i = 0; i < 256; ++i) x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ull + 1;
    state_ = x;
    handled_->fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t>* const handled_;
  uint64_t state_ = 1;
};

// Spin messages sent but not yet handled, at most: about 10 ms of work, so a
// pacer that sleeps between rounds never lets the spinners run dry.
constexpr int64_t kSpinBacklog = 20000;

class Pacer {
 public:
  // Paces at `rate` messages per second; 0: as fast as the backlog allows.
  Pacer(const std::vector<Ref<Spinner>>& spinners, const std::atomic<int64_t>& handled, double rate)
      : spinners_(spinners), handled_(handled), rate_(rate), thread_([this] { Run(); }) {}
  ~Pacer() { Stop(); }
  void Stop() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }
  int64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    const auto start = std::chrono::steady_clock::now();
    int64_t sent = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const double due = rate_ > 0 ? rate_ * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                                   : static_cast<double>(INT64_MAX);
      while (static_cast<double>(sent) < due && sent - handled_.load(std::memory_order_relaxed) < kSpinBacklog) {
        spinners_[static_cast<size_t>(sent) % spinners_.size()].Tell(Spin{});
        ++sent;
      }
      sent_.store(sent, std::memory_order_relaxed);
      // Pacing, not synchronizing: the next round sends what fell due.
      absl::SleepFor(absl::Microseconds(100));
    }
  }

  const std::vector<Ref<Spinner>>& spinners_;
  const std::atomic<int64_t>& handled_;
  const double rate_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> sent_{0};
  std::thread thread_;
};

// Waits until the spinners have handled all `sent` messages.
absl::Status AwaitHandled(const std::atomic<int64_t>& handled, int64_t sent) {
  const absl::Time deadline = absl::Now() + kAnswerTimeout;
  while (handled.load(std::memory_order_relaxed) < sent) {
    if (absl::Now() > deadline) {
      return absl::InternalError(absl::StrCat("ask-under-load: ", handled.load(), " of ", sent, " spins handled"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeSkynet(const Sizes& sizes) {
  const int64_t leaves = sizes.skynet_leaves;
  if (leaves < 1 || !IsPowerOfTen(leaves)) {
    return absl::InvalidArgumentError(absl::StrCat("--skynet_leaves must be a power of 10, got ", leaves));
  }
  ActorSystem sys({.workers = sizes.workers});
  std::optional<PeakSampler> live;
  if (sizes.skynet_sample_live) live.emplace([&sys] { return sys.core().live_actors(); }, absl::Microseconds(500));
  const absl::Time start = absl::Now();
  Ref<SkynetNode> root = sys.Spawn<SkynetNode>(Ref<SkynetNode>(), 0, leaves);
  absl::StatusOr<int64_t> sum = AwaitAnswer(root.Ask(SkynetGo{}), "skynet");
  const absl::Duration elapsed = absl::Now() - start;
  if (!sum.ok()) return sum.status();
  const int64_t expected = leaves * (leaves - 1) / 2;
  if (*sum != expected) {
    return absl::InternalError(absl::StrCat("skynet: the sum is ", *sum, ", expected ", expected));
  }
  std::vector<Measurement> figures{TimeFigure(elapsed)};
  if (live) figures.push_back({"peak_live_actors", static_cast<double>(live->Stop()), "actors", false});
  return figures;
}

absl::StatusOr<std::vector<Measurement>> TroupePingPong(const Sizes& sizes) {
  const int64_t round_trips = sizes.pingpong_round_trips;
  if (absl::Status s = CheckPositive("pingpong_round_trips", round_trips); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<Pinger> pinger = sys.Spawn<Pinger>();
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> done = AwaitAnswer(pinger.Ask(Serve{round_trips}), "pingpong");
  const absl::Duration elapsed = absl::Now() - start;
  if (!done.ok()) return done.status();
  if (*done != round_trips) {
    return absl::InternalError(absl::StrCat("pingpong: ", *done, " round trips counted, expected ", round_trips));
  }
  return std::vector<Measurement>{ThroughputFigure(2.0 * static_cast<double>(round_trips), elapsed),
                                  TimeFigure(elapsed)};
}

absl::StatusOr<std::vector<Measurement>> TroupePingPongPairs(const Sizes& sizes) {
  const int pairs = sizes.pingpong_pairs;
  const int64_t round_trips = sizes.pingpong_pairs_round_trips;
  if (absl::Status s = CheckPositive("pingpong_pairs", pairs); !s.ok()) return s;
  if (absl::Status s = CheckPositive("pingpong_pairs_round_trips", round_trips); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  std::vector<Ref<Pinger>> pingers;
  pingers.reserve(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs; ++i) pingers.push_back(sys.Spawn<Pinger>());
  const absl::Time start = absl::Now();
  std::vector<Future<int64_t>> done;
  done.reserve(pingers.size());
  for (const Ref<Pinger>& pinger : pingers) done.push_back(pinger.Ask(Serve{round_trips}));
  absl::StatusOr<std::vector<Result<int64_t>>> all = AwaitAnswer(WhenAll(std::move(done)), "pingpong-pairs");
  const absl::Duration elapsed = absl::Now() - start;
  if (!all.ok()) return all.status();
  for (size_t i = 0; i < all->size(); ++i) {
    const Result<int64_t>& pair = (*all)[i];
    if (!pair.ok() || *pair != round_trips) {
      return absl::InternalError(absl::StrCat("pingpong-pairs: pair ", i, " ended with ",
                                              pair.ok() ? absl::StrCat(*pair) : pair.status().ToString(),
                                              ", expected ", round_trips, " round trips"));
    }
  }
  const double messages = 2.0 * static_cast<double>(round_trips) * pairs;
  return std::vector<Measurement>{ThroughputFigure(messages, elapsed), TimeFigure(elapsed)};
}

absl::StatusOr<std::vector<Measurement>> TroupeFanIn(const Sizes& sizes) {
  const int senders = sizes.fanin_senders;
  const int64_t per_sender = sizes.fanin_messages;
  if (absl::Status s = CheckPositive("fanin_senders", senders); !s.ok()) return s;
  if (absl::Status s = CheckPositive("fanin_messages", per_sender); !s.ok()) return s;
  const int64_t total = per_sender * senders;
  ActorSystem sys({.workers = sizes.workers});
  Ref<FanInSink> sink = sys.Spawn<FanInSink>();
  // Asked before any item is sent, so it is first in the sink's mailbox.
  Future<FanInTotals> totals = sink.Ask(Expect{total});

  // Sender s sends s * per_sender + 1 ... (s + 1) * per_sender: together
  // every number from 1 to total once.
  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(senders));
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&sink, &go, first = s * per_sender + 1, per_sender] {
      go.wait();
      for (int64_t i = 0; i < per_sender; ++i) sink.Tell(Item{first + i});
    });
  }
  const absl::Time start = absl::Now();
  go.count_down();
  absl::StatusOr<FanInTotals> got = AwaitAnswer(std::move(totals), "fan-in");
  const absl::Duration elapsed = absl::Now() - start;
  for (std::thread& t : threads) t.join();
  if (!got.ok()) return got.status();
  const uint64_t expected_sum = SumUpTo(static_cast<uint64_t>(total));
  if (got->items != total || got->sum != expected_sum) {
    return absl::InternalError(absl::StrCat("fan-in: received ", got->items, " items summing to ", got->sum,
                                            ", expected ", total, " summing to ", expected_sum));
  }
  return std::vector<Measurement>{ThroughputFigure(static_cast<double>(total), elapsed), TimeFigure(elapsed)};
}

absl::StatusOr<std::vector<Measurement>> TroupeSpawnIdle(const Sizes& sizes) {
  const int64_t count = sizes.spawn_idle_actors;
  if (absl::Status s = CheckPositive("spawn_idle_actors", count); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  // Value-initialized, so its pages are resident before the baseline and
  // only the actors' own memory counts as growth.
  std::vector<Ref<Sleeper>> sleepers(static_cast<size_t>(count));
  const size_t resident_before = ResidentBytes();
  const absl::Time start = absl::Now();
  for (Ref<Sleeper>& sleeper : sleepers) sleeper = sys.Spawn<Sleeper>();
  const absl::Duration elapsed = absl::Now() - start;
  const size_t resident_after = ResidentBytes();

  const ActorSystemStats spawned = sys.stats();
  if (spawned.spawned != static_cast<uint64_t>(count) || spawned.live != static_cast<uint64_t>(count)) {
    return absl::InternalError(absl::StrCat("spawn-idle: ", spawned.spawned, " spawned and ", spawned.live,
                                            " live after spawning ", count));
  }
  for (const Ref<Sleeper>& sleeper : sleepers) sleeper.Tell(WakeUp{});
  const absl::Time give_up = absl::Now() + kAnswerTimeout;
  while (sys.stats().live > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  const ActorSystemStats stopped = sys.stats();
  if (stopped.live != 0 || stopped.dead_letters != 0) {
    return absl::InternalError(absl::StrCat("spawn-idle: ", stopped.live, " of ", count,
                                            " actors still live after waking them all (", stopped.dead_letters,
                                            " dead letters)"));
  }
  const double growth =
      resident_after > resident_before ? static_cast<double>(resident_after - resident_before) : 0.0;
  return std::vector<Measurement>{
      {"spawn_time", absl::ToDoubleSeconds(elapsed), "s", false},
      {"bytes_per_actor", growth / static_cast<double>(count), "B", false},
  };
}

absl::StatusOr<std::vector<Measurement>> TroupeAskLatency(const Sizes& sizes) {
  const int64_t samples = sizes.ask_latency_samples;
  if (absl::Status s = CheckPositive("ask_latency_samples", samples); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<EchoServer> server = sys.Spawn<EchoServer>();
  Ref<LatencyClient> client = sys.Spawn<LatencyClient>();
  absl::StatusOr<std::vector<double>> micros =
      AwaitAnswer(client.Ask(Probe{server, kAskWarmup, samples}), "ask-latency");
  if (!micros.ok()) return micros.status();
  return LatencyFigures("ask-latency", *micros, samples);
}

absl::StatusOr<std::vector<Measurement>> TroupeAskUnderLoad(const Sizes& sizes) {
  const int64_t samples = sizes.ask_latency_samples;
  const int load = sizes.ask_load_percent;
  if (absl::Status s = CheckPositive("ask_latency_samples", samples); !s.ok()) return s;
  if (load < 0 || load >= 100) {
    return absl::InvalidArgumentError(absl::StrCat("--ask_load_percent must be in [0, 100), got ", load));
  }
  ActorSystem sys({.workers = sizes.workers});
  std::atomic<int64_t> handled{0};
  std::vector<Ref<Spinner>> spinners;
  for (int i = 0; i < 16; ++i) spinners.push_back(sys.Spawn<Spinner>(&handled));

  // The saturated rate: 0.2 s to fill the backlog, then 1 s measured.
  double saturated = 0;
  {
    Pacer flat_out(spinners, handled, 0);
    absl::SleepFor(absl::Milliseconds(200));
    const int64_t first = handled.load();
    const auto start = std::chrono::steady_clock::now();
    absl::SleepFor(absl::Seconds(1));
    saturated = static_cast<double>(handled.load() - first) /
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    flat_out.Stop();
    if (absl::Status s = AwaitHandled(handled, flat_out.sent()); !s.ok()) return s;
  }

  Ref<EchoServer> server = sys.Spawn<EchoServer>();
  Ref<LatencyClient> client = sys.Spawn<LatencyClient>();
  std::optional<Pacer> pacer;
  const int64_t handled_before = handled.load();
  const auto start = std::chrono::steady_clock::now();
  if (load > 0) pacer.emplace(spinners, handled, saturated * load / 100);
  absl::StatusOr<std::vector<double>> micros =
      AwaitAnswer(client.Ask(Probe{server, kAskWarmup, samples}), "ask-under-load");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t handled_during = handled.load() - handled_before;
  if (pacer.has_value()) {
    pacer->Stop();
    if (absl::Status s = AwaitHandled(handled, handled_before + pacer->sent()); !s.ok()) return s;
  }
  if (!micros.ok()) return micros.status();
  absl::StatusOr<std::vector<Measurement>> figures = LatencyFigures("ask-under-load", *micros, samples);
  if (!figures.ok()) return figures;
  figures->push_back({"saturated", saturated, "msg/s", true});
  // The load the probe actually ran under, in % of the saturated rate.
  figures->push_back({"load", 100.0 * static_cast<double>(handled_during) / seconds / saturated, "%", false});
  return figures;
}

absl::StatusOr<std::vector<Measurement>> TroupeIdleCpu(const Sizes& sizes) {
  if (!(sizes.idle_seconds > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--idle_seconds must be positive, got ", sizes.idle_seconds));
  }
  ActorSystem sys({.workers = sizes.workers});
  Ref<EchoServer> idle = sys.Spawn<EchoServer>();
  absl::StatusOr<int64_t> warm = AwaitAnswer(idle.Ask(Echo{41}), "idle-cpu");
  if (!warm.ok()) return warm.status();
  if (*warm != 42) return absl::InternalError(absl::StrCat("idle-cpu: the warm-up ask got ", *warm, ", expected 42"));
  const double cpu_before = CpuSeconds();
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(sizes.idle_seconds));
  const double cpu = CpuSeconds() - cpu_before;
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  return std::vector<Measurement>{{"cpu", 100.0 * cpu / wall, "%", false}};
}

}  // namespace troupe::bench
