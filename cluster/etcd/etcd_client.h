// EtcdClient: a small client of etcd's v3 gRPC API, the part troupe's etcd
// membership provider builds on: leases (grant, revoke, keepalive), keys
// (put, get, get by prefix, delete, create-if-absent, put-if-unchanged)
// and watches of a
// prefix. It speaks to one etcd endpoint, "host:port", over one gRPC
// channel without TLS (etcd on loopback or a trusted network).
//
//   EtcdClient etcd({.address = "127.0.0.1:2379"});
//   const absl::Time deadline = absl::Now() + absl::Seconds(2);
//   absl::StatusOr<Lease> lease = etcd.Grant(absl::Seconds(10), deadline);
//   absl::StatusOr<CreateResult> mine =
//       etcd.CreateIfAbsent("troupe/members/a", "10.0.0.1:7000", lease->id, deadline);
//   absl::StatusOr<std::unique_ptr<KeepAlive>> keep = etcd.StartKeepAlive(
//       lease->id, {.interval = absl::Seconds(3), .on_lost = [](absl::Status why) { ... }}, deadline);
//   absl::StatusOr<PrefixResult> members = etcd.GetPrefix("troupe/members/", deadline);
//   absl::StatusOr<std::unique_ptr<Watch>> watch = etcd.WatchPrefix(
//       "troupe/members/", members->revision + 1,
//       {.on_event = [](const WatchEvent& e) { ... }, .on_end = [](const WatchEnd& end) { ... }}, deadline);
//
// Calls. Each call takes a deadline and blocks the calling thread until
// etcd answers, the call fails, or the deadline passes. The two streams,
// KeepAlive and Watch, run on the client's own thread once started; their
// callbacks run there, one at a time, in the order etcd sent the messages.
//
// Errors. Every failure is an absl::Status with gRPC's code as the
// matching absl code (UNAVAILABLE -> kUnavailable, ...) and a message that
// names the etcd operation, what it was about and what etcd or gRPC said:
//   etcd Range of key "troupe/x" at 127.0.0.1:2379: failed to connect to all addresses; ...
//   etcd LeaseRevoke of lease 7587870045327937310 at 127.0.0.1:2379: etcdserver: requested lease not found
// A deadline that passes is kDeadlineExceeded. While etcd is unreachable a
// call fails at once with kUnavailable, unless the client was made with
// wait_for_connection, in which case it waits for a connection until its
// deadline. The channel reconnects by itself (with backoff, at most
// max_reconnect_backoff apart), so a call after etcd restarts succeeds
// without a new client; streams do not come back: a broken one reports it
// (on_lost, on_end) and the caller starts another.
//
// Who may call what:
//   - The unary calls (Grant ... CreateIfAbsent) from any thread, at once
//     from several. From a callback they work but hold up every stream of
//     the client while they wait, and an actor handler should not make them
//     (they block its worker): run them on a thread of their own.
//   - StartKeepAlive and WatchPrefix from any thread except the client's
//     own: they wait for etcd's first answer, which that thread delivers;
//     from a callback they fail with kFailedPrecondition.
//   - A KeepAlive or Watch may be destroyed on any thread, its own
//     callbacks included. Destroyed elsewhere, it waits for a callback of
//     it that is running; no callback of it starts afterwards.
//   - Destroy every KeepAlive and Watch first, then the client (the
//     client's destructor ends streams still open and stops its thread; a
//     handle destroyed later is harmless). Never destroy the client from
//     one of its callbacks.
//
// Revisions: etcd numbers every change of its store; a key's
// create_revision and mod_revision are the revisions of its creation and
// last change, and every result carries the store's revision when it was
// read, from which a watch can start (revision + 1) without missing or
// repeating a change.

#ifndef TROUPE_CLUSTER_ETCD_ETCD_CLIENT_H_
#define TROUPE_CLUSTER_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace troupe::cluster::etcd {

namespace internal {
class KeepAliveCall;
class WatchCall;
}  // namespace internal

// etcd's lease id; kNoLease (0) means "no lease".
using LeaseId = int64_t;
inline constexpr LeaseId kNoLease = 0;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision that created the key
  int64_t mod_revision = 0;     // revision of its last change
  int64_t version = 0;          // changes since it was created, from 1
  LeaseId lease = kNoLease;     // the lease the key goes with
};

struct GetResult {
  std::optional<KeyValue> kv;  // empty: no such key
  int64_t revision = 0;        // the store's revision that was read
};

struct PrefixResult {
  std::vector<KeyValue> kvs;  // every key with the prefix, in key order
  int64_t revision = 0;       // the store's revision that was read
};

struct DeleteResult {
  bool deleted = false;  // false: there was no such key
  int64_t revision = 0;  // the store's revision after the call
};

struct CreateResult {
  bool created = false;              // false: the key existed; nothing was written
  int64_t revision = 0;              // the store's revision after the call
  std::optional<KeyValue> existing;  // the key that was there, if !created
};

struct SwapResult {
  bool written = false;             // false: the key had changed; nothing was written
  int64_t revision = 0;             // the store's revision after the call (the key's, if written)
  std::optional<KeyValue> current;  // if !written: the key as it is (empty: it does not exist)
};

struct Lease {
  LeaseId id = kNoLease;
  absl::Duration ttl;  // as granted: etcd may raise a short TTL to its minimum
};

struct EtcdClientOptions {
  std::string address;  // "host:port" of etcd's client URL
  // Calls (and stream starts) wait for a connection until their deadline
  // instead of failing at once with kUnavailable while etcd is unreachable.
  bool wait_for_connection = false;
  // Longest pause between two connection attempts while etcd is down.
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
};

// Keeps a lease alive over one LeaseKeepAlive stream: a keepalive every
// `interval`, one in flight at a time. The lease is lost (on_lost, once)
// when etcd answers TTL 0 (kNotFound: it expired or was revoked), when a
// keepalive goes unanswered for `reply_timeout` (kDeadlineExceeded), or
// when the stream fails (gRPC's code, e.g. kUnavailable); nothing is sent
// after that (and kCancelled if the client is destroyed first). Pick
// interval and reply_timeout well inside the lease's TTL.
struct KeepAliveOptions {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration reply_timeout = absl::Seconds(3);
  absl::AnyInvocable<void(absl::Status why)> on_lost = nullptr;  // optional
  // Each renewal etcd confirmed (optional): when the keepalive it answers
  // was sent — the lease lasts at least `ttl` from then — and the TTL.
  absl::AnyInvocable<void(absl::Time sent, absl::Duration ttl)> on_renewed = nullptr;
};

class KeepAlive {
 public:
  ~KeepAlive();  // stops keeping the lease alive (it is not revoked)
  KeepAlive(const KeepAlive&) = delete;
  KeepAlive& operator=(const KeepAlive&) = delete;

  LeaseId lease() const { return lease_; }
  // The TTL of etcd's latest reply; zero once the lease is lost.
  absl::Duration ttl() const;

 private:
  friend class EtcdClient;
  KeepAlive(LeaseId lease, std::shared_ptr<internal::KeepAliveCall> call);

  const LeaseId lease_;
  const std::shared_ptr<internal::KeepAliveCall> call_;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // The key after a put; after a delete, its key and, as mod_revision, the
  // revision of the delete (the value is empty).
  KeyValue kv;
  // The key before the change, when etcd still had it (a put of a new key
  // has none).
  std::optional<KeyValue> prev_kv;
};

// Why a watch ended: kUnavailable etc. when its stream failed ("Socket
// closed" when etcd went away); kOutOfRange when the start revision was
// compacted (compact_revision is the oldest revision etcd still has: read
// the keys again and watch from there; etcd 3.4 creates such a watch and
// then cancels it, so this comes here, not from WatchPrefix); kAborted
// when etcd cancelled the watch for another reason (the message says
// which); kCancelled when the client was destroyed first.
struct WatchEnd {
  absl::Status status;
  int64_t compact_revision = 0;
};

struct WatchCallbacks {
  absl::AnyInvocable<void(const WatchEvent&)> on_event;
  absl::AnyInvocable<void(const WatchEnd&)> on_end;  // once; optional
};

// A watch of a prefix over one Watch stream; destroy it to stop watching.
class Watch {
 public:
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

 private:
  friend class EtcdClient;
  explicit Watch(std::shared_ptr<internal::WatchCall> call);

  const std::shared_ptr<internal::WatchCall> call_;
};

class EtcdClient {
 public:
  // Makes the channel and starts the client's thread; connects on the
  // first call.
  explicit EtcdClient(EtcdClientOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::string& address() const;

  // Leases (etcd counts TTLs in whole seconds; shorter rounds up).
  absl::StatusOr<Lease> Grant(absl::Duration ttl, absl::Time deadline);
  // Ends the lease and deletes its keys. kNotFound if it is gone already.
  absl::Status Revoke(LeaseId lease, absl::Time deadline);
  // The time the lease has left; kNotFound if it expired or was revoked.
  absl::StatusOr<absl::Duration> TimeToLive(LeaseId lease, absl::Time deadline);
  // Returns once etcd answered the first keepalive: kNotFound if the lease
  // is gone already.
  absl::StatusOr<std::unique_ptr<KeepAlive>> StartKeepAlive(LeaseId lease, KeepAliveOptions options,
                                                            absl::Time deadline);

  // Keys. `lease` kNoLease: the key stays until deleted. Put returns the
  // store's revision after the put (the key's new mod_revision).
  absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value, LeaseId lease, absl::Time deadline);
  absl::StatusOr<GetResult> Get(std::string_view key, absl::Time deadline);
  absl::StatusOr<PrefixResult> GetPrefix(std::string_view prefix, absl::Time deadline);
  absl::StatusOr<DeleteResult> Delete(std::string_view key, absl::Time deadline);
  // Puts the key only if it does not exist, atomically (a Txn that
  // compares its create_revision with 0).
  absl::StatusOr<CreateResult> CreateIfAbsent(std::string_view key, std::string_view value, LeaseId lease,
                                              absl::Time deadline);

  // Puts the key only if its mod_revision is still `expected` (0: only if
  // it does not exist), atomically (a Txn comparing the revision). Compare
  // and swap for read-modify-write: read, compute, PutIfUnchanged with the
  // revision read, and on !written start again from `current`.
  absl::StatusOr<SwapResult> PutIfUnchanged(std::string_view key, std::string_view value, int64_t expected,
                                            absl::Time deadline);

  // Watches every key with `prefix`, delivering each change from
  // `start_revision` on (0: from now on) to callbacks.on_event. Returns
  // once etcd has created the watch; events may arrive before it returns.
  absl::StatusOr<std::unique_ptr<Watch>> WatchPrefix(std::string_view prefix, int64_t start_revision,
                                                     WatchCallbacks callbacks, absl::Time deadline);

 private:
  struct Impl;
  const std::unique_ptr<Impl> impl_;
};

// The end of the key range of every key that starts with `prefix`: the
// prefix with its last byte below 0xff incremented (and what follows
// dropped); "\0" (every key) when there is no such byte.
std::string PrefixRangeEnd(std::string_view prefix);

}  // namespace troupe::cluster::etcd

#endif  // TROUPE_CLUSTER_ETCD_ETCD_CLIENT_H_
