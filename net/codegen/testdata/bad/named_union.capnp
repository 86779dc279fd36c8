# expect: net/codegen/testdata/bad/named_union.capnp: struct Shape, field `kind`: groups and named unions are not supported
@0xf2f3e39293b6ef75;
struct Shape {
  kind :union {
    circle @0 :Float64;
    square @1 :Float64;
  }
}
