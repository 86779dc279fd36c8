# Every field type troupe messages support, for the codec tests. The
# interop test compiles a copy with capnpc-c++ (namespace changed by a
# genrule in net/codegen/BUILD), so imports here are absolute.

@0xddc410b69a28c853;

using Cxx = import "/capnp/c++.capnp";
using Troupe = import "/net/wire/troupe.capnp";
using Common = import "/net/codegen/testdata/common.capnp";
$Cxx.namespace("troupe::codegen_test");

enum Color {
  red @0;
  green @1;
  darkBlue @2;
}

# One field of each scalar type, all with zero defaults.
struct Scalars {
  flag @0 :Bool;
  i8 @1 :Int8;
  i16 @2 :Int16;
  i32 @3 :Int32;
  i64 @4 :Int64;
  u8 @5 :UInt8;
  u16 @6 :UInt16;
  u32 @7 :UInt32;
  u64 @8 :UInt64;
  f32 @9 :Float32;
  f64 @10 :Float64;
  color @11 :Color;
  otherFlag @12 :Bool;
}

# Schema defaults of every kind, extremes included.
struct Defaults {
  flag @0 :Bool = true;
  i8 @1 :Int8 = -128;
  i16 @2 :Int16 = -1600;
  i32 @3 :Int32 = -2147483648;
  i64 @4 :Int64 = -9223372036854775808;
  u8 @5 :UInt8 = 200;
  u16 @6 :UInt16 = 60000;
  u32 @7 :UInt32 = 4000000000;
  u64 @8 :UInt64 = 18446744073709551615;
  f32 @9 :Float32 = 1.5;
  f64 @10 :Float64 = -2.25e-300;
  inf @11 :Float64 = inf;
  color @12 :Color = darkBlue;
  shade @13 :Common.Shade = dark;
  text @14 :Text = "hello \"world\"?\n";
  blob @15 :Data = 0x"00 01 fe";
  ints @16 :List(Int32) = [1, -2, 3];
  names @17 :List(Text) = ["a", "b"];
  point @18 :Common.Point = (x = 3, y = 4);
  points @19 :List(Common.Point) = [(x = 1), (y = 2)];
  colors @20 :List(Color) = [green, red];
  matrix @21 :List(List(UInt8)) = [[1, 2], [], [3]];
  emptyText @22 :Text = "";
}

struct Post {
  # A message with one field of each kind.

  struct Inner {
    note @0 :Text;
    shade @1 :Common.Shade;
  }

  enum Kind {
    plain @0;
    urgent @1;
  }

  text @0 :Text;
  # A comment that becomes a C++ comment.
  blob @1 :Data;
  seq @2 :Int64;
  color @3 :Color;
  values @4 :List(Int64);
  inner @5 :Inner;
  room @6 :Troupe.ActorAddress $Troupe.actor("troupe::codegen_test::Room");
  anyone @7 :Troupe.ActorAddress;
  tags @8 :List(Text);
  matrix @9 :List(List(Int32));
  items @10 :List(Inner);
  textGrid @11 :List(List(Text));
  itemGroups @12 :List(List(Inner));
  blobs @13 :List(Data);
  colors @14 :List(Color);
  flags @15 :List(Bool);
  where @16 :Common.Point;
  scalars @17 :Scalars;
  ratios @18 :List(Float64);
  kind @19 :Kind;
  points @20 :List(Common.Point);
  userID @21 :UInt64;
}

# Recursive through a list.
struct Tree {
  label @0 :Text;
  children @1 :List(Tree);
}

# Field names that are C++ keywords.
struct Keywords {
  class @0 :Int32;
  new @1 :Text;
}

# An older version of Newer: the same first fields, fewer of them.
struct Older {
  a @0 :Int64;
  b @1 :Text;
}

struct Newer {
  a @0 :Int64;
  b @1 :Text;
  c @2 :Int32 = 42;
  d @3 :Text = "d";
  e @4 :Bool = true;
  f @5 :List(Int32) = [7];
  g @6 :Common.Point = (x = 5);
}

# The struct the micro-benchmark encodes.
struct Ping {
  seq @0 :Int64;
  sender @1 :Text;
  urgent @2 :Bool;
}

struct Empty {}
