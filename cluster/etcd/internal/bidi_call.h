// BidiCall<Request, Response>: one bidirectional gRPC stream of an
// EtcdClient, driven by the client's StreamLoop. KeepAliveCall and
// WatchCall derive from it and add what their messages mean.
//
// Every operation on the stream is issued on the loop's thread and its
// completion runs there too, so the stream's state needs no lock. Each
// pending operation's tag holds a shared_ptr to the call, which keeps it
// alive until its last operation completed, whoever dropped the handle.
//
// The life of a call, on the loop thread unless said otherwise:
//   1. Begin (any thread) registers it with the loop and posts the start:
//      the stream is opened and a read issued; once started, its first
//      request is written.
//   2. Every response goes to OnResponse, then the next read is issued.
//      Send queues requests and writes one at a time.
//   3. It ends when a read fails (etcd or the connection ended the
//      stream, or Cancel: its user closed it, or the client is going away)
//      or when the derived class calls End, which cancels the gRPC context
//      too, so pending operations fail soon. Nothing is sent after that,
//      and a response that crossed End is dropped.
//   4. Once no read or write is pending, Finish fetches gRPC's status.
//   5. Once Finish and the timer are done it closes: the reason (End's, or
//      the stream's status) goes to OnClosed, if the call had started well
//      (else it is the start's error), and the loop is told (Closed).
//
// With the user, across threads (under mu_): WaitStarted waits for the
// derived class's ReportStarted or for the close; Close marks the call
// closed by its user, cancels it and, off the loop thread, waits for it to
// close, so a callback of the user that is running has returned. The
// derived class asks Delivering() before each user callback.

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_BIDI_CALL_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_BIDI_CALL_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/async_stream.h>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/etcd/internal/operation.h"
#include "cluster/etcd/internal/stream_loop.h"

namespace troupe::cluster::etcd::internal {

template <typename Request, typename Response>
class BidiCall : public LoopStream, public std::enable_shared_from_this<BidiCall<Request, Response>> {
 public:
  using Stream = grpc::ClientAsyncReaderWriter<Request, Response>;
  // Makes the stream (a stub's PrepareAsync<Method>); it is started here.
  using Open = absl::AnyInvocable<std::unique_ptr<Stream>(grpc::ClientContext*, grpc::CompletionQueue*)>;

  // Any thread.
  void Cancel() override { context_.TryCancel(); }

  // Any thread but the loop's: waits until the call started (ok or not)
  // or closed, until `deadline`.
  absl::Status WaitStarted(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto answered = [this] { return started_.has_value(); };
    if (deadline == absl::InfiniteFuture()) {
      changed_.wait(lock, answered);
    } else if (!changed_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()), answered)) {
      return operation_.Error(absl::StatusCode::kDeadlineExceeded, "etcd did not answer before the deadline");
    }
    return *started_;
  }

  // Any thread: no callback of the user starts after this; off the loop
  // thread, waits until the call closed (and a running callback returned).
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_by_user_ = true;
    }
    Cancel();
    if (std::this_thread::get_id() == loop_thread_) return;
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return closed_; });
  }

 protected:
  BidiCall(StreamLoop* loop, Operation operation, bool wait_for_ready)
      : loop_(loop), loop_thread_(loop->thread_id()), operation_(std::move(operation)) {
    Configure(&context_, absl::InfiniteFuture(), wait_for_ready);
  }

  const Operation& operation() const { return operation_; }

  // Any thread, once.
  void Begin(Open open, Request first) {
    loop_->Opened(this);
    loop_->Post([self = this->shared_from_this(), open = std::move(open), first = std::move(first)]() mutable {
      self->stream_ = open(&self->context_, self->loop_->cq());
      // The start sends the headers with the stream's write operation: the
      // first request waits for it (a failed start fails the read too).
      self->writing_ = true;
      ++self->pending_;
      self->stream_->StartCall(StreamLoop::Tag([self](bool ok) { self->WriteDone(ok); }));
      self->Send(std::move(first));
      self->Read();
      self->OnOpened();
    });
  }

  // Loop thread: queues a request; it is written after those before it.
  void Send(Request request) {
    if (over()) return;
    unsent_.push_back(std::move(request));
    if (!writing_) WriteNext();
  }

  // Loop thread: ends the call with `why` (given to OnClosed).
  void End(absl::Status why) {
    if (ending_) return;
    ending_ = true;
    reason_ = std::move(why);
    unsent_.clear();
    context_.TryCancel();
    if (timer_pending_) timer_->Cancel();
    MaybeFinish();
  }

  // Loop thread: OnTimer runs after `after` (one timer at a time; none
  // once the stream is over).
  void ArmTimer(absl::Duration after) {
    if (over()) return;
    timer_ = std::make_unique<grpc::Alarm>();
    timer_pending_ = true;
    timer_->Set(loop_->cq(), absl::ToChronoTime(absl::Now() + after),
                StreamLoop::Tag([self = this->shared_from_this()](bool fired) {
                  self->timer_pending_ = false;
                  if (fired && !self->over()) self->OnTimer();
                  self->MaybeClose();
                }));
  }

  // Loop thread: the start's outcome, for WaitStarted; the first report
  // counts. The derived class ends the call after a failed one.
  void ReportStarted(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_.has_value()) return;
    started_ = std::move(status);
    changed_.notify_all();
  }

  // Loop thread: whether a callback of the user may run now.
  bool Delivering() {
    std::lock_guard<std::mutex> lock(mu_);
    return !closed_by_user_;
  }

  // Loop thread hooks.
  virtual void OnOpened() {}
  virtual void OnResponse(const Response& response) = 0;
  virtual void OnTimer() {}
  // Once, last, and only if the call had started well.
  virtual void OnClosed(const absl::Status& why) = 0;

 private:
  // Ending, or etcd or the connection ended it: nothing more is sent.
  bool over() const { return ending_ || read_done_; }

  void Completed() {
    --pending_;
    MaybeFinish();
  }

  void Read() {
    if (ending_) {
      read_done_ = true;
      MaybeFinish();
      return;
    }
    ++pending_;
    stream_->Read(&response_, StreamLoop::Tag([self = this->shared_from_this()](bool ok) {
      --self->pending_;
      if (!ok) {
        self->read_done_ = true;
        self->MaybeFinish();
        return;
      }
      // One that crossed End on the way is dropped.
      if (!self->ending_) self->OnResponse(self->response_);
      self->Read();
    }));
  }

  void WriteNext() {
    writing_ = true;
    ++pending_;
    // Write serializes the request at once; it need not outlive the call.
    stream_->Write(unsent_.front(),
                   StreamLoop::Tag([self = this->shared_from_this()](bool ok) { self->WriteDone(ok); }));
    unsent_.pop_front();
  }

  // The start or a write completed.
  void WriteDone(bool ok) {
    writing_ = false;
    // A failed one means the stream is broken: the read fails too.
    if (ok && !unsent_.empty() && !over()) WriteNext();
    Completed();
  }

  void MaybeFinish() {
    if (finishing_ || !read_done_ || pending_ > 0) return;
    finishing_ = true;
    if (timer_pending_) timer_->Cancel();
    stream_->Finish(&status_, StreamLoop::Tag([self = this->shared_from_this()](bool) {
      self->finished_ = true;
      self->MaybeClose();
    }));
  }

  void MaybeClose() {
    if (!finished_ || timer_pending_ || close_ran_) return;
    close_ran_ = true;
    absl::Status why = reason_.has_value() ? *reason_
                       : status_.ok()      ? operation_.Error(absl::StatusCode::kUnavailable, "etcd ended the stream")
                                           : operation_.Error(status_);
    bool started_well;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!started_.has_value()) started_ = why;
      started_well = started_->ok();
    }
    if (started_well) OnClosed(why);
    timer_.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      changed_.notify_all();
    }
    loop_->Closed(this);  // last: the loop may be gone after it
  }

  StreamLoop* const loop_;
  const std::thread::id loop_thread_;
  const Operation operation_;

  // Loop thread only. The context outlives the stream (declared first).
  grpc::ClientContext context_;
  std::unique_ptr<Stream> stream_;
  Response response_;            // the pending read's target
  std::deque<Request> unsent_;   // the next write is at the front
  grpc::Status status_;          // Finish's
  std::optional<absl::Status> reason_;  // End's
  std::unique_ptr<grpc::Alarm> timer_;
  int pending_ = 0;       // start, read and write operations in flight
  bool writing_ = false;  // the start or a write is in flight
  bool read_done_ = false;
  bool ending_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool timer_pending_ = false;
  bool close_ran_ = false;

  // Shared with the user's threads.
  std::mutex mu_;
  std::condition_variable changed_;
  std::optional<absl::Status> started_;  // guarded by mu_
  bool closed_by_user_ = false;          // guarded by mu_
  bool closed_ = false;                  // guarded by mu_; OnClosed returned
};

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_BIDI_CALL_H_
