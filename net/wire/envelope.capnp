# The frames troupe nodes exchange over one TCP connection (protocol 2).
#
# On the wire each frame is a 4-byte little-endian length and then one
# Cap'n Proto message (standard serialization) whose root is a Frame. See
# docs/protocol.md for the sequence: the handshake (hello, hello, proof,
# proof), then sends, replies and the control frames, both ways.
#
# Field numbers of protocol 1 that a node of protocol 1 reads before it can
# be refused (Frame.hello, Frame.refused, Hello.minVersion) keep their
# numbers and types, so that such a node logs why it was refused.

@0xb2da3ad9de79a73a;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::wire");

using Troupe = import "/net/wire/troupe.capnp";

struct Frame {
  union {
    hello @0 :Hello;
    proof @1 :Data;
    # HMAC-SHA256 over the handshake's transcript (docs/protocol.md).
    refused @2 :Text;
    # The handshake failed; the reason, for the peer's log. The sender closes.
    send @3 :Envelope;
    reply @4 :Reply;
    heartbeat @5 :Void;
    lookup @6 :Lookup;
    spawn @7 :Spawn;
    stop @8 :Stop;
    watch @9 :Watch;
    # Tell me (with `down`) when this actor of yours stops.
    down @10 :Down;
    leave @11 :Text;
    # The sender is leaving the cluster (the reason); it closes next.
    yield @12 :Text;
    # Sent by the acceptor after the connector proved itself: another
    # connection carries the link between these two nodes (the reason); the
    # connector keeps its queued sends for it. The sender closes.
    link @13 :Link;
    # Link my actor `from` with this actor of yours (Actor::Link): when
    # either stops, the other hears of it as an exit. The sender watches the
    # target; the receiver watches `from` (with `watch`).
    unlink @14 :Link;
    # Undo a link made with `link`.
  }
}

struct Hello {
  minVersion @0 :UInt32;
  maxVersion @6 :UInt32;
  # The protocol versions the sender speaks. The acceptor's hello holds the
  # version chosen in both. (A node of protocol 1 sends its one version in
  # minVersion and leaves maxVersion 0.)
  node @1 :Text;
  incarnation @2 :UInt64;
  address @3 :Text;
  # Where the sender listens, "" if it does not.
  challenge @4 :Data;
  # 32 random bytes, fresh for this connection.
  heartbeatIntervalMs @7 :UInt32;
  heartbeatTimeoutMs @8 :UInt32;
  # Must equal the receiver's; a mismatch is refused naming both.
  maxFrameBytes @9 :UInt32;
  # The largest frame the sender accepts after the handshake.
  proofV1 @5 :Data;
  # Protocol 1 sent the acceptor's proof here; protocol 2 never sets it.
}

# A tell (requestId 0) or an ask to an actor of the receiving node.
struct Envelope {
  target @0 :UInt64;
  # The actor's id on the receiving node.
  requestId @1 :UInt64;
  typeId @2 :UInt64;
  # Cap'n Proto schema id of the payload's struct type.
  payload @3 :AnyPointer;
  targetIncarnation @4 :UInt64;
  # The incarnation of the receiving node the target belongs to; a frame
  # for another incarnation is never delivered.
}

# The end of an ask (or of a lookup or spawn): a value or an error.
struct Reply {
  requestId @0 :UInt64;
  code @1 :UInt32;
  # absl::StatusCode; 0 (OK) carries a payload.
  message @2 :Text;
  typeId @3 :UInt64;
  payload @4 :AnyPointer;
  refusedBy @5 :Text;
  # Set when the target refused the message's type: the target's C++
  # actor type, so that the asker can name both types.
  refusedAcceptsSome @6 :Bool;
  # With refusedBy: the actor accepts some types from other nodes (it has a
  # `Remote` list), just not this one.
}

# Reply payload: an ActorAddress, or NotFound.
struct Lookup {
  requestId @0 :UInt64;
  name @1 :Text;
  actorType @2 :Text;
  # The C++ type the asker expects; another type is an error.
}

# Reply payload: the new actor's ActorAddress.
struct Spawn {
  requestId @0 :UInt64;
  actorType @1 :Text;
  argsTypeId @2 :UInt64;
  args @3 :AnyPointer;
}

struct Stop {
  target @0 :UInt64;
  code @1 :UInt32;
  message @2 :Text;
  targetIncarnation @3 :UInt64;
}

struct Watch {
  actor @0 :UInt64;
  incarnation @1 :UInt64;
}

struct Link {
  actor @0 :UInt64;
  incarnation @1 :UInt64;
  from @2 :Troupe.ActorAddress;
}

struct Down {
  actor @0 :UInt64;
  code @1 :UInt32;
  message @2 :Text;
}
