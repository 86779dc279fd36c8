# Messages of troupe's cluster workloads (bench/troupe_cluster.cc).

@0x8342b1ea37b0d5df;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::bench::cwire");

# entity-rtt: asked of an entity (or of a plain remote actor), answered with
# `seq` (an Int64); entity-handoff: told, to activate an entity.
struct Hit {
  seq @0 :Int64;
}
