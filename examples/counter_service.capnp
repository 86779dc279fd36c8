# Messages of the sharded counter service (examples/counter_service.cc).
#
# Every node hosts shards (actors holding the counts of the keys that hash
# to them) and a directory (published as "directory") that describes the
# node and the cluster members it knows. A key's shard: FNV-1a of the key,
# modulo the number of shards of the cluster, over the shards sorted by
# (node, index).

@0xf3378a1f4735993b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("counter");

using Troupe = import "/net/wire/troupe.capnp";

# --- To a shard ------------------------------------------------------------

# A tell: adds `by` to the key's count.
struct Increment {
  key @0 :Text;
  by @1 :Int64;
}

# An ask: the key's count (an Int64; 0 for a key never incremented).
struct Read {
  key @0 :Text;
}

# An ask answered once the key's count reaches `atLeast`, with the count
# then (an Int64). A long poll: the shard holds the reply until then.
struct Await {
  key @0 :Text;
  atLeast @1 :Int64;
}

# An ask: ShardStats.
struct GetShardStats {}

struct ShardStats {
  keys @0 :UInt64;        # keys with a count
  increments @1 :UInt64;  # Increment messages applied since the shard started
  total @2 :Int64;        # the sum of its counts
  waiting @3 :UInt64;     # Await asks held
}

# --- To a node's directory -----------------------------------------------

struct ShardInfo {
  node @0 :Text;
  index @1 :UInt32;
  shard @2 :Troupe.ActorAddress $Troupe.actor("counter::Shard");
}

struct MemberInfo {
  node @0 :Text;
  directory @1 :Troupe.ActorAddress $Troupe.actor("counter::Directory");
}

# An ask: NodeInfo.
struct Describe {}

struct NodeInfo {
  node @0 :Text;
  address @1 :Text;
  # Where it listens, as it bound it ("0.0.0.0:7000" for any interface).
  shards @2 :List(ShardInfo);
  members @3 :List(MemberInfo);
  # The other nodes it knows and has not seen leave or fail.
  messagesIn @4 :UInt64;
  messagesOut @5 :UInt64;
  connections @6 :UInt64;
  incarnation @7 :UInt64;
  # The node's incarnation (troupe::Node::incarnation): a restarted node
  # has a new one.
}

# An ask from a node joining the cluster: the directory describes the
# joiner (a Describe through `member.directory`), adds it to its members,
# and replies how many nodes it now knows, itself included (a UInt32).
struct Join {
  member @0 :MemberInfo;
}


# An ask: the node replies "leaving" and shuts down; its Node's leave tells
# the other members (NodeLeft).
struct Leave {}

# An ask: the node starts a client that sends `increments` Increment tells,
# to key i % keys for i in [0, increments), each to the key's shard among
# `shards` (the ring, already sorted), and then tells `reportTo` a
# ClientDone. Replies ClientStarted.
struct RunClient {
  client @0 :Text;
  increments @1 :Int64;
  keys @2 :Int64;
  keyPrefix @3 :Text;
  shards @4 :List(ShardInfo);
  reportTo @5 :Troupe.ActorAddress $Troupe.actor("counter::Reporter");
  paceNanos @6 :Int64;
  # If positive, the client sends one increment per pace (nanoseconds), so
  # that sending spans that long; 0: as fast as the connections take them.
}

struct ClientStarted {
  client @0 :Troupe.ActorAddress $Troupe.actor("counter::Client");
}

# --- To the node running a workload --------------------------------------

struct ClientDone {
  client @0 :Text;
  node @1 :Text;
  sent @2 :Int64;
  failed @3 :Int64;
  # Tells refused: the shard's node unreachable, or its connection's buffer
  # full for too long.
  seconds @4 :Float64;
}
