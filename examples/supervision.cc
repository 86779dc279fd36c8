// A small supervision tree:
//
//   root (one-for-one)
//   └── pool (rest-for-one, at most 3 restarts in 10 s)
//       ├── store    keeps the totals
//       └── parser   parses jobs; a "poison" job makes it throw
//
// The client finds the parser by name and sends it jobs. A poison job
// fails that one ask (Internal, with the exception's text); the pool
// restarts the parser in place, so the client's Ref keeps working and the
// jobs queued behind the poison are handled by the new instance. Then a
// burst of poison jobs is more than the pool allows: it gives up, the
// failure escalates to the root, which restarts the whole pool; the client
// looks the parser up again by name.
//
//   ./tools/bazel run -c opt //examples:supervision -- --jobs=1000

#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/supervisor.h"

ABSL_FLAG(int, jobs, 1000, "jobs the client sends before and after the failures");

namespace {

struct Record {
  int64_t value;
};
struct Total {};

// Keeps the sum of what the parser parsed. Restarted with the parser only
// if it fails itself (rest-for-one: it comes first).
struct Store : troupe::Actor<Store> {
  void OnStart() { (void)registry().Register("store", Self()); }
  void On(const Record& r) { total += r.value; }
  int64_t On(const Total&) { return total; }
  int64_t total = 0;
};

struct Job {
  std::string text;
};

// Parses a number per job and records it in the store before it answers.
// Throws on "poison".
struct Parser : troupe::Actor<Parser> {
  void OnStart() { (void)registry().Register("parser", Self()); }
  troupe::Task<int64_t> On(const Job& job) {
    if (job.text == "poison") throw std::runtime_error("the parser choked on a poison job");
    int64_t v = 0;
    if (!absl::SimpleAtoi(job.text, &v)) co_return absl::InvalidArgumentError(absl::StrCat("not a number: ", job.text));
    // The store starts before the parser (list order), but on its own turn:
    // look it up when it is needed.
    absl::StatusOr<troupe::Ref<Store>> store = registry().Lookup<Store>("store");
    if (!store.ok()) co_return store.status();
    troupe::Result<void> recorded = co_await store->Ask(Record{v});
    if (!recorded.ok()) co_return recorded;
    co_return v;
  }
};

troupe::SupervisorOptions Pool() {
  troupe::SupervisorOptions pool;
  pool.strategy = troupe::Strategy::kRestForOne;
  pool.max_restarts = 3;
  pool.within = absl::Seconds(10);
  pool.children.push_back(troupe::ChildSpec::Of<Store>("store"));
  pool.children.push_back(troupe::ChildSpec::Of<Parser>("parser"));
  return pool;
}

// The parser registered now, once it differs from `not_this` (after an
// escalation the new pool registers a new one).
troupe::Ref<Parser> FindParser(troupe::ActorSystem& sys, const troupe::ActorRef& not_this = {}) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::StatusOr<troupe::Ref<Parser>> p = sys.registry().Lookup<Parser>("parser");
    if (p.ok() && troupe::ActorRef(*p) != not_this) return *p;
    if (absl::Now() > deadline) {
      std::cerr << "supervision: no parser registered: " << p.status() << "\n";
      std::exit(1);
    }
    std::this_thread::yield();
  }
}

// Sends `n` jobs and waits for each; returns how many were answered.
int SendJobs(const troupe::Ref<Parser>& parser, int n) {
  std::vector<troupe::Future<int64_t>> replies;
  for (int i = 1; i <= n; ++i) replies.push_back(parser.Ask(Job{std::to_string(i)}, absl::Seconds(10)));
  int ok = 0;
  for (auto& r : replies) ok += r.Wait().ok() ? 1 : 0;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int jobs = absl::GetFlag(FLAGS_jobs);
  troupe::ActorSystem sys;
  uint64_t dead = 0;
  sys.SubscribeDeadLetters([&dead](const troupe::DeadLetter&) { ++dead; });

  troupe::SupervisorOptions root;
  root.children.push_back(troupe::ChildSpec::Of<troupe::Supervisor>("pool", Pool()));
  troupe::Ref<troupe::Supervisor> tree = sys.Spawn<troupe::Supervisor>(std::move(root));
  troupe::Ref<Parser> parser = FindParser(sys);

  // 1. Work, one poison job in the middle of it, more work behind it.
  int done = SendJobs(parser, jobs / 2);
  troupe::Future<int64_t> poisoned = parser.Ask(Job{"poison"});
  done += SendJobs(parser, jobs / 2);  // queued behind the poison: the new instance handles them
  const absl::Status failure = poisoned.Wait().status();
  std::cout << "supervision: the poison job failed: " << failure << "\n";
  std::cout << "supervision: " << done << " of " << jobs << " jobs done through the same Ref around the restart\n";

  // 2. Poison faster than the pool may restart: it gives up and the root
  //    restarts it with new children.
  for (int i = 0; i < 5; ++i) (void)parser.Ask(Job{"poison"}).Wait();
  troupe::Ref<Parser> fresh = FindParser(sys, parser);
  const int after = SendJobs(fresh, jobs);
  const int64_t total = sys.registry().Lookup<Store>("store").value().Ask(Total{}).Wait().value_or(-1);
  std::cout << "supervision: escalated to the root, which restarted the pool; " << after << " of " << jobs
            << " jobs done by the new parser; the new store's total is " << total << "\n";
  const bool good = failure.code() == absl::StatusCode::kInternal && done == jobs && after == jobs &&
                    total == int64_t{jobs} * (jobs + 1) / 2;
  (void)sys.Shutdown();
  std::cout << "supervision: " << (good ? "restarts were transparent and the escalation was handled" : "FAILED")
            << " (" << sys.stats().failures << " failures, " << dead << " dead letters)\n";
  return good ? 0 : 1;
}
