# expect: net/codegen/testdata/bad/any_pointer.capnp: struct Holder, field `anything`: AnyPointer and generic parameters are not supported
@0x8e38fe4ecaf3e0e7;
struct Holder {
  anything @0 :AnyPointer;
}
