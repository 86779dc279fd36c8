# expect: net/codegen/testdata/bad/ref_list.capnp: struct Members, field `all`: List(Troupe.ActorAddress) is not supported
@0x8f87d88fce8ab272;
using Troupe = import "/net/wire/troupe.capnp";
struct Members {
  all @0 :List(Troupe.ActorAddress);
}
