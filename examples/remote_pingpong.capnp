# Messages of examples/remote_pingpong.cc: what the pinger node sends the
# ponger node.

@0x8a8f2513fa2edda8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("pingpong");

# An ask: the ponger replies `seq` (an Int64).
struct Ping {
  seq @0 :Int64;
}

# A tell: counted by the ponger, per run, checking that `seq` only goes up.
struct Tick {
  run @0 :UInt64;
  # Which pinger run sent it: its node's incarnation.
  seq @1 :Int64;
}

# An ask: how many ticks of `run` arrived, and how many out of order.
struct CountTicks {
  run @0 :UInt64;
}

struct Ticks {
  received @0 :Int64;
  outOfOrder @1 :Int64;
}
