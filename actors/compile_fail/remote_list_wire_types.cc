// Must compile: the control case for remote_list_plain_struct.cc. Known
// stands for a struct of a .capnp schema: its WireTraits are declared as
// the generated header declares them (nothing is linked: the test only
// compiles).
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};

template <>
struct troupe::WireTraits<Known> {
  static constexpr uint64_t kTypeId = 0xa1b2c3d4e5f60718u;
  static constexpr std::string_view kName = "Known";
  static void Encode(const Known& value, WireWriter& out);
  static absl::StatusOr<Known> Decode(WireReader& in);
};

struct Room : troupe::Actor<Room> {
  using Remote = troupe::Accepts<Known>;
  void On(const Known&) {}
};

troupe::Ref<Room> Start(troupe::ActorSystem& sys) { return sys.Spawn<Room>(); }
