# The frames troupe nodes exchange over one TCP connection.
#
# On the wire each frame is a 4-byte little-endian length and then one
# Cap'n Proto message (standard serialization) whose root is a Frame. See
# docs/protocol.md for the sequence: the handshake (hello, hello + proof,
# proof), then sends, replies and the control frames, both ways.

@0xb2da3ad9de79a73a;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::wire");

using Troupe = import "/net/wire/troupe.capnp";

struct Frame {
  union {
    hello @0 :Hello;
    proof @1 :Data;
    # HMAC-SHA256 answering the peer's challenge (see Hello).
    refused @2 :Text;
    # The handshake failed; the reason, for the peer's log. The sender closes.
    send @3 :Envelope;
    reply @4 :Reply;
    heartbeat @5 :Void;
    lookup @6 :Lookup;
    spawn @7 :Spawn;
    stop @8 :Stop;
    watch @9 :UInt64;
    # Tell me (with `down`) when this actor of yours stops.
    down @10 :Down;
  }
}

struct Hello {
  protocolVersion @0 :UInt32;
  node @1 :Text;
  incarnation @2 :UInt64;
  address @3 :Text;
  # Where the sender listens, "" if it does not.
  challenge @4 :Data;
  # 32 random bytes; the peer proves it knows the cluster secret by
  # answering with HMAC-SHA256(secret, role || challenge || its node || its
  # incarnation).
  proof @5 :Data;
  # Only in the accepting side's hello: its answer to the connector's
  # challenge.
}

# A tell (requestId 0) or an ask to an actor of the receiving node.
struct Envelope {
  target @0 :UInt64;
  # The actor's id on the receiving node.
  requestId @1 :UInt64;
  typeId @2 :UInt64;
  # Cap'n Proto schema id of the payload's struct type.
  payload @3 :AnyPointer;
}

# The end of an ask (or of a lookup or spawn): a value or an error.
struct Reply {
  requestId @0 :UInt64;
  code @1 :UInt32;
  # absl::StatusCode; 0 (OK) carries a payload.
  message @2 :Text;
  typeId @3 :UInt64;
  payload @4 :AnyPointer;
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
}

struct Down {
  actor @0 :UInt64;
  code @1 :UInt32;
  message @2 :Text;
}
