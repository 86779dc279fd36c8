# Messages of the node tests (net/node_test.cc).

@0xf4559cdc391afb49;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::nettest");

using Troupe = import "/net/wire/troupe.capnp";

struct Add { by @0 :Int64; }
struct Get {}
struct Echo { text @0 :Text; }
struct Hold {}
struct Register {
  who @0 :Troupe.ActorAddress $Troupe.actor("troupe::nettest::Collector");
}
struct Note { text @0 :Text; }
struct CounterArgs { start @0 :Int64; }
struct Quit {}
struct Seq {
  sender @0 :UInt32;
  n @1 :Int64;
}
struct Tally {}
struct TallyResult {
  total @0 :Int64;
  outOfOrder @1 :Int64;
}
