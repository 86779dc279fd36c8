# expect: net/codegen/testdata/bad/bad_actor.capnp: struct Join, field `room`: $Troupe.actor("chat::Room<int>") must name a class at namespace scope
@0xcac564828a4144b4;
using Troupe = import "/net/wire/troupe.capnp";
struct Join {
  room @0 :Troupe.ActorAddress $Troupe.actor("chat::Room<int>");
}
