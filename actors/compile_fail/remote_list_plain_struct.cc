// Must NOT compile: Room lists Plain in its `Remote` list, but Plain is not
// a struct of a .capnp schema, so it cannot cross nodes. The test checks
// that the first error is troupe's, naming Plain (see compile_error_test.sh).
#include "actors/actor.h"
#include "actors/actor_system.h"

struct Known {};
struct Plain {};

template <>
struct troupe::WireTraits<Known> {
  static constexpr uint64_t kTypeId = 0xa1b2c3d4e5f60718u;
  static constexpr std::string_view kName = "Known";
  static void Encode(const Known& value, WireWriter& out);
  static absl::StatusOr<Known> Decode(WireReader& in);
};

struct Room : troupe::Actor<Room> {
  using Remote = troupe::Accepts<Known, Plain>;
  void On(const Known&) {}
  void On(const Plain&) {}
};

troupe::Ref<Room> Start(troupe::ActorSystem& sys) { return sys.Spawn<Room>(); }
