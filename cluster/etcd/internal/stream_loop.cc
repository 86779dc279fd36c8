#include "cluster/etcd/internal/stream_loop.h"

#include <chrono>
#include <memory>
#include <utility>

#include <grpcpp/alarm.h>

namespace troupe::cluster::etcd::internal {
namespace {

struct Tagged {
  absl::AnyInvocable<void(bool ok)> done;
};

}  // namespace

StreamLoop::StreamLoop() : thread_([this] { Run(); }) {}

StreamLoop::~StreamLoop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Cancel only asks gRPC to fail the stream's operations: it calls
    // nothing back, so it is safe under the lock.
    for (LoopStream* stream : open_) stream->Cancel();
    all_closed_.wait(lock, [this] { return open_.empty(); });
  }
  cq_.Shutdown();
  thread_.join();
}

void* StreamLoop::Tag(absl::AnyInvocable<void(bool ok)> done) { return new Tagged{std::move(done)}; }

void StreamLoop::Post(absl::AnyInvocable<void()> fn) {
  auto alarm = std::make_unique<grpc::Alarm>();
  grpc::Alarm* raw = alarm.get();
  // The tag owns the alarm; it is deleted after it fired.
  raw->Set(&cq_, std::chrono::system_clock::now(),
           Tag([alarm = std::move(alarm), fn = std::move(fn)](bool) mutable { fn(); }));
}

void StreamLoop::Opened(LoopStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.insert(stream);
}

void StreamLoop::Closed(LoopStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(stream);
  if (open_.empty()) all_closed_.notify_all();
}

void StreamLoop::Run() {
  void* tag = nullptr;
  bool ok = false;
  // Next returns false once the queue is shut down and drained.
  while (cq_.Next(&tag, &ok)) {
    std::unique_ptr<Tagged> tagged(static_cast<Tagged*>(tag));
    tagged->done(ok);
  }
}

}  // namespace troupe::cluster::etcd::internal
