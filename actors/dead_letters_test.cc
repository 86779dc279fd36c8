// Dead letter subscriptions: what a report carries, the rate limit, actor
// subscribers.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using testkit::TestSystem;
using ::testing::HasSubstr;

struct Ping {};
struct Get {};
struct Sink : Actor<Sink> {
  void On(const Ping&) {}
  int On(const Get&) { return 0; }
};

TEST(DeadLetters, AReportNamesTheTargetTheMessageTypeAndTheReason) {
  TestSystem sys;
  std::vector<DeadLetter> seen;
  sys.SubscribeDeadLetters([&](const DeadLetter& d) { seen.push_back(d); });
  Ref<Sink> s = sys.Spawn<Sink>();
  s.Stop(absl::AbortedError("closed for the day"));
  sys.RunUntilIdle();
  s.Tell(Ping{});
  Future<int> asked = s.Ask(Get{});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, ActorRef(s));
  EXPECT_THAT(seen[0].message_type, HasSubstr("Ping"));
  EXPECT_EQ(seen[0].reason.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(seen[1].message_type, HasSubstr("Get"));
  EXPECT_EQ(sys.stats().dead_letters, 2u);
  EXPECT_FALSE(asked.Take().ok());
}

TEST(DeadLetters, MessagesBouncedAsAnActorStopsAreReported) {
  TestSystem sys;
  std::vector<DeadLetter> seen;
  sys.SubscribeDeadLetters([&](const DeadLetter& d) { seen.push_back(d); });
  Ref<Sink> s = sys.Spawn<Sink>();
  s.Tell(Ping{});
  s.StopNow(absl::AbortedError("now"));
  sys.RunUntilIdle();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_THAT(std::string(seen[0].reason.message()), HasSubstr("now"));
}

TEST(DeadLetters, ReportsAreRateLimitedAndSaySoLater) {
  TestSystem sys;
  std::vector<DeadLetter> seen;
  sys.SubscribeDeadLetters([&](const DeadLetter& d) { seen.push_back(d); }, {.max_per_second = 10});
  Ref<Sink> s = sys.Spawn<Sink>();
  s.Stop();
  sys.RunUntilIdle();
  for (int i = 0; i < 1000; ++i) s.Tell(Ping{});
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(sys.stats().dead_letters, 1000u) << "the limit applies to reports, not to the count";
  sys.AdvanceBy(absl::Seconds(1));
  s.Tell(Ping{});
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen.back().suppressed, 990u);
}

struct Collector : Actor<Collector> {
  void On(const DeadLetter& d) { types.push_back(d.message_type); }
  std::vector<std::string> On(const Get&) { return types; }
  std::vector<std::string> types;
};

TEST(DeadLetters, AnActorSubscriberReceivesThemAndItsSubscriptionEndsWithIt) {
  TestSystem sys;
  Ref<Collector> c = sys.Spawn<Collector>();
  sys.SubscribeDeadLetters(c);
  Ref<Sink> s = sys.Spawn<Sink>();
  s.Stop();
  sys.RunUntilIdle();
  s.Tell(Ping{});
  Future<std::vector<std::string>> got = c.Ask(Get{});
  sys.RunUntilIdle();
  Result<std::vector<std::string>> types = got.Take();
  ASSERT_TRUE(types.ok());
  ASSERT_EQ(types->size(), 1u);
  EXPECT_THAT((*types)[0], HasSubstr("Ping"));
  // Once the subscriber has stopped, a dead letter is reported to it once
  // more at most (that report is itself a dead letter, never reported).
  c.Stop();
  sys.RunUntilIdle();
  const uint64_t before = sys.stats().dead_letters;
  for (int i = 0; i < 5; ++i) s.Tell(Ping{});
  EXPECT_LE(sys.stats().dead_letters, before + 6);
}

TEST(DeadLetters, UnsubscribedCallbacksHearNothing) {
  TestSystem sys;
  int heard = 0;
  DeadLetterSubscription id = sys.SubscribeDeadLetters([&](const DeadLetter&) { ++heard; });
  Ref<Sink> s = sys.Spawn<Sink>();
  s.Stop();
  sys.RunUntilIdle();
  s.Tell(Ping{});
  EXPECT_TRUE(sys.UnsubscribeDeadLetters(id));
  EXPECT_FALSE(sys.UnsubscribeDeadLetters(id));
  s.Tell(Ping{});
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(sys.stats().dead_letters, 2u);
}

}  // namespace
}  // namespace troupe
