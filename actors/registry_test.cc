// The local registry: names by type, released when an actor stops for
// good, kept across a supervised child's restarts.

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/supervisor.h"
#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using testkit::TestSystem;
using ::testing::HasSubstr;

struct Get {};
struct Poison {};
struct Add {
  int by;
};

struct Counter : Actor<Counter> {
  void On(const Add& m) { n += m.by; }
  int On(const Get&) { return n; }
  void On(const Poison&) { throw std::runtime_error("poisoned"); }
  int n = 0;
};

// Registers itself as it starts, as a service would.
struct Service : Actor<Service> {
  explicit Service(std::string name) : name(std::move(name)) {}
  void OnStart() { registered = registry().Register(name, Self()); }
  absl::Status On(const Get&) { return registered; }
  void On(const Poison&) { throw std::runtime_error("poisoned"); }
  std::string name;
  absl::Status registered = absl::UnknownError("OnStart did not run");
};

TEST(Registry, ARegisteredActorIsFoundByNameAndType) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  ASSERT_TRUE(sys.registry().Register("counter", c).ok());
  absl::StatusOr<Ref<Counter>> found = sys.registry().Lookup<Counter>("counter");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, c);
  EXPECT_EQ(sys.registry().Lookup<Counter>("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST(Registry, LookingUpAsAnotherTypeIsAClearError) {
  TestSystem sys;
  ASSERT_TRUE(sys.registry().Register("counter", sys.Spawn<Counter>()).ok());
  absl::StatusOr<Ref<Service>> wrong = sys.registry().Lookup<Service>("counter");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("Counter"));
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("Service"));
}

TEST(Registry, ANameBelongsToOneActorAtATime) {
  TestSystem sys;
  Ref<Counter> a = sys.Spawn<Counter>(), b = sys.Spawn<Counter>();
  ASSERT_TRUE(sys.registry().Register("x", a).ok());
  EXPECT_TRUE(sys.registry().Register("x", a).ok()) << "registering the same actor again is not an error";
  EXPECT_EQ(sys.registry().Register("x", b).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(sys.registry().Register("y", a).ok()) << "an actor may have several names";
  EXPECT_TRUE(sys.registry().Unregister("x"));
  EXPECT_FALSE(sys.registry().Unregister("x"));
  EXPECT_TRUE(sys.registry().Register("x", b).ok());
}

TEST(Registry, BadRegistrationsSayWhatIsWrong) {
  TestSystem sys, other;
  EXPECT_EQ(sys.registry().Register("", sys.Spawn<Counter>()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.registry().Register("empty", ActorRef()).code(), absl::StatusCode::kInvalidArgument);
  absl::Status foreign = sys.registry().Register("foreign", other.Spawn<Counter>());
  EXPECT_EQ(foreign.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(foreign.message()), HasSubstr("another ActorSystem"));
}

TEST(Registry, TheNameIsReleasedWhenTheActorStops) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  ASSERT_TRUE(sys.registry().Register("counter", c).ok());
  c.Stop();
  sys.RunUntilIdle();
  EXPECT_EQ(sys.registry().LookupRef("counter").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(sys.registry().Names().empty());
}

TEST(Registry, RegisteringAStoppedActorFailsAndLeavesNoName) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Stop();
  sys.RunUntilIdle();
  EXPECT_EQ(sys.registry().Register("late", c).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sys.registry().LookupRef("late").status().code(), absl::StatusCode::kNotFound);
}

TEST(Registry, AnActorRegistersItselfFromInside) {
  TestSystem sys;
  Ref<Service> s = sys.Spawn<Service>("svc");
  Future<void> registered = s.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_TRUE(registered.Take().ok());
  EXPECT_EQ(*sys.registry().Lookup<Service>("svc"), s);
}

TEST(Registry, ASupervisedChildKeepsItsNameAcrossRestarts) {
  TestSystem sys;
  SupervisorOptions o;
  o.children.push_back(ChildSpec::Of<Counter>("c"));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  Future<Ref<Counter>> got = ChildOf<Counter>(sup, "c");
  sys.RunUntilIdle();
  Ref<Counter> c = *got.Take();
  ASSERT_TRUE(sys.registry().Register("counter", c).ok());
  for (int i = 0; i < 3; ++i) {
    c.Tell(Poison{});
    sys.RunUntilIdle();
  }
  absl::StatusOr<Ref<Counter>> found = sys.registry().Lookup<Counter>("counter");
  ASSERT_TRUE(found.ok()) << found.status();
  found->Tell(Add{4});
  Future<int> v = found->Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*v.Take(), 4);
}

TEST(Registry, ASelfRegisteringChildReRegistersAfterARestartWithoutConflict) {
  TestSystem sys;
  SupervisorOptions o;
  o.children.push_back(ChildSpec::Of<Service>("s", std::string("svc")));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  Ref<Service> s = *sys.registry().Lookup<Service>("svc");
  s.Tell(Poison{});
  Future<void> again = s.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_TRUE(again.Take().ok()) << "the new instance could not register its own name again";
}

TEST(Registry, TheNameGoesWhenTheSupervisorGivesTheChildUp) {
  TestSystem sys;
  SupervisorOptions o;
  ChildSpec spec = ChildSpec::Of<Counter>("c");
  spec.restart = Restart::kTemporary;
  o.children.push_back(std::move(spec));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  Future<Ref<Counter>> got = ChildOf<Counter>(sup, "c");
  sys.RunUntilIdle();
  Ref<Counter> c = *got.Take();
  ASSERT_TRUE(sys.registry().Register("counter", c).ok());
  c.Tell(Poison{});
  sys.RunUntilIdle();
  EXPECT_EQ(sys.registry().LookupRef("counter").status().code(), absl::StatusCode::kNotFound);
}

TEST(Registry, ThreadsRegisteringAndLookingUpAtOnceAgree) {
  ActorSystem sys({.workers = 2});
  constexpr int kThreads = 4, kRounds = 2000;
  std::atomic<int> found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Ref<Counter> mine = sys.Spawn<Counter>();
      for (int i = 0; i < kRounds; ++i) {
        const std::string name = absl::StrCat("n", t, "-", i % 16);
        if (!sys.registry().Register(name, mine).ok()) ADD_FAILURE() << name;
        absl::StatusOr<Ref<Counter>> r = sys.registry().Lookup<Counter>(name);
        if (r.ok() && *r == mine) found.fetch_add(1);
        sys.registry().Unregister(name);
      }
      mine.Stop();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(found.load(), kThreads * kRounds);
  EXPECT_TRUE(sys.Shutdown(absl::Seconds(10)).ok());
  EXPECT_TRUE(sys.registry().Names().empty());
}

}  // namespace
}  // namespace troupe
