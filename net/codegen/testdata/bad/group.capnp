# expect: net/codegen/testdata/bad/group.capnp: struct Person, field `address`: groups and named unions are not supported
@0x957880d54d34d081;
struct Person {
  address :group {
    street @0 :Text;
    city @1 :Text;
  }
}
