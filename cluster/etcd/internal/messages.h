// Conversions from etcd's messages (cluster/etcd/etcd.proto) to the
// client's own types (cluster/etcd/etcd_client.h).

#ifndef TROUPE_CLUSTER_ETCD_INTERNAL_MESSAGES_H_
#define TROUPE_CLUSTER_ETCD_INTERNAL_MESSAGES_H_

#include "cluster/etcd/etcd.pb.h"
#include "cluster/etcd/etcd_client.h"

namespace troupe::cluster::etcd::internal {

KeyValue FromProto(const etcdserverpb::KeyValue& kv);
WatchEvent FromProto(const etcdserverpb::Event& event);

}  // namespace troupe::cluster::etcd::internal

#endif  // TROUPE_CLUSTER_ETCD_INTERNAL_MESSAGES_H_
