// StreamLoop: the EtcdClient's own thread. It runs the gRPC completion
// queue of every stream of the client (KeepAlive, Watch): each operation
// on a stream (start, read, write, finish, a timer) is tagged with a
// closure, which this thread runs when the operation completes, so a
// stream's state and its user's callbacks are touched by this thread
// alone.
//
// Shutdown (the destructor), in order:
//   1. every stream still open is cancelled (its operations complete with
//      failure, and it finishes and closes);
//   2. wait until every stream has closed (Closed), so nothing will be
//      added to the queue any more;
//   3. shut the queue down, drain it, join the thread.
//
// Who may call what: Post, Opened and the destructor from any thread but
// this one; Tag and cq() from any thread; Closed on this thread only.

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_STREAM_LOOP_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_STREAM_LOOP_H_

#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/completion_queue.h>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"

namespace troupe::cluster::etcd::internal {

// A stream of the loop, as the loop sees it.
class LoopStream {
 public:
  virtual ~LoopStream() = default;
  // Any thread: makes the stream end soon (its operations fail).
  virtual void Cancel() = 0;
};

class StreamLoop {
 public:
  StreamLoop();
  ~StreamLoop();
  StreamLoop(const StreamLoop&) = delete;
  StreamLoop& operator=(const StreamLoop&) = delete;

  grpc::CompletionQueue* cq() { return &cq_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

  // A tag for one operation on cq(): the loop runs `done(ok)` once, when
  // the operation completes, then deletes the tag.
  static void* Tag(absl::AnyInvocable<void(bool ok)> done);

  // Runs `fn` on the loop's thread soon (through an alarm that is due at
  // once). Only while a stream is open: Opened comes first.
  void Post(absl::AnyInvocable<void()> fn);

  // A stream opens before its first operation and closes after its last
  // one completed; the destructor cancels the open ones and waits for them.
  void Opened(LoopStream* stream);
  void Closed(LoopStream* stream);

 private:
  void Run();

  grpc::CompletionQueue cq_;
  std::mutex mu_;
  std::condition_variable all_closed_;
  absl::flat_hash_set<LoopStream*> open_;  // guarded by mu_
  std::thread thread_;                      // last: starts once the rest is made
};

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_STREAM_LOOP_H_
