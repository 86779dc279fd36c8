# The built-in reply types of actors/wire.h: what a remote ask's reply of
# type bool, int32_t, int64_t, uint32_t, uint64_t, double or std::string
# (or void) looks like on the wire. Each struct's id is the kTypeId of its
# WireTraits; net/wire/builtin.cc encodes and decodes these layouts, and
# builtin_test.cc checks them against capnpc-c++'s code for this file.

@0xa92345d3086e53ce;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::wire::builtin");

struct BoolValue @0xc58d8eb01a200bf4 {
  value @0 :Bool;
}

struct Int32Value @0x9a85bc4b2b4df8f9 {
  value @0 :Int32;
}

struct Int64Value @0x9a7ac2cd8fbadd98 {
  value @0 :Int64;
}

struct UInt32Value @0xfabec9cec0b9ae72 {
  value @0 :UInt32;
}

struct UInt64Value @0xc832be3f4e5cfada {
  value @0 :UInt64;
}

struct Float64Value @0x8192060f68ce989a {
  value @0 :Float64;
}

struct TextValue @0xc44e90941e79a980 {
  value @0 :Text;
}

struct VoidValue @0xc63e14f1a843b456 {
  # The reply of an ask whose handler returns void: nothing.
}
