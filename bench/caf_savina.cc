// The CAF 0.17 side of the suite's Savina workloads (docs/benchmarks.md,
// "Workloads"): fork-join throughput and creation, thread ring, chameneos
// and big. The other workloads, and the conventions, are in caf_workloads.cc.
//
// As on the troupe side (troupe_savina.cc), each workload has a driver
// actor: the measuring thread's scoped_actor requests it to run, the driver
// spawns the workload's actors, and it answers through a response promise
// once every actor has reported; it then stops whatever it spawned that is
// still running, and itself. Timings run from the request to the answer.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/caf_common.h"
#include "bench/workload.h"
#include "caf/all.hpp"

namespace troupe::bench {
namespace {

using caf_side::CafConfig;
using caf_side::ChangeAtom;
using caf_side::Clock;
using caf_side::DoneAtom;
using caf_side::FadedAtom;
using caf_side::GoAtom;
using caf_side::MeetAtom;
using caf_side::MeetMeAtom;
using caf_side::NextAtom;
using caf_side::PingAtom;
using caf_side::PongAtom;
using caf_side::SecondsSince;
using caf_side::TimeMetric;
using caf_side::TokenAtom;
using caf_side::WorkAtom;

absl::Status CheckAtLeast(absl::string_view what, int64_t value, int64_t least) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " must be at least ", least, ", got ", value));
}

// Requests `driver` to run with `args` and waits for the answer, which goes
// to `on_answer`; `seconds` is the time from the request to the answer.
template <class OnAnswer, class... Args>
absl::Status Drive(caf::actor_system& sys, const caf::actor& driver, absl::string_view workload, double& seconds,
                   OnAnswer on_answer, Args... args) {
  caf::scoped_actor self(sys);
  absl::Status status;
  const Clock::time_point start = Clock::now();
  self->request(driver, caf::infinite, GoAtom::value, args...)
      .receive(std::move(on_answer), [&](caf::error& err) {
        status = absl::InternalError(absl::StrCat(workload, ": no answer: ", sys.render(err)));
      });
  seconds = SecondsSince(start);
  return status;
}

// -- fork-join ----------------------------------------------------------------

// The fork-join workloads' small computation on one message's value.
double Compute(double x) { return std::sqrt(x) * std::sin(x) + std::cos(x); }

// The value message `i` carries.
double ValueOf(int64_t i) { return static_cast<double>(i + 1); }

bool NearlyEqual(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); }

struct ForkJoinWorkerState {
  int64_t seen = 0;
  double accumulated = 0;
};

// Accumulates the computation over its messages; after the `expected`-th it
// reports (index, seen, accumulated) to the driver and stops.
caf::behavior ForkJoinWorker(caf::stateful_actor<ForkJoinWorkerState>* self, caf::actor driver, int index,
                             int64_t expected) {
  return {
      [=](WorkAtom, int64_t i) {
        ForkJoinWorkerState& st = self->state;
        st.accumulated += Compute(ValueOf(i));
        if (++st.seen < expected) return;
        self->send(driver, DoneAtom::value, index, st.seen, st.accumulated);
        self->quit();
      },
  };
}

struct ForkJoinDriverState {
  caf::response_promise done;
  int reported = 0;
  std::vector<int64_t> seen;  // per worker
  std::vector<double> accumulated;
};

// Sends every worker the same numbered messages, message i to all before
// i + 1 (Savina's order); answers with each worker's (seen, accumulated).
caf::behavior ForkJoinDriver(caf::stateful_actor<ForkJoinDriverState>* self) {
  return {
      [=](GoAtom, int workers, int64_t messages) {
        ForkJoinDriverState& st = self->state;
        st.done = self->make_response_promise();
        st.seen.assign(workers, -1);
        st.accumulated.assign(workers, 0);
        std::vector<caf::actor> spawned;
        spawned.reserve(workers);
        for (int w = 0; w < workers; ++w) {
          spawned.push_back(self->spawn(ForkJoinWorker, caf::actor_cast<caf::actor>(self), w, messages));
        }
        for (int64_t i = 0; i < messages; ++i) {
          for (const caf::actor& worker : spawned) self->send(worker, WorkAtom::value, i);
        }
      },
      [=](DoneAtom, int index, int64_t seen, double accumulated) {
        ForkJoinDriverState& st = self->state;
        st.seen[index] = seen;
        st.accumulated[index] = accumulated;
        if (++st.reported < static_cast<int>(st.seen.size())) return;
        st.done.deliver(std::move(st.seen), std::move(st.accumulated));
        self->quit();
      },
  };
}

// One message, the computation, the reply, and the actor stops.
caf::behavior CreationWorker(caf::event_based_actor* self) {
  return {
      [=](WorkAtom, int64_t i) {
        self->quit();
        return std::make_tuple(DoneAtom::value, i, Compute(ValueOf(i)));
      },
  };
}

struct CreationDriverState {
  caf::response_promise done;
  std::vector<bool> answered;
  int64_t replies = 0;
  int64_t duplicates = 0;
  double sum = 0;
};

// Spawns one worker per message; answers with (replies, duplicates, sum).
caf::behavior CreationDriver(caf::stateful_actor<CreationDriverState>* self) {
  return {
      [=](GoAtom, int64_t actors) {
        CreationDriverState& st = self->state;
        st.done = self->make_response_promise();
        st.answered.assign(actors, false);
        for (int64_t i = 0; i < actors; ++i) self->send(self->spawn(CreationWorker), WorkAtom::value, i);
      },
      [=](DoneAtom, int64_t i, double value) {
        CreationDriverState& st = self->state;
        if (st.answered[i]) {
          ++st.duplicates;
        } else {
          st.answered[i] = true;
          ++st.replies;
          st.sum += value;
        }
        if (st.replies < static_cast<int64_t>(st.answered.size())) return;
        st.done.deliver(st.replies, st.duplicates, st.sum);
        self->quit();
      },
  };
}

// -- thread ring --------------------------------------------------------------

struct RingMemberState {
  caf::actor next;
};

// Passes the token (hops still to make, hops made) on; the member that gets
// it at 0 reports (index, hops made) to the driver.
caf::behavior RingMember(caf::stateful_actor<RingMemberState>* self, caf::actor driver, int index) {
  return {
      [=](NextAtom, caf::actor next) { self->state.next = std::move(next); },
      [=](TokenAtom, int64_t left, int64_t hops) {
        if (left == 0) {
          self->send(driver, DoneAtom::value, index, hops);
        } else {
          self->send(self->state.next, TokenAtom::value, left - 1, hops + 1);
        }
      },
  };
}

struct RingDriverState {
  caf::response_promise done;
  std::vector<caf::actor> ring;
};

caf::behavior RingDriver(caf::stateful_actor<RingDriverState>* self) {
  return {
      [=](GoAtom, int members, int64_t hops) {
        RingDriverState& st = self->state;
        st.done = self->make_response_promise();
        for (int m = 0; m < members; ++m) st.ring.push_back(self->spawn(RingMember, caf::actor_cast<caf::actor>(self), m));
        // Each link is in its member's mailbox before the token can get there.
        for (size_t m = 0; m < st.ring.size(); ++m) self->send(st.ring[m], NextAtom::value, st.ring[(m + 1) % st.ring.size()]);
        self->send(st.ring[0], TokenAtom::value, hops, int64_t{0});
      },
      [=](DoneAtom, int member, int64_t hops) {
        RingDriverState& st = self->state;
        st.done.deliver(member, hops);
        for (const caf::actor& m : st.ring) self->send_exit(m, caf::exit_reason::user_shutdown);
        st.ring.clear();
        self->quit();
      },
  };
}

// -- chameneos ----------------------------------------------------------------

constexpr int32_t kColours = 3;  // blue, red, yellow

// The colour a creature takes after meeting one of colour `theirs`.
int32_t Complement(int32_t mine, int32_t theirs) { return mine == theirs ? mine : kColours - mine - theirs; }

struct CreatureState {
  int32_t colour = 0;
  int64_t meetings = 0;
};

// Asks the mall for a meeting with MeetMe(index, colour); on Faded reports
// its meeting count to the mall and stops.
caf::behavior Creature(caf::stateful_actor<CreatureState>* self, caf::actor mall, int index, int32_t colour) {
  self->state.colour = colour;
  self->send(mall, MeetMeAtom::value, index, colour);
  return {
      // Chosen by the mall: take the complement colour and tell the other.
      [=](MeetAtom, const caf::actor& other, int32_t other_colour) {
        CreatureState& st = self->state;
        st.colour = Complement(st.colour, other_colour);
        ++st.meetings;
        self->send(other, ChangeAtom::value, st.colour);
        self->send(mall, MeetMeAtom::value, index, st.colour);
      },
      // The other side of a meeting.
      [=](ChangeAtom, int32_t new_colour) {
        CreatureState& st = self->state;
        st.colour = new_colour;
        ++st.meetings;
        self->send(mall, MeetMeAtom::value, index, st.colour);
      },
      [=](FadedAtom) {
        self->send(mall, DoneAtom::value, self->state.meetings);
        self->quit();
      },
  };
}

struct MallState {
  caf::response_promise done;
  std::vector<caf::actor> creatures;
  int64_t meetings_left = 0;
  int64_t meetings = 0;
  int waiting = -1;  // the creature waiting for a partner, if any
  int faded = 0;
  int64_t creature_meetings = 0;
};

// The mall is the driver: it spawns the creatures, pairs the waiting one
// with the next that asks by sending the waiting one Meet(other, other's
// colour), answers every MeetMe with Faded after the last meeting, and
// answers (faded, meetings, creature meetings) once all have reported.
caf::behavior Mall(caf::stateful_actor<MallState>* self) {
  return {
      [=](GoAtom, int creatures, int64_t meetings) {
        MallState& st = self->state;
        st.done = self->make_response_promise();
        st.meetings_left = meetings;
        for (int c = 0; c < creatures; ++c) {
          st.creatures.push_back(self->spawn(Creature, caf::actor_cast<caf::actor>(self), c, c % kColours));
        }
      },
      [=](MeetMeAtom, int creature, int32_t colour) {
        MallState& st = self->state;
        if (st.meetings_left == 0) {
          self->send(st.creatures[creature], FadedAtom::value);
        } else if (st.waiting < 0) {
          st.waiting = creature;
        } else {
          self->send(st.creatures[st.waiting], MeetAtom::value, st.creatures[creature], colour);
          st.waiting = -1;
          --st.meetings_left;
          ++st.meetings;
        }
      },
      [=](DoneAtom, int64_t count) {
        MallState& st = self->state;
        st.creature_meetings += count;
        if (++st.faded < static_cast<int>(st.creatures.size())) return;
        st.done.deliver(st.faded, st.meetings, st.creature_meetings);
        st.creatures.clear();
        self->quit();
      },
  };
}

// -- big ----------------------------------------------------------------------

struct BigState {
  std::vector<caf::actor> peers;  // every actor of the workload, this one too
  std::minstd_rand random;
  int64_t sent = 0;
  int64_t received = 0;
};

using BigActorType = caf::stateful_actor<BigState>;

// One ping to another actor, uniform over the others: draw from n - 1 and
// skip over ourselves.
void SendPing(BigActorType* self, int index) {
  BigState& st = self->state;
  std::uniform_int_distribution<int> pick(0, static_cast<int>(st.peers.size()) - 2);
  int to = pick(st.random);
  if (to >= index) ++to;
  ++st.sent;
  self->send(st.peers[to], PingAtom::value);
}

// Pings random others one at a time (the next after the pong), answers every
// ping with a pong, and reports (index, sent, received) to the driver after
// its last pong; it keeps answering others' pings until stopped.
caf::behavior BigActor(BigActorType* self, caf::actor driver, int index, int64_t pings) {
  self->state.random.seed(static_cast<uint32_t>(index) + 1);
  return {
      [=](GoAtom, std::vector<caf::actor>& peers) {
        self->state.peers = std::move(peers);
        SendPing(self, index);
      },
      [](PingAtom) { return PongAtom::value; },
      [=](PongAtom) {
        BigState& st = self->state;
        if (++st.received == pings) {
          self->send(driver, DoneAtom::value, index, st.sent, st.received);
          return;
        }
        SendPing(self, index);
      },
  };
}

struct BigDriverState {
  caf::response_promise done;
  std::vector<caf::actor> actors;
  int reported = 0;
  std::vector<int64_t> sent;  // per actor
  std::vector<int64_t> received;
};

// Spawns the actors, hands each the list of all; answers with every actor's
// (sent, received) once all have reported, and stops them: every ping has
// had its pong by then, so nothing is in flight.
caf::behavior BigDriver(caf::stateful_actor<BigDriverState>* self) {
  return {
      [=](GoAtom, int actors, int64_t pings) {
        BigDriverState& st = self->state;
        st.done = self->make_response_promise();
        st.sent.assign(actors, -1);
        st.received.assign(actors, -1);
        for (int a = 0; a < actors; ++a) {
          st.actors.push_back(self->spawn(BigActor, caf::actor_cast<caf::actor>(self), a, pings));
        }
        for (const caf::actor& a : st.actors) self->send(a, GoAtom::value, st.actors);
      },
      [=](DoneAtom, int index, int64_t sent, int64_t received) {
        BigDriverState& st = self->state;
        st.sent[index] = sent;
        st.received[index] = received;
        if (++st.reported < static_cast<int>(st.actors.size())) return;
        st.done.deliver(std::move(st.sent), std::move(st.received));
        for (const caf::actor& a : st.actors) self->send_exit(a, caf::exit_reason::user_shutdown);
        st.actors.clear();
        self->quit();
      },
  };
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> CafForkJoinThroughput(const Sizes& sizes) {
  const int workers = sizes.forkjoin_actors;
  const int64_t messages = sizes.forkjoin_messages;
  if (absl::Status s = CheckAtLeast("forkjoin_actors", workers, 1); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("forkjoin_messages", messages, 1); !s.ok()) return s;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  std::vector<int64_t> seen;
  std::vector<double> accumulated;
  double seconds = 0;
  absl::Status status = Drive(
      sys, sys.spawn(ForkJoinDriver), "forkjoin-throughput", seconds,
      [&](std::vector<int64_t>& s, std::vector<double>& a) {
        seen = std::move(s);
        accumulated = std::move(a);
      },
      workers, messages);
  if (!status.ok()) return status;
  // Every worker saw the same messages in the same order.
  double expected = 0;
  for (int64_t i = 0; i < messages; ++i) expected += Compute(ValueOf(i));
  for (int w = 0; w < workers; ++w) {
    if (seen[w] != messages || !NearlyEqual(accumulated[w], expected)) {
      return absl::InternalError(absl::StrCat("forkjoin-throughput: worker ", w, " saw ", seen[w],
                                              " messages accumulating ", accumulated[w], ", expected ", messages,
                                              " accumulating ", expected));
    }
  }
  return std::vector<Measurement>{TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafForkJoinCreation(const Sizes& sizes) {
  const int64_t actors = sizes.forkjoin_creation_actors;
  if (absl::Status s = CheckAtLeast("forkjoin_creation_actors", actors, 1); !s.ok()) return s;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  int64_t replies = -1;
  int64_t duplicates = -1;
  double sum = 0;
  double seconds = 0;
  absl::Status status = Drive(
      sys, sys.spawn(CreationDriver), "forkjoin-creation", seconds,
      [&](int64_t r, int64_t d, double s) {
        replies = r;
        duplicates = d;
        sum = s;
      },
      actors);
  if (!status.ok()) return status;
  double expected = 0;
  for (int64_t i = 0; i < actors; ++i) expected += Compute(ValueOf(i));
  if (replies != actors || duplicates != 0 || !NearlyEqual(sum, expected)) {
    return absl::InternalError(absl::StrCat("forkjoin-creation: ", replies, " replies (", duplicates,
                                            " duplicates) summing to ", sum, ", expected ", actors, " summing to ",
                                            expected));
  }
  return std::vector<Measurement>{TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafThreadRing(const Sizes& sizes) {
  const int members = sizes.threadring_actors;
  const int64_t hops = sizes.threadring_hops;
  if (absl::Status s = CheckAtLeast("threadring_actors", members, 2); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("threadring_hops", hops, 0); !s.ok()) return s;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  int member = -1;
  int64_t made = -1;
  double seconds = 0;
  absl::Status status = Drive(
      sys, sys.spawn(RingDriver), "threadring", seconds,
      [&](int m, int64_t h) {
        member = m;
        made = h;
      },
      members, hops);
  if (!status.ok()) return status;
  const int expected_member = static_cast<int>(hops % members);
  if (made != hops || member != expected_member) {
    return absl::InternalError(absl::StrCat("threadring: the token ended at member ", member, " after ", made,
                                            " hops, expected member ", expected_member, " after ", hops));
  }
  return std::vector<Measurement>{TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafChameneos(const Sizes& sizes) {
  const int creatures = sizes.chameneos_creatures;
  const int64_t meetings = sizes.chameneos_meetings;
  if (absl::Status s = CheckAtLeast("chameneos_creatures", creatures, 2); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("chameneos_meetings", meetings, 0); !s.ok()) return s;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  int faded = -1;
  int64_t mall_meetings = -1;
  int64_t creature_meetings = -1;
  double seconds = 0;
  absl::Status status = Drive(
      sys, sys.spawn(Mall), "chameneos", seconds,
      [&](int f, int64_t m, int64_t c) {
        faded = f;
        mall_meetings = m;
        creature_meetings = c;
      },
      creatures, meetings);
  if (!status.ok()) return status;
  if (faded != creatures || mall_meetings != meetings || creature_meetings != 2 * meetings) {
    return absl::InternalError(absl::StrCat("chameneos: ", faded, " creatures faded after ", mall_meetings,
                                            " meetings, counting ", creature_meetings, " between them; expected ",
                                            creatures, ", ", meetings, " and ", 2 * meetings));
  }
  return std::vector<Measurement>{TimeMetric(seconds)};
}

absl::StatusOr<std::vector<Measurement>> CafBig(const Sizes& sizes) {
  const int actors = sizes.big_actors;
  const int64_t pings = sizes.big_pings;
  if (absl::Status s = CheckAtLeast("big_actors", actors, 2); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("big_pings", pings, 1); !s.ok()) return s;
  CafConfig cfg(sizes);
  caf::actor_system sys(cfg);
  std::vector<int64_t> sent;
  std::vector<int64_t> received;
  double seconds = 0;
  absl::Status status = Drive(
      sys, sys.spawn(BigDriver), "big", seconds,
      [&](std::vector<int64_t>& s, std::vector<int64_t>& r) {
        sent = std::move(s);
        received = std::move(r);
      },
      actors, pings);
  if (!status.ok()) return status;
  for (int a = 0; a < actors; ++a) {
    if (sent[a] != pings || received[a] != pings) {
      return absl::InternalError(absl::StrCat("big: actor ", a, " sent ", sent[a], " pings and got ", received[a],
                                              " pongs, expected ", pings, " of each"));
    }
  }
  return std::vector<Measurement>{TimeMetric(seconds)};
}

}  // namespace troupe::bench
