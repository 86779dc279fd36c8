// The CAF 0.17 side of the benchmark suite: skynet, the ping-pongs, fan-in,
// spawn-idle, ask-latency and idle-cpu. The Savina workloads are in
// caf_savina.cc. The logic of each follows the table in docs/benchmarks.md,
// as troupe_workloads.cc does for troupe, written the way CAF is meant to be
// used: function-based event_based_actor / stateful_actor behaviors, `send`,
// `request(...).then`, response promises, and a `scoped_actor` as the driver.
//
// As on the troupe side, timings start when the workload's first message is
// sent and end when its answer reaches the measuring thread; spawning the
// actors that do the work is part of the workload, stopping them and
// shutting the system down is not.
//
// A reply that a handler returns goes back to the sender of the message,
// whether it came with `request` or with a plain `send` (then it arrives as
// an ordinary message); the workloads use both forms.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/caf_common.h"
#include "bench/workload.h"
#include "caf/all.hpp"

namespace troupe::bench {
namespace {

using caf_side::BallAtom;
using caf_side::CafConfig;
using caf_side::CafError;
using caf_side::Clock;
using caf_side::GoAtom;
using caf_side::PingAtom;
using caf_side::RunRttClient;
using caf_side::SecondsSince;
using caf_side::ThroughputMetric;
using caf_side::TimeMetric;
using caf_side::WaitAtom;
using caf_side::WakeAtom;

// -- skynet -------------------------------------------------------------------

struct SkynetState {
  caf::actor parent;            // null at the root
  caf::response_promise asker;  // the root's asker
  int64_t sum = 0;
  int pending = 0;
};

using SkynetActor = caf::stateful_actor<SkynetState>;

caf::behavior SkynetNode(SkynetActor* self, caf::actor parent, int64_t num, int64_t size);

// Spawns the 10 children of the actor that stands for leaves [num, num+size).
void SkynetSplit(SkynetActor* self, int64_t num, int64_t size) {
  const int64_t child = size / 10;
  self->state.pending = 10;
  for (int i = 0; i < 10; ++i) {
    self->spawn(SkynetNode, caf::actor_cast<caf::actor>(self), num + i * child, child);
  }
}

// A child's partial sum; after the 10th the sum goes up and the actor stops.
void SkynetAdd(SkynetActor* self, int64_t partial) {
  SkynetState& st = self->state;
  st.sum += partial;
  if (--st.pending > 0) return;
  if (st.asker.pending()) {
    st.asker.deliver(st.sum);
  } else {
    self->send(st.parent, st.sum);
  }
  self->quit();
}

caf::behavior SkynetNode(SkynetActor* self, caf::actor parent, int64_t num, int64_t size) {
  if (size == 1) {
    self->send(parent, num);
    return {};  // no behavior: the leaf stops
  }
  self->state.parent = std::move(parent);
  SkynetSplit(self, num, size);
  return {
      [=](int64_t partial) { SkynetAdd(self, partial); },
  };
}

caf::behavior SkynetRoot(SkynetActor* self) {
  return {
      [=](GoAtom, int64_t leaves) {
        self->state.asker = self->make_response_promise();
        if (leaves == 1) {  // the root is the only leaf, number 0
          self->state.asker.deliver(int64_t{0});
          self->quit();
          return;
        }
        SkynetSplit(self, 0, leaves);
      },
      [=](int64_t partial) { SkynetAdd(self, partial); },
  };
}

bool IsPowerOfTen(int64_t n) {
  while (n > 1 && n % 10 == 0) n /= 10;
  return n == 1;
}

// -- pingpong and pingpong-pairs ----------------------------------------------

caf::behavior Pong(caf::event_based_actor*) {
  return {
      [](BallAtom, int64_t left) { return std::make_tuple(BallAtom::value, left); },
  };
}

struct PingState {
  caf::actor pong;
  int64_t returned = 0;
  caf::response_promise done;
};

// On GoAtom(n) spawns its pong (linked, so it stops with the ping) and
// serves the ball with a countdown of the round trips still to start after
// this one; answers with the round trips completed when it comes back at 0.
caf::behavior Ping(caf::stateful_actor<PingState>* self) {
  return {
      [=](GoAtom, int64_t round_trips) {
        PingState& st = self->state;
        st.done = self->make_response_promise();
        st.pong = self->spawn<caf::linked>(Pong);
        self->send(st.pong, BallAtom::value, round_trips - 1);
      },
      [=](BallAtom, int64_t left) {
        PingState& st = self->state;
        ++st.returned;
        if (left == 0) {
          st.done.deliver(st.returned);
          return;
        }
        self->send(st.pong, BallAtom::value, left - 1);
      },
  };
}

// -- fan-in -------------------------------------------------------------------

struct SinkState {
  int64_t expected = -1;
  int64_t items = 0;
  uint64_t sum = 0;  // wraps the same way as the expected sum
  caf::response_promise done;
};

void AnswerIfDone(caf::stateful_actor<SinkState>* self) {
  SinkState& st = self->state;
  if (st.done.pending() && st.items == st.expected) st.done.deliver(st.items, st.sum);
}

// Counts and sums integers; answers WaitAtom(n) once n have arrived.
caf::behavior Sink(caf::stateful_actor<SinkState>* self) {
  return {
      [=](WaitAtom, int64_t expected) {
        self->state.expected = expected;
        self->state.done = self->make_response_promise();
        AnswerIfDone(self);
      },
      [=](int64_t item) {
        ++self->state.items;
        self->state.sum += static_cast<uint64_t>(item);
        AnswerIfDone(self);
      },
  };
}

// 1 + 2 + ... + n, modulo 2^64.
uint64_t SumUpTo(uint64_t n) { return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2); }

// -- spawn-idle, ask-latency, idle-cpu ----------------------------------------

// Waits for a message, then stops on it; counts itself in `started` when it
// first runs (CAF runs a new actor's first turn on the scheduler).
caf::behavior Sleeper(caf::event_based_actor* self, std::atomic<int64_t>* started) {
  // Relaxed: a plain count; nothing is published through it.
  started->fetch_add(1, std::memory_order_relaxed);
  return {
      [=](WakeAtom) { self->quit(); },
  };
}

// Answers x with x + 1.
caf::behavior Server(caf::event_based_actor*) {
  return {
      [](PingAtom, int64_t x) { return x + 1; },
  };
}

struct ClientState {
  caf::actor server;
  int64_t warmup = 0;
  int64_t total = 0;  // warm-up asks and samples
  int64_t next = 0;   // the next request's value
  int64_t mismatches = 0;
  std::vector<double> micros;
  caf::response_promise done;
};

using ClientActor = caf::stateful_actor<ClientState>;

// One request to the server, timed from before `request` to the response
// handler; the next starts from the handler.
void AskOnce(ClientActor* self) {
  const int64_t x = self->state.next++;
  const Clock::time_point start = Clock::now();
  self->request(self->state.server, caf::infinite, PingAtom::value, x).then([=](int64_t reply) {
    const double micros = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    ClientState& st = self->state;
    if (reply != x + 1) ++st.mismatches;
    if (x >= st.warmup) st.micros.push_back(micros);
    if (st.next < st.total) {
      AskOnce(self);
    } else {
      st.done.deliver(st.mismatches, std::move(st.micros));
    }
  });
}

caf::behavior Client(ClientActor* self, caf::actor server, int64_t warmup, int64_t samples) {
  ClientState& st = self->state;
  st.server = std::move(server);
  st.warmup = warmup;
  st.total = warmup + samples;
  st.micros.reserve(samples);
  return {
      [=](GoAtom) {
        self->state.done = self->make_response_promise();
        AskOnce(self);
      },
  };
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> CafSkynet(const Sizes& sizes) {
  const int64_t leaves = sizes.skynet_leaves;
  if (leaves < 1 || !IsPowerOfTen(leaves)) {
    return absl::InvalidArgumentError(absl::StrCat("skynet: leaves must be a power of 10, got ", leaves));
  }
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  absl::Status status;
  int64_t sum = -1;
  // CAF's count of running actors includes the scoped actor.
  std::optional<PeakSampler> live;
  if (sizes.skynet_sample_live) live.emplace([&sys] { return sys.registry().running(); }, absl::Microseconds(500));
  const Clock::time_point start = Clock::now();
  self->request(self->spawn(SkynetRoot), caf::infinite, GoAtom::value, leaves)
      .receive([&](int64_t s) { sum = s; },
               [&](caf::error& err) { status = CafError(sys, "skynet: the root failed", err); });
  const double seconds = SecondsSince(start);
  if (!status.ok()) return status;
  const int64_t expected = leaves * (leaves - 1) / 2;
  if (sum != expected) {
    return absl::InternalError(absl::StrCat("skynet: sum ", sum, ", expected ", expected));
  }
  std::vector<Measurement> figures{TimeMetric(seconds)};
  if (live) figures.push_back({"peak_live_actors", static_cast<double>(live->Stop()), "actors", false});
  return figures;
}

absl::StatusOr<std::vector<Measurement>> CafPingPong(const Sizes& sizes) {
  const int64_t round_trips = sizes.pingpong_round_trips;
  if (round_trips <= 0) return absl::InvalidArgumentError("pingpong: round trips must be positive");
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  const caf::actor ping = self->spawn(Ping);
  absl::Status status;
  int64_t done = -1;
  const Clock::time_point start = Clock::now();
  self->request(ping, caf::infinite, GoAtom::value, round_trips)
      .receive([&](int64_t n) { done = n; },
               [&](caf::error& err) { status = CafError(sys, "pingpong: no answer", err); });
  const double seconds = SecondsSince(start);
  self->send_exit(ping, caf::exit_reason::user_shutdown);
  if (!status.ok()) return status;
  if (done != round_trips) {
    return absl::InternalError(absl::StrCat("pingpong: ", done, " round trips counted, expected ", round_trips));
  }
  return std::vector<Measurement>{ThroughputMetric(2.0 * static_cast<double>(round_trips), seconds),
                                  TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafPingPongPairs(const Sizes& sizes) {
  const int pairs = sizes.pingpong_pairs;
  const int64_t round_trips = sizes.pingpong_pairs_round_trips;
  if (pairs <= 0 || round_trips <= 0) {
    return absl::InvalidArgumentError("pingpong-pairs: pairs and round trips must be positive");
  }
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  std::vector<caf::actor> pings;
  pings.reserve(pairs);
  for (int i = 0; i < pairs; ++i) pings.push_back(self->spawn(Ping));
  int wrong = 0;
  const Clock::time_point start = Clock::now();
  // A plain send: each ping's response promise answers it with an ordinary
  // message, so one receive loop collects them in any order.
  for (const caf::actor& ping : pings) self->send(ping, GoAtom::value, round_trips);
  int finished = 0;
  self->receive_for(finished, pairs)([&](int64_t n) {
    if (n != round_trips) ++wrong;
  });
  const double seconds = SecondsSince(start);
  for (const caf::actor& ping : pings) self->send_exit(ping, caf::exit_reason::user_shutdown);
  if (wrong != 0) {
    return absl::InternalError(
        absl::StrCat("pingpong-pairs: ", wrong, " of ", pairs, " pairs did not count ", round_trips, " round trips"));
  }
  const double messages = 2.0 * static_cast<double>(round_trips) * pairs;
  return std::vector<Measurement>{ThroughputMetric(messages, seconds), TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafFanIn(const Sizes& sizes) {
  const int senders = sizes.fanin_senders;
  const int64_t per_sender = sizes.fanin_messages;
  if (senders <= 0 || per_sender <= 0) {
    return absl::InvalidArgumentError("fan-in: senders and messages must be positive");
  }
  const int64_t total = senders * per_sender;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  const caf::actor sink = self->spawn(Sink);
  // Sent before any item, so it is first in the sink's mailbox; the answer
  // comes once every item has arrived.
  self->send(sink, WaitAtom::value, total);

  // Sender s sends s * per_sender + 1 ... (s + 1) * per_sender with
  // anon_send, from outside the actor system: together every number from 1
  // to total once.
  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(senders);
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&sink, &go, first = s * per_sender + 1, per_sender] {
      go.wait();
      for (int64_t i = 0; i < per_sender; ++i) caf::anon_send(sink, first + i);
    });
  }
  int64_t items = -1;
  uint64_t sum = 0;
  const Clock::time_point start = Clock::now();
  go.count_down();
  self->receive([&](int64_t n, uint64_t s) {
    items = n;
    sum = s;
  });
  const double seconds = SecondsSince(start);
  for (std::thread& t : threads) t.join();
  self->send_exit(sink, caf::exit_reason::user_shutdown);
  const uint64_t expected_sum = SumUpTo(static_cast<uint64_t>(total));
  if (items != total || sum != expected_sum) {
    return absl::InternalError(absl::StrCat("fan-in: received ", items, " items summing to ", sum, ", expected ",
                                            total, " summing to ", expected_sum));
  }
  return std::vector<Measurement>{ThroughputMetric(static_cast<double>(total), seconds), TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafSpawnIdle(const Sizes& sizes) {
  const int64_t count = sizes.spawn_idle_actors;
  if (count <= 0) return absl::InvalidArgumentError("spawn-idle: actors must be positive");
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  std::atomic<int64_t> started{0};
  // Sized (so its pages are resident) before the baseline: only the actors'
  // own memory counts as growth.
  std::vector<caf::actor> sleepers(count);
  const size_t resident_before = ResidentBytes();
  const Clock::time_point start = Clock::now();
  for (caf::actor& sleeper : sleepers) sleeper = sys.spawn(Sleeper, &started);
  // Spawned means waiting for a message: every actor has had its first turn.
  while (started.load(std::memory_order_relaxed) < count) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  const double seconds = SecondsSince(start);
  const size_t resident_after = ResidentBytes();

  const size_t running = sys.registry().running();
  if (running != static_cast<size_t>(count)) {
    for (const caf::actor& sleeper : sleepers) caf::anon_send_exit(sleeper, caf::exit_reason::user_shutdown);
    return absl::InternalError(absl::StrCat("spawn-idle: ", running, " running after spawning ", count));
  }
  for (caf::actor& sleeper : sleepers) {
    caf::anon_send(sleeper, WakeAtom::value);
    sleeper = nullptr;
  }
  sys.await_all_actors_done();
  if (const size_t left = sys.registry().running(); left != 0) {
    return absl::InternalError(absl::StrCat("spawn-idle: ", left, " of ", count, " still running after waking all"));
  }
  const double growth =
      resident_after > resident_before ? static_cast<double>(resident_after - resident_before) : 0.0;
  return std::vector<Measurement>{
      {"spawn_time", seconds, "s", false},
      {"bytes_per_actor", growth / static_cast<double>(count), "B", false},
  };
}

absl::StatusOr<std::vector<Measurement>> CafAskLatency(const Sizes& sizes) {
  constexpr int64_t kWarmup = 1000;
  const int64_t samples = sizes.ask_latency_samples;
  if (samples <= 0) return absl::InvalidArgumentError("ask-latency: samples must be positive");
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  const caf::actor server = self->spawn(Server);
  const caf::actor client = self->spawn(Client, server, kWarmup, samples);
  absl::StatusOr<std::vector<double>> micros = RunRttClient(sys, self, client, samples, "ask-latency");
  self->send_exit(server, caf::exit_reason::user_shutdown);
  if (!micros.ok()) return micros.status();
  const double p50 = Percentile(*micros, 0.50);
  const double p99 = Percentile(*micros, 0.99);
  return std::vector<Measurement>{{"p50", p50, "us", false}, {"p99", p99, "us", false}};
}

absl::StatusOr<std::vector<Measurement>> CafIdleCpu(const Sizes& sizes) {
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  const caf::actor server = self->spawn(Server);
  absl::Status status;
  int64_t reply = -1;
  self->request(server, caf::infinite, PingAtom::value, int64_t{41})
      .receive([&](int64_t r) { reply = r; },
               [&](caf::error& err) { status = CafError(sys, "idle-cpu: the warm-up request failed", err); });
  if (status.ok() && reply != 42) status = absl::InternalError(absl::StrCat("idle-cpu: warm-up reply ", reply));
  if (!status.ok()) {
    self->send_exit(server, caf::exit_reason::user_shutdown);
    return status;
  }
  const double cpu_before = CpuSeconds();
  const Clock::time_point start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(sizes.idle_seconds));
  const double cpu = CpuSeconds() - cpu_before;
  const double seconds = SecondsSince(start);
  self->send_exit(server, caf::exit_reason::user_shutdown);
  return std::vector<Measurement>{{"cpu", 100.0 * cpu / seconds, "%", false}};
}

}  // namespace troupe::bench
