# expect: net/codegen/testdata/bad/interface.capnp: interface Greeter: interfaces are not supported
@0xaacc5da840bf28f0;
interface Greeter {
  greet @0 (name :Text) -> (text :Text);
}
