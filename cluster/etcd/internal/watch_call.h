// WatchCall: the Watch stream behind a Watch (see WatchPrefix in
// cluster/etcd/etcd_client.h for what it promises).
//
// On the loop thread: the create request goes out when the stream opens.
// etcd's answer with `created` is the start WaitStarted waits for (created
// and cancelled at once is a failed start). Each response's events go to
// on_event in order; a response with `canceled` ends the call, as
// kOutOfRange if etcd compacted the revisions asked for, else kAborted.
// on_end reports why the call ended, unless its user closed it.

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_WATCH_CALL_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_WATCH_CALL_H_

#include <cstdint>
#include <string>

#include "cluster/etcd/etcd.grpc.pb.h"
#include "cluster/etcd/etcd_client.h"
#include "cluster/etcd/internal/bidi_call.h"

namespace troupe::cluster::etcd::internal {

class WatchCall final : public BidiCall<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchCall(StreamLoop* loop, Operation operation, bool wait_for_ready, WatchCallbacks callbacks);

  // Any thread, once: watches [key, range_end) from `start_revision`.
  void Begin(etcdserverpb::Watch::Stub* stub, std::string key, std::string range_end, int64_t start_revision);

 private:
  void OnResponse(const etcdserverpb::WatchResponse& response) override;
  void OnClosed(const absl::Status& why) override;

  // Why etcd cancelled the watch.
  absl::Status Cancelled(const etcdserverpb::WatchResponse& response) const;

  WatchCallbacks callbacks_;  // called on the loop thread only

  // Loop thread only.
  bool created_ = false;
  int64_t compact_revision_ = 0;
};

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_WATCH_CALL_H_
