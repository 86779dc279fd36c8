# Messages of troupe's remote workloads (bench/troupe_remote.cc).

@0xe284db9c4c0c6747;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::bench::wire");

# remote-rtt: the request and its echo; remote-oneway: each message.
struct Payload {
  seq @0 :Int64;
  value @1 :Int64;
}

# remote-oneway: asked after the last message.
struct Done {}

struct DoneStats {
  count @0 :Int64;
  sum @1 :UInt64;
}
