# Types that all_types.capnp imports from another troupe_messages library.

@0x8ec8e76a1b124e6d;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::codegen_test::common");

struct Point {
  x @0 :Int32;
  y @1 :Int32 = -1;
}

enum Shade {
  light @0;
  dark @1;
}
