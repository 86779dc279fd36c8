# The envelope every message between troupe nodes travels in.
#
# A frame on the wire carries one Cap'n Proto message whose root is an
# Envelope. The payload is the message itself, a struct from a user's schema;
# `typeId` is that struct's Cap'n Proto schema id, so the receiving node can
# decode the payload into the C++ type the target actor handles.

@0xb2da3ad9de79a73a;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::wire");

# Where an actor lives: its node and its id on that node.
struct ActorAddress {
  node @0 :Text;
  # "host:port" the actor's node listens on; empty for an actor of the node
  # that reads the address.

  incarnation @1 :UInt64;
  # Which start of that node: a restarted node has a new incarnation, so an
  # address from before the restart never reaches a new actor by mistake.

  actor @2 :UInt64;
  # The actor's id, unique within one incarnation of its node.
}

struct Envelope {
  target @0 :ActorAddress;
  sender @1 :ActorAddress;
  # Where replies and errors go; unset for a tell from outside any actor.

  requestId @2 :UInt64;
  # Non-zero for an ask and for its reply, which carries the same id.

  typeId @3 :UInt64;
  # Cap'n Proto schema id of the payload's struct type.

  payload @4 :AnyPointer;
}
