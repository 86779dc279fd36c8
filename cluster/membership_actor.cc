#include "cluster/membership_actor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace troupe::cluster {

std::string_view MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kJoining:
      return "joining";
    case MemberState::kUp:
      return "up";
    case MemberState::kLeaving:
      return "leaving";
    case MemberState::kDown:
      return "down";
    case MemberState::kRemoved:
      return "removed";
  }
  return "unknown";
}

namespace internal {

MembershipActor::MembershipActor(MembershipConfig config) : config_(std::move(config)) {
  std::sort(config_.members.begin(), config_.members.end());
  config_.members.erase(std::unique(config_.members.begin(), config_.members.end()), config_.members.end());
  self_ = Member{.name = config_.node->name(),
                 .address = config_.self_address,
                 .incarnation = config_.node->incarnation(),
                 .state = MemberState::kUp};
}

void MembershipActor::OnStart() {
  config_.node->Subscribe(Self());
  for (const std::string& address : config_.members) {
    if (address == self_.address) continue;
    known_[address].member = Member{.name = "", .address = address, .incarnation = 0, .state = MemberState::kJoining};
    Reach(address, absl::ZeroDuration());
  }
  Publish();
}

wire::Hello MembershipActor::OwnHello() const {
  return wire::Hello{.name = self_.name,
                     .address = self_.address,
                     .incarnation = self_.incarnation,
                     .leaving = self_.state == MemberState::kLeaving,
                     .membership = Self()};
}

wire::Hello MembershipActor::On(const wire::Hello& hello) {
  Learn(hello);
  return OwnHello();
}

void MembershipActor::Learn(const wire::Hello& hello) {
  auto it = known_.find(hello.address);
  if (it == known_.end()) {
    // Not in this node's list: the lists differ between nodes, which the
    // static provider does not allow (majorities would not agree).
    if (hello.address != self_.address) {
      log().error("cluster: {} at {} is not in this node's member list; every node must list the same members",
                  hello.name, hello.address);
    }
    return;
  }
  Known& k = it->second;
  if (k.member.incarnation != 0 && hello.incarnation < k.member.incarnation) return;  // an older one, late
  if (k.member.incarnation != 0 && hello.incarnation > k.member.incarnation &&
      k.member.state != MemberState::kRemoved) {
    SetState(k, MemberState::kRemoved);  // the node restarted: its earlier incarnation is gone
  }
  const bool same = k.member.incarnation == hello.incarnation && k.member.state != MemberState::kRemoved;
  k.member.name = hello.name;
  k.member.incarnation = hello.incarnation;
  k.peer = hello.membership;
  if (!same) k.member.state = MemberState::kJoining;
  const MemberState s = k.member.state;
  if (s == MemberState::kJoining || s == MemberState::kDown || (s == MemberState::kUp && hello.leaving)) {
    SetState(k, hello.leaving ? MemberState::kLeaving : MemberState::kUp);
  }
}

void MembershipActor::On(const wire::Leaving& leaving) {
  Known* k = FindByName(leaving.name);
  if (k == nullptr || k->member.incarnation != leaving.incarnation) return;
  if (k->member.state == MemberState::kUp || k->member.state == MemberState::kDown) {
    SetState(*k, MemberState::kLeaving);
  }
}

void MembershipActor::On(const NodeUp& up) {
  Known* k = FindByName(up.node);
  if (k == nullptr) {
    // A member's first link may come up before its Hello: reach it now
    // rather than at the next retry.
    auto it = known_.find(up.address);
    if (it != known_.end() && it->second.member.state == MemberState::kJoining) Reach(up.address, absl::ZeroDuration());
    return;
  }
  if (up.incarnation == k->member.incarnation && k->member.state == MemberState::kDown) {
    SetState(*k, MemberState::kUp);  // the link healed
  } else if (up.incarnation != k->member.incarnation) {
    Reach(k->member.address, absl::ZeroDuration());  // a new incarnation: its Hello makes it a member
  }
}

void MembershipActor::On(const NodeDown& down) {
  Known* k = FindByName(down.node);
  if (k == nullptr || down.incarnation != k->member.incarnation) return;
  if (down.replaced) {
    SetState(*k, MemberState::kRemoved);
    Reach(k->member.address, absl::ZeroDuration());
    return;
  }
  if (k->member.state == MemberState::kUp || k->member.state == MemberState::kLeaving) {
    SetState(*k, k->member.state == MemberState::kLeaving ? MemberState::kRemoved : MemberState::kDown);
  }
}

void MembershipActor::On(const NodeLeft& left) {
  Known* k = FindByName(left.node);
  if (k == nullptr || left.incarnation != k->member.incarnation) return;
  if (k->member.state != MemberState::kRemoved) SetState(*k, MemberState::kRemoved);
  // It may start again (a new incarnation at the same address).
  Reach(k->member.address, config_.retry_interval);
}

void MembershipActor::On(AddSubscriber&& add) {
  std::vector<Member> now{self_};
  for (const auto& [address, k] : known_) {
    if (k.member.state != MemberState::kJoining && k.member.state != MemberState::kRemoved) now.push_back(k.member);
  }
  subscribers_.Add(std::move(add.events), std::move(now), hosting_, sequence_);
}

Task<void> MembershipActor::On(const ReachMember& reach) {
  const std::string address = reach.address;
  Result<Ref<MembershipActor>> peer =
      co_await config_.node->Lookup<MembershipActor>(address, kPublishedName, config_.ask_timeout);
  if (peer.ok()) {
    Result<wire::Hello> hello = co_await peer->Ask(OwnHello(), config_.ask_timeout);
    if (hello.ok()) {
      auto it = known_.find(address);
      if (it != known_.end()) it->second.reaching = false;
      Learn(*hello);
      co_return;
    }
  }
  auto it = known_.find(address);
  if (it == known_.end()) co_return;
  it->second.reaching = false;
  // Not reachable yet (not started, or gone): try again later, unless it
  // became a live member meanwhile (its own Hello reached us).
  const MemberState s = it->second.member.state;
  if (s == MemberState::kJoining || s == MemberState::kRemoved) Reach(address, config_.retry_interval);
}

void MembershipActor::On(const BeginLeave&) {
  if (self_.state == MemberState::kLeaving) return;
  const MemberState previous = self_.state;
  self_.state = MemberState::kLeaving;
  ++sequence_;
  Publish(MemberChanged{.member = self_, .previous = previous, .sequence = sequence_});
  for (auto& [address, k] : known_) {
    if (k.peer && k.member.state != MemberState::kRemoved) {
      k.peer.Tell(wire::Leaving{.name = self_.name, .incarnation = self_.incarnation});
    }
  }
}

void MembershipActor::Reach(const std::string& address, absl::Duration after) {
  Known& k = known_[address];
  if (k.reaching) return;
  k.reaching = true;
  if (after <= absl::ZeroDuration()) {
    Self().Tell(ReachMember{.address = address});
  } else {
    SendAfter(after, Self(), ReachMember{.address = address});
  }
}

MembershipActor::Known* MembershipActor::FindByName(const std::string& name) {
  for (auto& [address, k] : known_) {
    if (k.member.name == name) return &k;
  }
  return nullptr;
}

void MembershipActor::SetState(Known& k, MemberState state) {
  const MemberState previous = k.member.state;
  if (previous == state) return;
  k.member.state = state;
  if (state == MemberState::kRemoved) k.peer = Ref<MembershipActor>();
  ++sequence_;
  log().info("cluster: member {} ({} incarnation {}) {} -> {}", k.member.name, k.member.address,
                      k.member.incarnation, MemberStateName(previous), MemberStateName(state));
  Publish(MemberChanged{.member = k.member, .previous = previous, .sequence = sequence_});
}

bool MembershipActor::ComputeHosting(std::string* why) const {
  const size_t listed = config_.members.size();
  std::vector<const std::string*> reachable{&self_.address};
  for (const auto& [address, k] : known_) {
    const MemberState s = k.member.state;
    if (s == MemberState::kUp || s == MemberState::kLeaving) reachable.push_back(&k.member.address);
  }
  const size_t n = reachable.size();
  if (2 * n > listed) {
    *why = absl::StrCat(n, " of ", listed, " members reachable: a majority");
    return true;
  }
  if (2 * n == listed) {
    // An even split: the half holding the lowest listed address keeps.
    const std::string& lowest = config_.members.front();
    const bool has_lowest = std::any_of(reachable.begin(), reachable.end(), [&](const std::string* a) { return *a == lowest; });
    *why = absl::StrCat(n, " of ", listed, " members reachable: half, ",
                        has_lowest ? "with" : "without", " the lowest address (", lowest, ")");
    return has_lowest;
  }
  *why = absl::StrCat(n, " of ", listed, " members reachable: a minority");
  return false;
}

void MembershipActor::Publish(std::optional<MemberChanged> change) {
  std::string why;
  const bool hosting = ComputeHosting(&why);
  std::optional<HostingChanged> hosting_changed;
  if (hosting != hosting_) {
    log().warn("cluster: {} {} hosting entities: {}", self_.name, hosting ? "starts" : "stops", why);
    hosting_changed = HostingChanged{.hosting = hosting, .reason = why};
  }
  hosting_ = hosting;
  MembershipView view;
  view.members.push_back(self_);
  for (const auto& [address, k] : known_) {
    if (k.member.state != MemberState::kRemoved && k.member.incarnation != 0) view.members.push_back(k.member);
  }
  view.hosting = hosting_;
  view.sequence = sequence_;
  subscribers_.Publish(*config_.view, std::move(view), change, hosting_changed);
}

namespace {
void SortByAddress(std::vector<Member>& members) {
  std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.address < b.address; });
}
}  // namespace

void Subscribers::Add(MembershipEvents events, std::vector<Member> now, bool hosting, uint64_t sequence) {
  // The current members first, as changes from joining, so a subscriber
  // needs no separate snapshot.
  SortByAddress(now);
  for (const Member& m : now) {
    events.changed(MemberChanged{.member = m, .previous = MemberState::kJoining, .sequence = sequence});
  }
  events.hosting(HostingChanged{.hosting = hosting, .reason = "the state when subscribing"});
  events_.push_back(std::move(events));
}

void Subscribers::Publish(SharedView& shared, MembershipView view, const std::optional<MemberChanged>& change,
                          const std::optional<HostingChanged>& hosting) {
  SortByAddress(view.members);
  shared.Set(std::move(view));
  if (change) {
    for (MembershipEvents& s : events_) s.changed(*change);
  }
  if (hosting) {
    for (MembershipEvents& s : events_) s.hosting(*hosting);
  }
}

}  // namespace internal
}  // namespace troupe::cluster
