// EtcdClient against a real etcd (EtcdServer: Debian's etcd on loopback,
// its own data directory and ports, one per test). Every wait has a
// deadline: on a Watch's events, a KeepAlive's loss, or a call's own
// deadline; nothing sleeps. Waits for something that must not happen (a
// kept-alive key deleted) are bounded waits for it that must time out.

#include "cluster/etcd/etcd_client.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/etcd/etcd_test_server.h"
#include "gtest/gtest.h"

namespace troupe::cluster::etcd {
namespace {

// A call's deadline, and the longest wait for a stream's news. Generous
// for sanitizer builds on a busy 2-core machine; passing runs take a
// fraction of them.
constexpr absl::Duration kCall = absl::Seconds(10);
constexpr absl::Duration kWait = absl::Seconds(30);

absl::Time Soon() { return absl::Now() + kCall; }

bool Contains(const absl::Status& status, const std::string& part) {
  return std::string(status.message()).find(part) != std::string::npos;
}

std::string Describe(const WatchEvent& e) {
  return absl::StrCat(e.type == WatchEvent::Type::kPut ? "put " : "delete ", e.kv.key, "=", e.kv.value, "@",
                      e.kv.mod_revision, e.prev_kv ? absl::StrCat(" (was ", e.prev_kv->value, ")") : "");
}

// What a Watch delivered, for the test's thread to wait on.
class EventLog {
 public:
  WatchCallbacks Callbacks() {
    return {
        .on_event =
            [this](const WatchEvent& e) {
              std::lock_guard<std::mutex> lock(mu_);
              events_.push_back(e);
              changed_.notify_all();
            },
        .on_end =
            [this](const WatchEnd& end) {
              std::lock_guard<std::mutex> lock(mu_);
              end_ = end;
              changed_.notify_all();
            },
    };
  }

  // True once there are `n` events, false at the deadline.
  bool WaitForEvents(size_t n, absl::Time deadline) {
    return WaitUntil(deadline, [&] { return events_.size() >= n; });
  }

  // The first delete of `key`, if one comes by the deadline.
  std::optional<WatchEvent> WaitForDeleteOf(const std::string& key, absl::Time deadline) {
    std::optional<WatchEvent> found;
    WaitUntil(deadline, [&] {
      for (const WatchEvent& e : events_) {
        if (e.type == WatchEvent::Type::kDelete && e.kv.key == key) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::optional<WatchEnd> WaitForEnd(absl::Time deadline) {
    WaitUntil(deadline, [&] { return end_.has_value(); });
    std::lock_guard<std::mutex> lock(mu_);
    return end_;
  }

  std::vector<WatchEvent> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  std::string Summary() {
    std::vector<std::string> lines;
    for (const WatchEvent& e : Events()) lines.push_back(Describe(e));
    return absl::StrJoin(lines, "; ");
  }

 private:
  bool WaitUntil(absl::Time deadline, const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()), done);
  }

  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<WatchEvent> events_;  // guarded by mu_
  std::optional<WatchEnd> end_;     // guarded by mu_
};

// A KeepAlive's on_lost, for the test's thread to wait on.
class LossLog {
 public:
  absl::AnyInvocable<void(absl::Status)> Callback() {
    return [this](absl::Status why) {
      std::lock_guard<std::mutex> lock(mu_);
      why_ = std::move(why);
      changed_.notify_all();
    };
  }

  std::optional<absl::Status> WaitForLoss(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()), [&] { return why_.has_value(); });
    return why_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::optional<absl::Status> why_;  // guarded by mu_
};

TEST(PrefixRangeEnd, IncrementsTheLastByteThatIsBelow0xff) {
  EXPECT_EQ(PrefixRangeEnd("troupe/"), "troupe0");
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd("a\xfe\xff\xff"), "a\xff");
  EXPECT_EQ(PrefixRangeEnd("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = std::make_unique<EtcdClient>(EtcdClientOptions{.address = etcd_.client_address()});
  }

  void TearDown() override {
    if (HasFailure()) {
      ADD_FAILURE() << "etcd printed, last:\n" << absl::StrJoin(etcd_.LogTail(), "\n");
    }
  }

  // Before the client: it is destroyed after it.
  EtcdServer etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientTest, PutThenGetReturnsTheValueAndItsRevisions) {
  absl::StatusOr<int64_t> first = client_->Put("k", "v1", kNoLease, Soon());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<GetResult> got = client_->Get("k", Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->kv.has_value());
  EXPECT_EQ(got->kv->key, "k");
  EXPECT_EQ(got->kv->value, "v1");
  EXPECT_EQ(got->kv->create_revision, *first);
  EXPECT_EQ(got->kv->mod_revision, *first);
  EXPECT_EQ(got->kv->version, 1);
  EXPECT_EQ(got->kv->lease, kNoLease);
  EXPECT_GE(got->revision, *first);

  absl::StatusOr<int64_t> second = client_->Put("k", "v2", kNoLease, Soon());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(*second, *first);
  got = client_->Get("k", Soon());
  ASSERT_TRUE(got.ok() && got->kv.has_value()) << got.status();
  EXPECT_EQ(got->kv->value, "v2");
  EXPECT_EQ(got->kv->create_revision, *first);
  EXPECT_EQ(got->kv->mod_revision, *second);
  EXPECT_EQ(got->kv->version, 2);
}

TEST_F(EtcdClientTest, GetOfAMissingKeyFindsNothingButReportsTheRevision) {
  absl::StatusOr<int64_t> put = client_->Put("other", "x", kNoLease, Soon());
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<GetResult> got = client_->Get("missing", Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->kv.has_value());
  EXPECT_GE(got->revision, *put);
}

TEST_F(EtcdClientTest, GetPrefixReturnsOnlyKeysUnderThePrefixInKeyOrder) {
  for (const char* key : {"m/b", "m/a", "m", "m0", "n/a", "m/c/d"}) {
    ASSERT_TRUE(client_->Put(key, absl::StrCat("value of ", key), kNoLease, Soon()).ok()) << key;
  }
  absl::StatusOr<PrefixResult> got = client_->GetPrefix("m/", Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> keys;
  for (const KeyValue& kv : got->kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"m/a", "m/b", "m/c/d"}));
  ASSERT_EQ(got->kvs.size(), 3u);
  EXPECT_EQ(got->kvs[0].value, "value of m/a");
  EXPECT_GT(got->kvs[2].mod_revision, got->kvs[0].mod_revision);  // m/c/d was put last
  EXPECT_GE(got->revision, got->kvs[2].mod_revision);

  absl::StatusOr<PrefixResult> all = client_->GetPrefix("", Soon());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->kvs.size(), 6u);
  absl::StatusOr<PrefixResult> none = client_->GetPrefix("z/", Soon());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->kvs.empty());
}

TEST_F(EtcdClientTest, DeleteRemovesTheKeyAndSaysWhetherItExisted) {
  absl::StatusOr<int64_t> put = client_->Put("k", "v", kNoLease, Soon());
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<DeleteResult> deleted = client_->Delete("k", Soon());
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->deleted);
  EXPECT_GT(deleted->revision, *put);
  absl::StatusOr<GetResult> got = client_->Get("k", Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->kv.has_value());

  absl::StatusOr<DeleteResult> again = client_->Delete("k", Soon());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->deleted);
}

TEST_F(EtcdClientTest, CreateIfAbsentRefusesASecondCreateAndShowsTheFirst) {
  absl::StatusOr<CreateResult> first = client_->CreateIfAbsent("owner", "a", kNoLease, Soon());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_FALSE(first->existing.has_value());

  absl::StatusOr<CreateResult> second = client_->CreateIfAbsent("owner", "b", kNoLease, Soon());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  ASSERT_TRUE(second->existing.has_value());
  EXPECT_EQ(second->existing->value, "a");
  EXPECT_EQ(second->existing->create_revision, first->revision);
  // Nothing was written.
  EXPECT_EQ(second->revision, first->revision);
  absl::StatusOr<GetResult> got = client_->Get("owner", Soon());
  ASSERT_TRUE(got.ok() && got->kv.has_value()) << got.status();
  EXPECT_EQ(got->kv->value, "a");

  // Once the key is gone, the next create wins.
  ASSERT_TRUE(client_->Delete("owner", Soon()).ok());
  absl::StatusOr<CreateResult> third = client_->CreateIfAbsent("owner", "c", kNoLease, Soon());
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE(third->created);
}

TEST_F(EtcdClientTest, PutIfUnchangedWritesOnlyOverTheRevisionItWasGiven) {
  // Absent (0): the first write creates it; a second "absent" write fails.
  absl::StatusOr<SwapResult> created = client_->PutIfUnchanged("count", "1", 0, Soon());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->written);
  absl::StatusOr<SwapResult> again = client_->PutIfUnchanged("count", "9", 0, Soon());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->written);
  ASSERT_TRUE(again->current.has_value());
  EXPECT_EQ(again->current->value, "1");
  EXPECT_EQ(again->current->mod_revision, created->revision);

  // Over the revision read: written; over a stale one: refused, showing
  // the newer value, which is kept.
  absl::StatusOr<SwapResult> next = client_->PutIfUnchanged("count", "2", created->revision, Soon());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->written);
  EXPECT_GT(next->revision, created->revision);
  absl::StatusOr<SwapResult> stale = client_->PutIfUnchanged("count", "7", created->revision, Soon());
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_FALSE(stale->written);
  ASSERT_TRUE(stale->current.has_value());
  EXPECT_EQ(stale->current->value, "2");
  absl::StatusOr<GetResult> now = client_->Get("count", Soon());
  ASSERT_TRUE(now.ok() && now->kv.has_value());
  EXPECT_EQ(now->kv->value, "2");

  // A revision given for a key that is gone: refused, nothing to show.
  ASSERT_TRUE(client_->Delete("count", Soon()).ok());
  absl::StatusOr<SwapResult> gone = client_->PutIfUnchanged("count", "3", next->revision, Soon());
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->written);
  EXPECT_FALSE(gone->current.has_value());
}

TEST_F(EtcdClientTest, KeyOfALeaseWithoutKeepAliveIsDeletedWhenTheLeaseExpires) {
  const absl::Time granted_at = absl::Now();
  absl::StatusOr<Lease> lease = client_->Grant(absl::Seconds(2), Soon());
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_GE(lease->ttl, absl::Seconds(2));
  absl::StatusOr<int64_t> put = client_->Put("leased/k", "v", lease->id, Soon());
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<GetResult> got = client_->Get("leased/k", Soon());
  ASSERT_TRUE(got.ok() && got->kv.has_value()) << got.status();
  EXPECT_EQ(got->kv->lease, lease->id);

  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("leased/", *put + 1, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::optional<WatchEvent> gone = log.WaitForDeleteOf("leased/k", absl::Now() + lease->ttl + kWait);
  ASSERT_TRUE(gone.has_value()) << "events: " << log.Summary();
  EXPECT_GE(absl::Now() - granted_at, lease->ttl);
  EXPECT_GT(gone->kv.mod_revision, *put);
  ASSERT_TRUE(gone->prev_kv.has_value());
  EXPECT_EQ(gone->prev_kv->value, "v");

  got = client_->Get("leased/k", Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->kv.has_value());
  absl::StatusOr<absl::Duration> left = client_->TimeToLive(lease->id, Soon());
  EXPECT_EQ(left.status().code(), absl::StatusCode::kNotFound) << left.status();
}

TEST_F(EtcdClientTest, KeepAliveKeepsTheLeasedKeyUntilItStops) {
  absl::StatusOr<Lease> lease = client_->Grant(absl::Seconds(2), Soon());
  ASSERT_TRUE(lease.ok()) << lease.status();
  absl::StatusOr<int64_t> put = client_->Put("kept/k", "v", lease->id, Soon());
  ASSERT_TRUE(put.ok()) << put.status();
  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("kept/", *put + 1, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();

  LossLog loss;
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep = client_->StartKeepAlive(
      lease->id,
      {.interval = absl::Milliseconds(500), .reply_timeout = lease->ttl, .on_lost = loss.Callback()},
      Soon());
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_GT((*keep)->ttl(), absl::ZeroDuration());

  // Three TTLs: without the keepalives the key would be gone twice over.
  EXPECT_FALSE(log.WaitForDeleteOf("kept/k", absl::Now() + 3 * lease->ttl).has_value()) << log.Summary();
  EXPECT_FALSE(loss.WaitForLoss(absl::Now()).has_value());
  absl::StatusOr<GetResult> got = client_->Get("kept/k", Soon());
  ASSERT_TRUE(got.ok() && got->kv.has_value()) << got.status();
  absl::StatusOr<absl::Duration> left = client_->TimeToLive(lease->id, Soon());
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_GT(*left, absl::ZeroDuration());

  // Stopped, it no longer renews: the lease expires and takes the key.
  keep->reset();
  EXPECT_TRUE(log.WaitForDeleteOf("kept/k", absl::Now() + lease->ttl + kWait).has_value()) << log.Summary();
  EXPECT_FALSE(loss.WaitForLoss(absl::Now()).has_value()) << "on_lost after the KeepAlive was destroyed";
}

TEST_F(EtcdClientTest, KeepAliveReportsARevokedLeaseAsLost) {
  absl::StatusOr<Lease> lease = client_->Grant(absl::Seconds(30), Soon());
  ASSERT_TRUE(lease.ok()) << lease.status();
  LossLog loss;
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep = client_->StartKeepAlive(
      lease->id, {.interval = absl::Milliseconds(200), .on_lost = loss.Callback()}, Soon());
  ASSERT_TRUE(keep.ok()) << keep.status();
  ASSERT_TRUE(client_->Revoke(lease->id, Soon()).ok());
  std::optional<absl::Status> why = loss.WaitForLoss(absl::Now() + kWait);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), absl::StatusCode::kNotFound) << *why;
  EXPECT_TRUE(Contains(*why, "LeaseKeepAlive")) << *why;
  EXPECT_TRUE(Contains(*why, absl::StrCat("lease ", lease->id))) << *why;
  EXPECT_EQ((*keep)->ttl(), absl::ZeroDuration());
}

TEST_F(EtcdClientTest, StartKeepAliveOfAnUnknownLeaseFailsNotFound) {
  LossLog loss;
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep =
      client_->StartKeepAlive(12345, {.on_lost = loss.Callback()}, Soon());
  EXPECT_EQ(keep.status().code(), absl::StatusCode::kNotFound) << keep.status();
  EXPECT_TRUE(Contains(keep.status(), "LeaseKeepAlive of lease 12345")) << keep.status();
  EXPECT_FALSE(loss.WaitForLoss(absl::Now()).has_value()) << "a failed start also called on_lost";
}

TEST_F(EtcdClientTest, WatchFromARevisionDeliversPutsAndDeletesInOrder) {
  absl::StatusOr<int64_t> from = client_->Put("w/a", "1", kNoLease, Soon());
  ASSERT_TRUE(from.ok()) << from.status();
  ASSERT_TRUE(client_->Put("w/b", "2", kNoLease, Soon()).ok());
  ASSERT_TRUE(client_->Put("elsewhere", "x", kNoLease, Soon()).ok());
  ASSERT_TRUE(client_->Delete("w/a", Soon()).ok());
  ASSERT_TRUE(client_->Put("w/a", "3", kNoLease, Soon()).ok());

  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("w/", *from, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();
  // And a change made while the watch runs.
  ASSERT_TRUE(client_->Put("w/b", "4", kNoLease, Soon()).ok());

  ASSERT_TRUE(log.WaitForEvents(5, absl::Now() + kWait)) << log.Summary();
  const std::vector<WatchEvent> events = log.Events();
  std::vector<std::string> seen;
  for (const WatchEvent& e : events) seen.push_back(Describe(e));
  const int64_t r = *from;
  // Revisions: r w/a=1, r+1 w/b=2, r+2 elsewhere (not watched), r+3 the
  // delete, r+4 w/a=3, r+5 w/b=4.
  EXPECT_EQ(seen, (std::vector<std::string>{
                      absl::StrCat("put w/a=1@", r),
                      absl::StrCat("put w/b=2@", r + 1),
                      absl::StrCat("delete w/a=@", r + 3, " (was 1)"),
                      absl::StrCat("put w/a=3@", r + 4),
                      absl::StrCat("put w/b=4@", r + 5, " (was 2)"),
                  }));
  EXPECT_FALSE(log.WaitForEnd(absl::Now()).has_value());
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionEndsOutOfRange) {
  absl::StatusOr<int64_t> old = client_->Put("c/k", "1", kNoLease, Soon());
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE(client_->Put("c/k", "2", kNoLease, Soon()).ok());
  absl::StatusOr<int64_t> last = client_->Put("c/k", "3", kNoLease, Soon());
  ASSERT_TRUE(last.ok()) << last.status();
  const absl::Status compacted = etcd_.Compact(*last, Soon());
  ASSERT_TRUE(compacted.ok()) << compacted;

  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("c/", *old, log.Callbacks(), Soon());
  // etcd 3.4 creates the watch, then cancels it.
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::optional<WatchEnd> end = log.WaitForEnd(absl::Now() + kWait);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->status.code(), absl::StatusCode::kOutOfRange) << end->status;
  EXPECT_EQ(end->compact_revision, *last);
  EXPECT_TRUE(Contains(end->status, absl::StrCat("etcd Watch of prefix \"c/\" from revision ", *old)))
      << end->status;
  EXPECT_TRUE(log.Events().empty()) << log.Summary();
}

TEST_F(EtcdClientTest, ErrorsNameTheOperationTheSubjectAndWhatEtcdSaid) {
  const absl::Status revoked = client_->Revoke(424242, Soon());
  EXPECT_EQ(revoked.code(), absl::StatusCode::kNotFound) << revoked;
  EXPECT_TRUE(Contains(revoked, absl::StrCat("etcd LeaseRevoke of lease 424242 at ", etcd_.client_address(), ": ")))
      << revoked;
  EXPECT_TRUE(Contains(revoked, "requested lease not found")) << revoked;  // etcd's words

  // etcd refuses a key that is empty.
  absl::StatusOr<int64_t> put = client_->Put("", "v", kNoLease, Soon());
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument) << put.status();
  EXPECT_TRUE(Contains(put.status(), "etcd Put of key \"\"")) << put.status();

  // A deadline that has passed.
  absl::StatusOr<GetResult> late = client_->Get("k", absl::Now() - absl::Seconds(1));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  EXPECT_TRUE(Contains(late.status(), "etcd Range of key \"k\"")) << late.status();
}

TEST_F(EtcdClientTest, GetAgainstAStoppedEtcdFailsWithinItsDeadline) {
  ASSERT_TRUE(client_->Put("k", "v", kNoLease, Soon()).ok());
  EtcdClient waiting({.address = etcd_.client_address(), .wait_for_connection = true});
  etcd_.Stop();

  // Failing fast: at once, well before the deadline.
  absl::Time start = absl::Now();
  absl::StatusOr<GetResult> got = client_->Get("some/key", start + absl::Seconds(5));
  EXPECT_TRUE(got.status().code() == absl::StatusCode::kUnavailable ||
              got.status().code() == absl::StatusCode::kDeadlineExceeded)
      << got.status();
  EXPECT_TRUE(Contains(got.status(), "etcd Range of key \"some/key\"")) << got.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5) + absl::Seconds(1));

  // Waiting for a connection: until the deadline, not past it.
  start = absl::Now();
  got = waiting.Get("some/key", start + absl::Seconds(1));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_TRUE(Contains(got.status(), "etcd Range of key \"some/key\"")) << got.status();
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(1) + absl::Seconds(1));

  // Streams too: failing fast, or waiting until the deadline.
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("some/", 0, {}, absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(watch.status().code() == absl::StatusCode::kUnavailable ||
              watch.status().code() == absl::StatusCode::kDeadlineExceeded)
      << watch.status();
  EXPECT_TRUE(Contains(watch.status(), "etcd Watch of prefix \"some/\" from revision 0")) << watch.status();
  start = absl::Now();
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep = waiting.StartKeepAlive(7, {}, start + absl::Seconds(1));
  EXPECT_EQ(keep.status().code(), absl::StatusCode::kDeadlineExceeded) << keep.status();
  EXPECT_TRUE(Contains(keep.status(), "etcd LeaseKeepAlive of lease 7")) << keep.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1) + absl::Seconds(1));
}

TEST_F(EtcdClientTest, StreamsReportTheirFailureWhenEtcdIsKilled) {
  absl::StatusOr<Lease> lease = client_->Grant(absl::Seconds(30), Soon());
  ASSERT_TRUE(lease.ok()) << lease.status();
  LossLog loss;
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep = client_->StartKeepAlive(
      lease->id, {.interval = absl::Milliseconds(200), .on_lost = loss.Callback()}, Soon());
  ASSERT_TRUE(keep.ok()) << keep.status();
  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("s/", 0, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();

  etcd_.Kill();
  std::optional<WatchEnd> end = log.WaitForEnd(absl::Now() + kWait);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->status.code(), absl::StatusCode::kUnavailable) << end->status;
  EXPECT_TRUE(Contains(end->status, "etcd Watch of prefix \"s/\"")) << end->status;
  std::optional<absl::Status> why = loss.WaitForLoss(absl::Now() + kWait);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), absl::StatusCode::kUnavailable) << *why;
  EXPECT_TRUE(Contains(*why, "etcd LeaseKeepAlive of lease")) << *why;
}

TEST_F(EtcdClientTest, ClientReconnectsToARestartedEtcdAndSeesItsData) {
  EtcdClient waiting({.address = etcd_.client_address(), .wait_for_connection = true});
  absl::StatusOr<int64_t> put = waiting.Put("durable", "yes", kNoLease, Soon());
  ASSERT_TRUE(put.ok()) << put.status();

  etcd_.Kill();
  absl::StatusOr<GetResult> down = client_->Get("durable", Soon());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  const absl::Status restarted = etcd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;

  // The same client, on its old channel: it reconnects within the call.
  absl::StatusOr<GetResult> got = waiting.Get("durable", absl::Now() + kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->kv.has_value());
  EXPECT_EQ(got->kv->value, "yes");
  EXPECT_EQ(got->kv->mod_revision, *put);
  // And new streams work on it.
  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = waiting.WatchPrefix("durable", *put, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(log.WaitForEvents(1, absl::Now() + kWait));
  EXPECT_EQ(Describe(log.Events()[0]), absl::StrCat("put durable=yes@", *put));
}

TEST_F(EtcdClientTest, ACallbackMayDestroyItsWatchButNotStartAnother) {
  std::mutex mu;
  std::condition_variable changed;
  std::unique_ptr<Watch> watch;  // guarded by mu
  bool destroyed = false;        // guarded by mu
  int calls = 0;                 // guarded by mu
  absl::Status nested;           // guarded by mu
  WatchCallbacks callbacks{
      .on_event =
          [&](const WatchEvent&) {
            // It would wait for this very thread to deliver etcd's answer.
            absl::StatusOr<std::unique_ptr<Watch>> another = client_->WatchPrefix("e/", 0, {}, Soon());
            std::unique_ptr<Watch> mine;
            {
              std::lock_guard<std::mutex> lock(mu);
              ++calls;
              nested = another.status();
              mine = std::move(watch);
            }
            mine.reset();  // on the client's thread: must not wait for itself
            std::lock_guard<std::mutex> lock(mu);
            destroyed = true;
            changed.notify_all();
          },
      .on_end = nullptr,
  };
  // From now on: no event can come before the watch is handed over.
  absl::StatusOr<std::unique_ptr<Watch>> started = client_->WatchPrefix("d/", 0, std::move(callbacks), Soon());
  ASSERT_TRUE(started.ok()) << started.status();
  {
    std::lock_guard<std::mutex> lock(mu);
    watch = *std::move(started);
  }
  ASSERT_TRUE(client_->Put("d/k", "1", kNoLease, Soon()).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(changed.wait_for(lock, absl::ToChronoNanoseconds(kWait), [&] { return destroyed; }));
  }
  // Two more puts, seen by a second watch; their events for the first one
  // would be delivered by the same thread about as soon, so one more call
  // would most likely show by then.
  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> second = client_->WatchPrefix("d/", 0, log.Callbacks(), Soon());
  ASSERT_TRUE(second.ok()) << second.status();
  for (const char* v : {"2", "3"}) ASSERT_TRUE(client_->Put("d/k", v, kNoLease, Soon()).ok());
  ASSERT_TRUE(log.WaitForEvents(2, absl::Now() + kWait)) << log.Summary();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(nested.code(), absl::StatusCode::kFailedPrecondition) << nested;
  EXPECT_TRUE(Contains(nested, "etcd Watch of prefix \"e/\"")) << nested;
}

TEST_F(EtcdClientTest, DestroyingTheClientFirstEndsItsStreams) {
  absl::StatusOr<Lease> lease = client_->Grant(absl::Seconds(30), Soon());
  ASSERT_TRUE(lease.ok()) << lease.status();
  LossLog loss;
  absl::StatusOr<std::unique_ptr<KeepAlive>> keep =
      client_->StartKeepAlive(lease->id, {.on_lost = loss.Callback()}, Soon());
  ASSERT_TRUE(keep.ok()) << keep.status();
  EventLog log;
  absl::StatusOr<std::unique_ptr<Watch>> watch = client_->WatchPrefix("x/", 0, log.Callbacks(), Soon());
  ASSERT_TRUE(watch.ok()) << watch.status();

  client_.reset();  // returns once both streams have ended
  std::optional<WatchEnd> end = log.WaitForEnd(absl::Now());
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->status.code(), absl::StatusCode::kCancelled) << end->status;
  std::optional<absl::Status> why = loss.WaitForLoss(absl::Now());
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), absl::StatusCode::kCancelled) << *why;
  EXPECT_EQ((*keep)->ttl(), absl::ZeroDuration());
  // The handles go after the client, harmlessly.
  watch->reset();
  keep->reset();
}

}  // namespace
}  // namespace troupe::cluster::etcd
