# What user schemas import to put actor references in their messages:
#
#   using Troupe = import "/net/wire/troupe.capnp";
#   struct Join {
#     room @0 :Troupe.ActorAddress $Troupe.actor("chat::Room");   # troupe::Ref<chat::Room>
#     anyone @1 :Troupe.ActorAddress;                               # troupe::ActorRef
#   }

@0xd5c1a4c8e0f3b217;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::wire");

# Where an actor lives.
struct ActorAddress {
  node @0 :Text;
  # The name of the actor's node: unique in its cluster.

  incarnation @1 :UInt64;
  # Which start of that node: a restarted node has a new incarnation, so an
  # address from before the restart never reaches a new actor by mistake.

  actor @2 :UInt64;
  # The actor's id, unique within one incarnation of its node.

  address @3 :Text;
  # "host:port" the node listens on; empty for a node that does not listen
  # (reachable only over the connection it opened).
}

annotation actor(field) :Text;
# On an ActorAddress field: the C++ actor type, fully qualified without a
# leading "::" ("chat::Room"). The generated field is troupe::Ref<that type>;
# without the annotation it is an untyped troupe::ActorRef.
