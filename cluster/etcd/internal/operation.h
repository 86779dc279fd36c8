// Operation: the name of one etcd call for its error messages, "etcd Range
// of key "troupe/x" at 127.0.0.1:2379", and the one place where a gRPC
// status becomes an absl::Status (same canonical code, message prefixed
// with that name). Also the ClientContext settings every call shares.

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_OPERATION_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_OPERATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace troupe::cluster::etcd::internal {

// gRPC's and absl's codes are both the canonical codes; this maps them by
// name, not by number.
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

class Operation {
 public:
  // `rpc`: etcd's method name ("Range", "LeaseKeepAlive", ...); `subject`:
  // what it is about, from KeySubject and friends.
  Operation(std::string_view rpc, std::string subject, std::string_view address);

  static std::string KeySubject(std::string_view key);        // key "..."
  static std::string PrefixSubject(std::string_view prefix);  // prefix "..."
  static std::string LeaseSubject(int64_t lease);             // lease 123

  const std::string& name() const { return name_; }

  // "<name>: <what>" with `code`.
  absl::Status Error(absl::StatusCode code, std::string_view what) const;
  // A failed gRPC call: its code, and its message (or the code's name).
  absl::Status Error(const grpc::Status& status) const;

 private:
  std::string name_;
};

// Sets the deadline (none for absl::InfiniteFuture()) and whether the call
// waits for a connection.
void Configure(grpc::ClientContext* context, absl::Time deadline, bool wait_for_ready);

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_OPERATION_H_
