#include "mailbox/inbox.h"

#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

struct Numbered final : Message {
  explicit Numbered(int v) : Message(Kind::kUser), value(v) {}
  void Deliver(void*) override { delete this; }
  bool Bounce(const absl::Status&) noexcept override {
    delete this;
    return true;
  }
  int value;
};

int ValueOf(Message* m) {
  int v = static_cast<Numbered*>(m)->value;
  delete m;
  return v;
}

TEST(Inbox, FirstPushToAnIdleInboxSchedulesTheActor) {
  Inbox inbox;
  EXPECT_EQ(inbox.Push(new Numbered(1)), Inbox::PushResult::kScheduleNow);
  EXPECT_EQ(inbox.Push(new Numbered(2)), Inbox::PushResult::kQueued);
  EXPECT_EQ(ValueOf(inbox.Pop()), 1);
  EXPECT_EQ(ValueOf(inbox.Pop()), 2);
  EXPECT_EQ(inbox.Pop(), nullptr);
}

TEST(Inbox, PopReturnsMessagesInPushOrderAcrossRefills) {
  Inbox inbox;
  for (int i = 0; i < 3; ++i) inbox.Push(new Numbered(i));
  EXPECT_EQ(ValueOf(inbox.Pop()), 0);
  for (int i = 3; i < 6; ++i) inbox.Push(new Numbered(i));
  for (int i = 1; i < 6; ++i) EXPECT_EQ(ValueOf(inbox.Pop()), i);
  EXPECT_EQ(inbox.Pop(), nullptr);
}

TEST(Inbox, PushWhileRunningDoesNotScheduleAgain) {
  Inbox inbox;
  ASSERT_EQ(inbox.Push(new Numbered(1)), Inbox::PushResult::kScheduleNow);
  EXPECT_EQ(ValueOf(inbox.Pop()), 1);
  // Empty but still running: the consumer has not blocked yet.
  EXPECT_EQ(inbox.Push(new Numbered(2)), Inbox::PushResult::kQueued);
  EXPECT_FALSE(inbox.TryBlock());
  EXPECT_EQ(ValueOf(inbox.Pop()), 2);
  EXPECT_TRUE(inbox.TryBlock());
  EXPECT_EQ(inbox.Push(new Numbered(3)), Inbox::PushResult::kScheduleNow);
  EXPECT_EQ(ValueOf(inbox.Pop()), 3);
}

TEST(Inbox, InboxCreatedScheduledDoesNotAskForScheduling) {
  Inbox inbox(/*scheduled=*/true);
  EXPECT_EQ(inbox.Push(new Numbered(1)), Inbox::PushResult::kQueued);
  EXPECT_EQ(ValueOf(inbox.Pop()), 1);
  EXPECT_TRUE(inbox.TryBlock());
}

TEST(Inbox, CloseReturnsEverythingLeftInOrderAndRefusesLaterPushes) {
  Inbox inbox;
  for (int i = 0; i < 3; ++i) inbox.Push(new Numbered(i));
  EXPECT_EQ(ValueOf(inbox.Pop()), 0);
  inbox.Push(new Numbered(3));
  MessageList rest = inbox.Close();
  std::vector<int> values;
  while (Message* m = rest.PopFront()) values.push_back(ValueOf(m));
  EXPECT_EQ(values, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(inbox.IsClosed());
  Numbered late(4);
  EXPECT_EQ(inbox.Push(&late), Inbox::PushResult::kClosed);
}

TEST(Inbox, HasMessagesSeesBothTheLocalListAndNewPushes) {
  Inbox inbox;
  EXPECT_FALSE(inbox.HasMessages());
  inbox.Push(new Numbered(1));
  EXPECT_TRUE(inbox.HasMessages());
  inbox.Push(new Numbered(2));
  EXPECT_EQ(ValueOf(inbox.Pop()), 1);
  EXPECT_TRUE(inbox.HasMessages());
  EXPECT_EQ(ValueOf(inbox.Pop()), 2);
  EXPECT_FALSE(inbox.HasMessages());
}

}  // namespace
}  // namespace troupe
