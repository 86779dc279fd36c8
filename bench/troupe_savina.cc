// The troupe side of the suite's Savina workloads (docs/benchmarks.md,
// "Workloads"): fork-join throughput and creation, thread ring, chameneos
// and big. The other workloads are in troupe_workloads.cc.
//
// Each workload has a driver actor: the measuring thread asks it to run,
// it spawns the workload's actors as its children, and it answers through a
// Reply once every actor has reported. The measuring thread checks the
// answer. Timings run from the ask to the answer.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
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

// How long the measuring thread waits for a driver's answer. The suite kills
// a workload long before this; it matters only when run by hand.
constexpr absl::Duration kAnswerTimeout = absl::Minutes(5);

// Runs a workload: asks `driver` `run` and waits for the answer, timing it.
template <class Driver, class Run>
auto Drive(const Ref<Driver>& driver, Run run, absl::string_view workload, absl::Duration& elapsed)
    -> absl::StatusOr<typename decltype(driver.Ask(std::move(run)))::value_type> {
  const absl::Time start = absl::Now();
  auto answer = driver.Ask(std::move(run)).Wait(kAnswerTimeout);
  elapsed = absl::Now() - start;
  if (!answer.ok()) {
    return absl::InternalError(absl::StrCat(workload, ": no answer: ", answer.status().ToString()));
  }
  return answer;
}

std::vector<Measurement> TimeFigure(absl::Duration elapsed) {
  return {{"time", absl::ToDoubleSeconds(elapsed), "s", false}};
}

absl::Status CheckAtLeast(absl::string_view flag, int64_t value, int64_t least) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be at least ", least, ", got ", value));
}

// The fork-join workloads' small computation on one message's value.
double Compute(double x) { return std::sqrt(x) * std::sin(x) + std::cos(x); }

// The value message `i` carries.
double ValueOf(int64_t i) { return static_cast<double>(i + 1); }

bool NearlyEqual(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); }

// ---------------------------------------------------------------------------
// forkjoin-throughput: the driver sends every worker the same numbered
// messages; each worker accumulates the computation over them and reports
// when it has seen all of its messages.

class ForkJoinDriver;

struct ForkJoinRun {
  int workers;
  int64_t messages;  // per worker
};
struct ForkJoinWork {
  int64_t i;
};
struct ForkJoinReport {
  int worker;
  int64_t messages;
  double accumulated;
};

class ForkJoinWorker : public Actor<ForkJoinWorker> {
 public:
  ForkJoinWorker(Ref<ForkJoinDriver> driver, int index, int64_t expected)
      : driver_(std::move(driver)), index_(index), expected_(expected) {}
  void On(const ForkJoinWork& work);

 private:
  const Ref<ForkJoinDriver> driver_;
  const int index_;
  const int64_t expected_;
  int64_t seen_ = 0;
  double accumulated_ = 0;
};

class ForkJoinDriver : public Actor<ForkJoinDriver> {
 public:
  // Answers with every worker's report, in arrival order.
  void On(const ForkJoinRun& run, Reply<std::vector<ForkJoinReport>> done) {
    done_.emplace(std::move(done));
    workers_ = run.workers;
    std::vector<Ref<ForkJoinWorker>> workers;
    workers.reserve(static_cast<size_t>(run.workers));
    for (int w = 0; w < run.workers; ++w) workers.push_back(Spawn<ForkJoinWorker>(Self(), w, run.messages));
    for (int64_t i = 0; i < run.messages; ++i) {
      for (const Ref<ForkJoinWorker>& worker : workers) worker.Tell(ForkJoinWork{i});
    }
  }
  void On(const ForkJoinReport& report) {
    reports_.push_back(report);
    if (static_cast<int>(reports_.size()) == workers_) done_->Send(std::move(reports_));
  }

 private:
  std::optional<Reply<std::vector<ForkJoinReport>>> done_;
  int workers_ = 0;
  std::vector<ForkJoinReport> reports_;
};

void ForkJoinWorker::On(const ForkJoinWork& work) {
  accumulated_ += Compute(ValueOf(work.i));
  if (++seen_ == expected_) driver_.Tell(ForkJoinReport{index_, seen_, accumulated_});
}

// ---------------------------------------------------------------------------
// forkjoin-creation: the driver spawns one actor per message; each computes,
// replies to the driver and stops.

class CreationDriver;

struct CreationRun {
  int64_t actors;
};
struct CreationWork {
  int64_t i;
  Ref<CreationDriver> reply_to;
};
struct CreationResult {
  int64_t i;
  double value;
};
struct CreationTotals {
  int64_t replies;
  int64_t duplicates;
  double sum;
};

class CreationWorker : public Actor<CreationWorker> {
 public:
  void On(const CreationWork& work) {
    work.reply_to.Tell(CreationResult{work.i, Compute(ValueOf(work.i))});
    Stop();
  }
};

class CreationDriver : public Actor<CreationDriver> {
 public:
  void On(const CreationRun& run, Reply<CreationTotals> done) {
    done_.emplace(std::move(done));
    seen_.assign(static_cast<size_t>(run.actors), false);
    const Ref<CreationDriver> self = Self();
    for (int64_t i = 0; i < run.actors; ++i) Spawn<CreationWorker>().Tell(CreationWork{i, self});
  }
  void On(const CreationResult& result) {
    if (seen_[static_cast<size_t>(result.i)]) {
      ++totals_.duplicates;
    } else {
      seen_[static_cast<size_t>(result.i)] = true;
      ++totals_.replies;
      totals_.sum += result.value;
    }
    if (totals_.replies == static_cast<int64_t>(seen_.size())) done_->Send(totals_);
  }

 private:
  std::optional<Reply<CreationTotals>> done_;
  std::vector<bool> seen_;
  CreationTotals totals_{0, 0, 0};
};

// ---------------------------------------------------------------------------
// threadring: a token passed around a ring of actors, counting down; the
// actor that receives it at zero reports.

class RingDriver;
class RingMember;

struct RingRun {
  int members;
  int64_t hops;
};
struct RingLink {
  Ref<RingMember> next;
};
struct Token {
  int64_t left;  // hops still to make
  int64_t hops;  // hops made so far
};
struct RingEnd {
  int member;
  int64_t hops;
};

class RingMember : public Actor<RingMember> {
 public:
  RingMember(Ref<RingDriver> driver, int index) : driver_(std::move(driver)), index_(index) {}
  void On(const RingLink& link) { next_ = link.next; }
  void On(const Token& token);

 private:
  const Ref<RingDriver> driver_;
  const int index_;
  Ref<RingMember> next_;
};

class RingDriver : public Actor<RingDriver> {
 public:
  void On(const RingRun& run, Reply<RingEnd> done) {
    done_.emplace(std::move(done));
    std::vector<Ref<RingMember>> ring;
    ring.reserve(static_cast<size_t>(run.members));
    for (int m = 0; m < run.members; ++m) ring.push_back(Spawn<RingMember>(Self(), m));
    // Each link is in its member's mailbox before the token can get there.
    for (size_t m = 0; m < ring.size(); ++m) ring[m].Tell(RingLink{ring[(m + 1) % ring.size()]});
    ring[0].Tell(Token{run.hops, 0});
  }
  void On(const RingEnd& end) { done_->Send(end); }

 private:
  std::optional<Reply<RingEnd>> done_;
};

void RingMember::On(const Token& token) {
  if (token.left == 0) {
    driver_.Tell(RingEnd{index_, token.hops});
    return;
  }
  next_.Tell(Token{token.left - 1, token.hops + 1});
}

// ---------------------------------------------------------------------------
// chameneos: creatures meet in a mall, two at a time, and change colour;
// after the last meeting the mall fades every creature, which then reports
// how many meetings it had.

enum class Colour { kBlue, kRed, kYellow };

// The colour a creature takes after meeting one of colour `theirs`.
Colour Complement(Colour mine, Colour theirs) {
  if (mine == theirs) return mine;
  return static_cast<Colour>(3 - static_cast<int>(mine) - static_cast<int>(theirs));
}

class Mall;
class Creature;

struct ChameneosRun {
  int creatures;
  int64_t meetings;
};
struct MeetMe {
  int creature;
  Colour colour;
};
struct Meet {
  Ref<Creature> other;
  Colour colour;  // the other's
};
struct Change {
  Colour colour;
};
struct Faded {};
struct Meetings {
  int64_t count;  // one creature's
};
struct ChameneosTotals {
  int creatures;
  int64_t meetings;  // the mall's
  int64_t creature_meetings;  // summed over the creatures
};

class Creature : public Actor<Creature> {
 public:
  Creature(Ref<Mall> mall, int index, Colour colour) : mall_(std::move(mall)), index_(index), colour_(colour) {}
  void OnStart() { AskToMeet(); }
  void On(const Meet& meet);
  void On(const Change& change) {
    colour_ = change.colour;
    ++meetings_;
    AskToMeet();
  }
  void On(const Faded&);

 private:
  void AskToMeet();

  const Ref<Mall> mall_;
  const int index_;
  Colour colour_;
  int64_t meetings_ = 0;
};

class Mall : public Actor<Mall> {
 public:
  void On(const ChameneosRun& run, Reply<ChameneosTotals> done) {
    done_.emplace(std::move(done));
    meetings_left_ = run.meetings;
    for (int c = 0; c < run.creatures; ++c) {
      creatures_.push_back(Spawn<Creature>(Self(), c, static_cast<Colour>(c % 3)));
    }
  }
  void On(const MeetMe& request) {
    if (meetings_left_ == 0) {
      creatures_[static_cast<size_t>(request.creature)].Tell(Faded{});
      return;
    }
    if (!waiting_) {
      waiting_ = request;
      return;
    }
    creatures_[static_cast<size_t>(waiting_->creature)].Tell(
        Meet{creatures_[static_cast<size_t>(request.creature)], request.colour});
    waiting_.reset();
    --meetings_left_;
    ++meetings_;
  }
  void On(const Meetings& report) {
    creature_meetings_ += report.count;
    if (++faded_ == static_cast<int>(creatures_.size())) {
      done_->Send(ChameneosTotals{faded_, meetings_, creature_meetings_});
    }
  }

 private:
  std::optional<Reply<ChameneosTotals>> done_;
  std::vector<Ref<Creature>> creatures_;
  int64_t meetings_left_ = 0;
  int64_t meetings_ = 0;
  std::optional<MeetMe> waiting_;
  int faded_ = 0;
  int64_t creature_meetings_ = 0;
};

void Creature::AskToMeet() { mall_.Tell(MeetMe{index_, colour_}); }

void Creature::On(const Meet& meet) {
  colour_ = Complement(colour_, meet.colour);
  ++meetings_;
  meet.other.Tell(Change{colour_});
  AskToMeet();
}

void Creature::On(const Faded&) {
  mall_.Tell(Meetings{meetings_});
  Stop();
}

// ---------------------------------------------------------------------------
// big: every actor pings random others, one ping at a time, and counts the
// pongs; it reports once it has all of its pongs (and keeps answering
// others' pings).

class BigDriver;
class BigActor;

using BigPeers = std::shared_ptr<const std::vector<Ref<BigActor>>>;

struct BigRun {
  int actors;
  int64_t pings;  // per actor
};
struct BigStart {
  BigPeers peers;
};
struct Ping {
  // The sender, to answer: a ping can arrive before this actor's BigStart.
  Ref<BigActor> from;
};
struct Pong {};
struct BigReport {
  int actor;
  int64_t pings_sent;
  int64_t pongs_received;
};

class BigActor : public Actor<BigActor> {
 public:
  BigActor(Ref<BigDriver> driver, int index, int64_t pings)
      : driver_(std::move(driver)), index_(index), pings_(pings), random_(static_cast<uint32_t>(index) + 1) {}
  void On(const BigStart& start) {
    peers_ = start.peers;
    SendPing();
  }
  void On(const Ping& ping) { ping.from.Tell(Pong{}); }
  void On(const Pong&);

 private:
  void SendPing() {
    // Uniform over the others: draw from n - 1 and skip over ourselves.
    std::uniform_int_distribution<int> pick(0, static_cast<int>(peers_->size()) - 2);
    int to = pick(random_);
    if (to >= index_) ++to;
    ++sent_;
    (*peers_)[static_cast<size_t>(to)].Tell(Ping{Self()});
  }

  const Ref<BigDriver> driver_;
  const int index_;
  const int64_t pings_;
  std::minstd_rand random_;
  BigPeers peers_;
  int64_t sent_ = 0;
  int64_t received_ = 0;
};

class BigDriver : public Actor<BigDriver> {
 public:
  // Answers with every actor's report, in arrival order.
  void On(const BigRun& run, Reply<std::vector<BigReport>> done) {
    done_.emplace(std::move(done));
    actors_ = run.actors;
    auto peers = std::make_shared<std::vector<Ref<BigActor>>>();
    peers->reserve(static_cast<size_t>(run.actors));
    for (int a = 0; a < run.actors; ++a) peers->push_back(Spawn<BigActor>(Self(), a, run.pings));
    const BigPeers shared = std::move(peers);
    for (const Ref<BigActor>& actor : *shared) actor.Tell(BigStart{shared});
  }
  void On(const BigReport& report) {
    reports_.push_back(report);
    if (static_cast<int>(reports_.size()) == actors_) done_->Send(std::move(reports_));
  }

 private:
  std::optional<Reply<std::vector<BigReport>>> done_;
  int actors_ = 0;
  std::vector<BigReport> reports_;
};

void BigActor::On(const Pong&) {
  if (++received_ == pings_) {
    driver_.Tell(BigReport{index_, sent_, received_});
    return;
  }
  SendPing();
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeForkJoinThroughput(const Sizes& sizes) {
  const int workers = sizes.forkjoin_actors;
  const int64_t messages = sizes.forkjoin_messages;
  if (absl::Status s = CheckAtLeast("forkjoin_actors", workers, 1); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("forkjoin_messages", messages, 1); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<ForkJoinDriver> driver = sys.Spawn<ForkJoinDriver>();
  absl::Duration elapsed;
  auto reports = Drive(driver, ForkJoinRun{workers, messages}, "forkjoin-throughput", elapsed);
  if (!reports.ok()) return reports.status();

  // Every worker saw the same messages in the same order.
  double expected = 0;
  for (int64_t i = 0; i < messages; ++i) expected += Compute(ValueOf(i));
  std::vector<bool> reported(static_cast<size_t>(workers), false);
  for (const ForkJoinReport& r : *reports) {
    if (r.worker < 0 || r.worker >= workers || reported[static_cast<size_t>(r.worker)]) {
      return absl::InternalError(absl::StrCat("forkjoin-throughput: unexpected report from worker ", r.worker));
    }
    reported[static_cast<size_t>(r.worker)] = true;
    if (r.messages != messages || !NearlyEqual(r.accumulated, expected)) {
      return absl::InternalError(absl::StrCat("forkjoin-throughput: worker ", r.worker, " saw ", r.messages,
                                              " messages accumulating ", r.accumulated, ", expected ", messages,
                                              " accumulating ", expected));
    }
  }
  if (reports->size() != static_cast<size_t>(workers)) {
    return absl::InternalError(
        absl::StrCat("forkjoin-throughput: ", reports->size(), " workers reported, expected ", workers));
  }
  return TimeFigure(elapsed);
}

absl::StatusOr<std::vector<Measurement>> TroupeForkJoinCreation(const Sizes& sizes) {
  const int64_t actors = sizes.forkjoin_creation_actors;
  if (absl::Status s = CheckAtLeast("forkjoin_creation_actors", actors, 1); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<CreationDriver> driver = sys.Spawn<CreationDriver>();
  absl::Duration elapsed;
  auto totals = Drive(driver, CreationRun{actors}, "forkjoin-creation", elapsed);
  if (!totals.ok()) return totals.status();
  double expected = 0;
  for (int64_t i = 0; i < actors; ++i) expected += Compute(ValueOf(i));
  if (totals->replies != actors || totals->duplicates != 0 || !NearlyEqual(totals->sum, expected)) {
    return absl::InternalError(absl::StrCat("forkjoin-creation: ", totals->replies, " replies (", totals->duplicates,
                                            " duplicates) summing to ", totals->sum, ", expected ", actors,
                                            " summing to ", expected));
  }
  return TimeFigure(elapsed);
}

absl::StatusOr<std::vector<Measurement>> TroupeThreadRing(const Sizes& sizes) {
  const int members = sizes.threadring_actors;
  const int64_t hops = sizes.threadring_hops;
  if (absl::Status s = CheckAtLeast("threadring_actors", members, 1); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("threadring_hops", hops, 0); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<RingDriver> driver = sys.Spawn<RingDriver>();
  absl::Duration elapsed;
  auto end = Drive(driver, RingRun{members, hops}, "threadring", elapsed);
  if (!end.ok()) return end.status();
  const int expected_member = static_cast<int>(hops % members);
  if (end->hops != hops || end->member != expected_member) {
    return absl::InternalError(absl::StrCat("threadring: the token ended at member ", end->member, " after ",
                                            end->hops, " hops, expected member ", expected_member, " after ",
                                            hops));
  }
  return TimeFigure(elapsed);
}

absl::StatusOr<std::vector<Measurement>> TroupeChameneos(const Sizes& sizes) {
  const int creatures = sizes.chameneos_creatures;
  const int64_t meetings = sizes.chameneos_meetings;
  if (absl::Status s = CheckAtLeast("chameneos_creatures", creatures, 2); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("chameneos_meetings", meetings, 0); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<Mall> mall = sys.Spawn<Mall>();
  absl::Duration elapsed;
  auto totals = Drive(mall, ChameneosRun{creatures, meetings}, "chameneos", elapsed);
  if (!totals.ok()) return totals.status();
  if (totals->creatures != creatures || totals->meetings != meetings ||
      totals->creature_meetings != 2 * meetings) {
    return absl::InternalError(absl::StrCat("chameneos: ", totals->creatures, " creatures faded after ",
                                            totals->meetings, " meetings, counting ", totals->creature_meetings,
                                            " between them; expected ", creatures, ", ", meetings, " and ",
                                            2 * meetings));
  }
  return TimeFigure(elapsed);
}

absl::StatusOr<std::vector<Measurement>> TroupeBig(const Sizes& sizes) {
  const int actors = sizes.big_actors;
  const int64_t pings = sizes.big_pings;
  if (absl::Status s = CheckAtLeast("big_actors", actors, 2); !s.ok()) return s;
  if (absl::Status s = CheckAtLeast("big_pings", pings, 1); !s.ok()) return s;
  ActorSystem sys({.workers = sizes.workers});
  Ref<BigDriver> driver = sys.Spawn<BigDriver>();
  absl::Duration elapsed;
  auto reports = Drive(driver, BigRun{actors, pings}, "big", elapsed);
  if (!reports.ok()) return reports.status();
  std::vector<bool> reported(static_cast<size_t>(actors), false);
  for (const BigReport& r : *reports) {
    if (r.actor < 0 || r.actor >= actors || reported[static_cast<size_t>(r.actor)]) {
      return absl::InternalError(absl::StrCat("big: unexpected report from actor ", r.actor));
    }
    reported[static_cast<size_t>(r.actor)] = true;
    if (r.pings_sent != pings || r.pongs_received != pings) {
      return absl::InternalError(absl::StrCat("big: actor ", r.actor, " sent ", r.pings_sent, " pings and got ",
                                              r.pongs_received, " pongs, expected ", pings, " of each"));
    }
  }
  if (reports->size() != static_cast<size_t>(actors)) {
    return absl::InternalError(absl::StrCat("big: ", reports->size(), " actors reported, expected ", actors));
  }
  return TimeFigure(elapsed);
}

}  // namespace troupe::bench
