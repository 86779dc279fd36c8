// KeepAliveCall: the LeaseKeepAlive stream behind a KeepAlive (see
// KeepAliveOptions in cluster/etcd/etcd_client.h for what it promises).
//
// On the loop thread: the first keepalive goes out when the stream opens;
// a timer then ticks every `interval`. A tick sends the next keepalive if
// the last one was answered, and ends the call (kDeadlineExceeded) if it
// has been waiting for `reply_timeout`. A reply with TTL > 0 renews; TTL 0
// ends the call (kNotFound). The first reply is the start WaitStarted
// waits for.

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_KEEP_ALIVE_CALL_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_KEEP_ALIVE_CALL_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "cluster/etcd/etcd.grpc.pb.h"
#include "cluster/etcd/etcd_client.h"
#include "cluster/etcd/internal/bidi_call.h"

namespace troupe::cluster::etcd::internal {

class KeepAliveCall final
    : public BidiCall<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveCall(StreamLoop* loop, Operation operation, bool wait_for_ready, LeaseId lease,
                KeepAliveOptions options);

  // Any thread, once.
  void Begin(etcdserverpb::Lease::Stub* stub);

  // Any thread: the TTL of the latest reply, zero once lost.
  absl::Duration ttl() const;

 private:
  void OnOpened() override;
  void OnResponse(const etcdserverpb::LeaseKeepAliveResponse& response) override;
  void OnTimer() override;
  void OnClosed(const absl::Status& why) override;

  etcdserverpb::LeaseKeepAliveRequest Request() const;

  const LeaseId lease_;
  KeepAliveOptions options_;  // on_lost is called on the loop thread only

  // Loop thread only: when the keepalive in flight was sent.
  std::optional<absl::Time> unanswered_since_;

  // Written on the loop thread, read by ttl() on any: relaxed, as it is a
  // value on its own that publishes nothing else.
  std::atomic<int64_t> ttl_seconds_{0};
};

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_KEEP_ALIVE_CALL_H_
