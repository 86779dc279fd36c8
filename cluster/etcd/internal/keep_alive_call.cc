#include "cluster/etcd/internal/keep_alive_call.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace troupe::cluster::etcd::internal {

KeepAliveCall::KeepAliveCall(StreamLoop* loop, Operation operation, bool wait_for_ready, LeaseId lease,
                             KeepAliveOptions options)
    : BidiCall(loop, std::move(operation), wait_for_ready), lease_(lease), options_(std::move(options)) {}

void KeepAliveCall::Begin(etcdserverpb::Lease::Stub* stub) {
  BidiCall::Begin(
      [stub](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
        return stub->PrepareAsyncLeaseKeepAlive(context, cq);
      },
      Request());
}

absl::Duration KeepAliveCall::ttl() const {
  return absl::Seconds(ttl_seconds_.load(std::memory_order_relaxed));
}

etcdserverpb::LeaseKeepAliveRequest KeepAliveCall::Request() const {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_);
  return request;
}

void KeepAliveCall::OnOpened() {
  // Begin has sent the first keepalive.
  unanswered_since_ = absl::Now();
  ArmTimer(std::min(options_.interval, options_.reply_timeout));
}

void KeepAliveCall::OnResponse(const etcdserverpb::LeaseKeepAliveResponse& response) {
  // etcd renewed the lease when it read the keepalive, after it was sent.
  const absl::Time sent = unanswered_since_.value_or(absl::Now());
  unanswered_since_.reset();
  if (response.ttl() <= 0) {
    ttl_seconds_.store(0, std::memory_order_relaxed);
    absl::Status gone =
        operation().Error(absl::StatusCode::kNotFound, "the lease expired or was revoked (etcd answered TTL 0)");
    ReportStarted(gone);
    End(std::move(gone));
    return;
  }
  ttl_seconds_.store(response.ttl(), std::memory_order_relaxed);
  ReportStarted(absl::OkStatus());
  if (options_.on_renewed && Delivering()) options_.on_renewed(sent, absl::Seconds(response.ttl()));
}

void KeepAliveCall::OnTimer() {
  const absl::Time now = absl::Now();
  if (!unanswered_since_.has_value()) {
    Send(Request());
    unanswered_since_ = now;
  } else if (now - *unanswered_since_ >= options_.reply_timeout) {
    End(operation().Error(absl::StatusCode::kDeadlineExceeded,
                          absl::StrCat("etcd did not answer a keepalive in ",
                                       absl::FormatDuration(options_.reply_timeout))));
    return;
  }
  // The next tick: the next keepalive, or the reply timeout if sooner.
  ArmTimer(std::min(options_.interval, *unanswered_since_ + options_.reply_timeout - now));
}

void KeepAliveCall::OnClosed(const absl::Status& why) {
  ttl_seconds_.store(0, std::memory_order_relaxed);
  if (options_.on_lost && Delivering()) options_.on_lost(why);
}

}  // namespace troupe::cluster::etcd::internal
