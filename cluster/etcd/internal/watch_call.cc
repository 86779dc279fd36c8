#include "cluster/etcd/internal/watch_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "cluster/etcd/internal/messages.h"

namespace troupe::cluster::etcd::internal {

WatchCall::WatchCall(StreamLoop* loop, Operation operation, bool wait_for_ready, WatchCallbacks callbacks)
    : BidiCall(loop, std::move(operation), wait_for_ready), callbacks_(std::move(callbacks)) {}

void WatchCall::Begin(etcdserverpb::Watch::Stub* stub, std::string key, std::string range_end,
                      int64_t start_revision) {
  etcdserverpb::WatchRequest request;
  etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
  create->set_key(std::move(key));
  create->set_range_end(std::move(range_end));
  create->set_start_revision(start_revision);
  create->set_prev_kv(true);
  BidiCall::Begin(
      [stub](grpc::ClientContext* context, grpc::CompletionQueue* cq) { return stub->PrepareAsyncWatch(context, cq); },
      std::move(request));
}

absl::Status WatchCall::Cancelled(const etcdserverpb::WatchResponse& response) const {
  if (response.compact_revision() > 0) {
    return operation().Error(absl::StatusCode::kOutOfRange,
                             absl::StrCat("etcd compacted its history: revision ", response.compact_revision(),
                                          " is the oldest it has"));
  }
  return operation().Error(
      absl::StatusCode::kAborted,
      absl::StrCat("etcd cancelled the watch: ",
                   response.cancel_reason().empty() ? "no reason given" : response.cancel_reason()));
}

void WatchCall::OnResponse(const etcdserverpb::WatchResponse& response) {
  if (!created_) {
    // etcd's first answer is the one to the create request.
    created_ = true;
    if (response.canceled()) {
      compact_revision_ = response.compact_revision();
      absl::Status failed = Cancelled(response);
      ReportStarted(failed);
      End(std::move(failed));
      return;
    }
    ReportStarted(absl::OkStatus());
  }
  for (const etcdserverpb::Event& event : response.events()) {
    if (!callbacks_.on_event || !Delivering()) break;
    callbacks_.on_event(FromProto(event));
  }
  if (response.canceled()) {
    compact_revision_ = response.compact_revision();
    End(Cancelled(response));
  }
}

void WatchCall::OnClosed(const absl::Status& why) {
  if (callbacks_.on_end && Delivering()) callbacks_.on_end(WatchEnd{.status = why, .compact_revision = compact_revision_});
}

}  // namespace troupe::cluster::etcd::internal
