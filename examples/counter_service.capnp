# Messages of the counter service (examples/counter_service.cc), a cluster
# of troupe nodes (cluster/cluster.h) where every key is a Counter entity
# (cluster/entity.h): the cluster places it on one member and activates it
# there on its first message.
#
# Every node also runs a Service, published as "counter": it describes the
# node and its view of the cluster, runs clients for a workload, reads
# keys for whoever is not a member (a workload's driver), and leaves the
# cluster when asked.

@0xf3378a1f4735993b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("counter");

using Troupe = import "/net/wire/troupe.capnp";

# --- To a Counter entity (one per key) -------------------------------------

# A tell: adds `by` to the count.
struct Increment {
  by @0 :Int64;
}

# An ask: adds `by`; replies the count then (an Int64) once the increment
# is kept as the service keeps counts (in the entity's memory, or written
# to the store: docs/cluster.md): an acknowledged increment. Add{by = 0}
# replies once everything the entity received before it is kept.
struct Add {
  by @0 :Int64;
}

# An ask: the count (an Int64; 0 for a key never incremented). With a
# store, the count stored: increments not yet written are not in it.
struct Read {}

# An ask answered once the count reaches `atLeast`, with the count then (an
# Int64). A long poll: the entity holds the reply until then, and hands it
# on to its next activation if it moves meanwhile.
struct Await {
  atLeast @0 :Int64;
}

# From a Counter to its own next activation, sent when it stops because
# its shard moves. In memory: the count it had, added to the new one. With
# a store: the increments it had not written yet (`count`), and its writes
# whose outcome it did not learn (`unsure`): the next activation adds each
# unless the stored tags show it was applied.
struct Carried {
  count @0 :Int64;
  unsure @1 :List(UnsureWrite);
}

struct UnsureWrite {
  tag @0 :Text;
  count @1 :Int64;    # its own increments
  includes @2 :List(Text);
  # Earlier unsure writes whose increments it also carries: if it was
  # applied, they count through it and no more on their own.
}

# --- To a node's Service -----------------------------------------------------

struct MemberInfo {
  node @0 :Text;
  address @1 :Text;
  incarnation @2 :UInt64;
  state @3 :Text;  # joining, up, leaving, down (cluster/membership.h)
}

# An ask: NodeInfo.
struct Describe {}

struct NodeInfo {
  node @0 :Text;
  address @1 :Text;       # its cluster address (Node::address)
  incarnation @2 :UInt64; # a restarted node has a new one
  membership @3 :Text;    # "static" or "etcd <endpoint>"
  hosting @4 :Bool;       # whether it hosts entities now
  members @5 :List(MemberInfo);
  # Every member it knows and has not seen removed, itself included,
  # sorted by address.
  entities @6 :UInt64;    # Counter activations alive on it
  activations @7 :UInt64; # since it started
  handoffsIn @8 :UInt64;  # shards taken over from another member
  handoffsOut @9 :UInt64; # shards handed to another member
  dropped @10 :UInt64;    # tells its region could not deliver
  refused @11 :UInt64;    # asks its region failed
  increments @12 :UInt64; # increments its Counters applied
  messagesIn @13 :UInt64;
  messagesOut @14 :UInt64;
  connections @15 :UInt64;
}

# Asks for whoever is not a member: the count of `key` (Read, an Int64),
# or once it reaches `atLeast` (Await).
struct ReadKey {
  key @0 :Text;
}

struct AwaitKey {
  key @0 :Text;
  atLeast @1 :Int64;
}

# An ask: the node replies "leaving" and leaves the cluster (its shards
# move to the other members), then shuts down.
struct Leave {}

# An ask: the node starts a client that sends `increments` increments, the
# i-th to key `keyPrefix` + "key-" + (i % keys): an Increment tell each,
# except every `askEvery`-th (if positive), which is an Add ask the client
# waits for. Then it tells `reportTo` a ClientDone. Replies ClientStarted.
struct RunClient {
  client @0 :Text;
  increments @1 :Int64;
  keys @2 :Int64;
  keyPrefix @3 :Text;
  reportTo @4 :Troupe.ActorAddress $Troupe.actor("counter::Reporter");
  paceNanos @5 :Int64;
  # If positive, the client sends one increment per pace (nanoseconds), so
  # that sending spans that long; 0: as fast as it can.
  askEvery @6 :Int64;
  countAcked @7 :Bool;
  # If set, the ClientDone says how many Adds were acknowledged per key.
}

struct ClientStarted {
  client @0 :Troupe.ActorAddress $Troupe.actor("counter::Client");
}

# --- To the process running a workload --------------------------------------

struct ClientDone {
  client @0 :Text;
  node @1 :Text;
  sent @2 :Int64;     # increments sent, as tells or asks
  acked @3 :Int64;    # Add asks answered
  unknown @4 :Int64;  # Add asks that failed: the increment may or may not count
  seconds @5 :Float64;
  ackedPerKey @6 :List(Int64);  # with countAcked: by key index
}
