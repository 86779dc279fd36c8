# Messages between the membership actors of a cluster's nodes
# (cluster/membership_actor.h). Each node's membership actor is published
# on its Node as "troupe.cluster.membership".

@0xb8c3e51d0a7f4c29;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::cluster::wire");

using Troupe = import "/net/wire/troupe.capnp";

# An ask, answered with the receiver's own Hello: each side learns the
# other's name, incarnation and membership actor. Sent when a member is
# first reached and again whenever its link comes back.
struct Hello {
  name @0 :Text;
  address @1 :Text;
  # Where the sender listens: the member's identity in the static list.
  incarnation @2 :UInt64;
  leaving @3 :Bool;
  # The sender is leaving the cluster (Cluster::Leave).
  membership @4 :Troupe.ActorAddress $Troupe.actor("troupe::cluster::internal::MembershipActor");
}

# A tell: the sender leaves the cluster gracefully; its node shuts down
# after it.
struct Leaving {
  name @0 :Text;
  incarnation @1 :UInt64;
}
