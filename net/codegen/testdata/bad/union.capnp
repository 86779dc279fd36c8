# expect: net/codegen/testdata/bad/union.capnp: struct Choice: unions are not supported (fields number, name)
@0xe534685f1b0c4c39;
struct Choice {
  id @0 :UInt64;
  union {
    number @1 :Int64;
    name @2 :Text;
  }
}
