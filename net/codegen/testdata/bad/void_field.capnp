# expect: net/codegen/testdata/bad/void_field.capnp: struct Tick, field `nothing`: Void fields are not supported
@0xf78890c203535aef;
struct Tick {
  nothing @0 :Void;
}
