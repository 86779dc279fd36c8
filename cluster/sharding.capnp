# Messages between the shard regions of a cluster's nodes
# (cluster/shard_region.h). Each node runs one region per entity type,
# published on its Node as "troupe.cluster.region:<entity type>".

@0xe1d4c99bbf0ebf44;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::cluster::wire");

# A message for one entity, routed by key: a tell as it is, an ask inside
# an EntityAsk.
struct EntityEnvelope {
  entityType @0 :Text;
  # The entity's C++ type; a region of another type refuses it.
  key @1 :Text;
  shard @2 :UInt32;
  typeId @3 :UInt64;
  # The message's wire type id, and its standalone encoding.
  payload @4 :Data;
  forwarded @5 :Bool;
  # Sent on by the shard's previous owner while it hands the shard over:
  # the new owner delivers these before what senders sent it directly.
  origin @6 :Text;
  # The node whose region routed it first.
  hops @7 :UInt32;
  # Regions it has passed; one whose view lags is passed on, a few times
  # at most.
  sender @8 :Text;
  # The node whose region sent it this hop.
}

# An ask, answered with an EntityReply: the entity's reply.
struct EntityAsk {
  envelope @0 :EntityEnvelope;
}

struct EntityReply {
  typeId @0 :UInt64;
  payload @1 :Data;
  # The reply's standalone encoding; empty for a void reply.
}

# A tell to a shard's previous owner: the sender routes the shard to
# `owner` from now on and sends the previous owner nothing more for it
# (from = owner: the new owner asks for the shard). With `request`, the
# other way round: the previous owner, handing the shard over, asks the
# receiver for its fence, which comes at once unless the receiver still
# routes the shard to it (then once it no longer does).
struct ShardFence {
  shard @0 :UInt32;
  from @1 :Text;
  owner @2 :Text;
  request @3 :Bool;
}

# A tell from a shard's previous owner to its new one: its entities have
# stopped and every message it held for them has been sent on.
struct ShardHandedOff {
  shard @0 :UInt32;
  from @1 :Text;
  holder @2 :Text;
  # Set when `from` held nothing for the shard but routed it to this
  # member, which the new owner asks next.
}
