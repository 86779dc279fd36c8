# Messages of the test entity of cluster/entity_test.cc.

@0xbc156093ee1da3c6;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::cluster::testmsg");

# Adds `by`; `seq` counts the sender's messages to this key from 0, so the
# entity can check that they arrive in order.
struct Add {
  sender @0 :Text;
  seq @1 :Int64;
  by @2 :Int64;
}

# An ask: the count (an Int64).
struct Get {}

# An ask whose handler throws.
struct Fail {}

# Adds `by` to a count carried by the entity itself (CarryingCounter).
struct Carry {
  by @0 :Int64;
}
