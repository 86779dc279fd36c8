# expect: net/codegen/testdata/bad/generic.capnp: struct Box: generic structs are not supported
@0xfcc99ebf39e3ab04;
struct Box(T) {
  value @0 :T;
}
