#include "cluster/etcd/internal/messages.h"

namespace troupe::cluster::etcd::internal {

KeyValue FromProto(const etcdserverpb::KeyValue& kv) {
  return KeyValue{
      .key = kv.key(),
      .value = kv.value(),
      .create_revision = kv.create_revision(),
      .mod_revision = kv.mod_revision(),
      .version = kv.version(),
      .lease = kv.lease(),
  };
}

WatchEvent FromProto(const etcdserverpb::Event& event) {
  WatchEvent out;
  out.type = event.type() == etcdserverpb::Event::DELETE ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
  out.kv = FromProto(event.kv());
  if (event.has_prev_kv()) out.prev_kv = FromProto(event.prev_kv());
  return out;
}

}  // namespace troupe::cluster::etcd::internal
