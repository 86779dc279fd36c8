# Messages of the node fuzzer's test actors (net/fuzz/node_target.cc): a
# scalar, a void ask, text and lists, an enum, a nested struct, a Ref, and
# a stop. Compiled with troupe_messages, so the generated decoders (what a
# receiving actor runs on a payload from the wire) are fuzzed too.

@0xd4d27d6de1a493c9;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::fuzzmsg");

using Troupe = import "/net/wire/troupe.capnp";

enum Mood {
  calm @0;
  loud @1;
}

struct Add { by @0 :Int64; }
struct Get {}
struct Echo {
  text @0 :Text;
  tags @1 :List(Text);
  blob @2 :Data;
}
struct Point {
  x @0 :Int32;
  y @1 :Int32;
}
struct Post {
  seq @0 :Int64;
  mood @1 :Mood;
  at @2 :Point;
  path @3 :List(Point);
  author @4 :Troupe.ActorAddress $Troupe.actor("troupe::net::fuzz::Counter");
  replyTo @5 :Troupe.ActorAddress;
  grid @6 :List(List(Int16));
}
struct Quit {}
struct CounterArgs { start @0 :Int64; }
