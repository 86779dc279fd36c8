# expect: net/codegen/testdata/bad/cycle.capnp: struct Egg: holds Chicken by value, which (directly or not) holds it
@0xdca90770f145b563;
struct Chicken {
  egg @0 :Egg;
}
struct Egg {
  chicken @0 :Chicken;
}
