#include "cluster/cluster.h"

#include <algorithm>
#include <atomic>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace troupe::cluster {

namespace {

// Stops one actor and completes `done` once it has stopped.
struct StopWatcher : Actor<StopWatcher> {
  StopWatcher(ActorRef target, Promise<void> done) : target(std::move(target)), done(std::move(done)) {}
  void OnStart() {
    Monitor(target);  // before the stop, so that the Down cannot be missed
    target.Stop();
  }
  void On(const Down&) {
    done.SetValue();
    Stop();
  }
  ActorRef target;
  Promise<void> done;
};

// Stops `actors` and waits until they have, so that none touches the Node
// afterwards. From inside an actor it cannot wait: it only stops them.
void StopAndWait(ActorSystem& system, const std::vector<ActorRef>& actors) {
  std::vector<Future<void>> stopped;
  for (const ActorRef& a : actors) {
    Promise<void> done;
    stopped.push_back(done.GetFuture());
    system.Spawn<StopWatcher>(a, std::move(done));
  }
  for (Future<void>& f : stopped) {
    if (absl::Status s = f.Wait(absl::Seconds(30)); absl::IsDeadlineExceeded(s)) {
      system.log().error("cluster: an actor of the cluster layer did not stop within 30s of the Cluster's end");
    }
  }
}

}  // namespace

namespace {

class StaticProvider final : public MembershipProvider {
 public:
  StaticProvider(std::vector<std::string> members, absl::Duration retry_interval, absl::Duration ask_timeout)
      : members_(std::move(members)), retry_interval_(retry_interval), ask_timeout_(ask_timeout) {}

  absl::StatusOr<Running> Start(ActorSystem& system, Node& node, std::shared_ptr<internal::SharedView> view) override {
    const std::string self = node.address();
    if (members_.empty()) {
      return absl::InvalidArgumentError("cluster: no members listed for the static provider");
    }
    if (std::find(members_.begin(), members_.end(), self) == members_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("cluster: this node's address ", self,
                                                     " is not among the members listed (",
                                                     absl::StrJoin(members_, ", "), ")"));
    }
    Ref<internal::MembershipActor> actor = system.Spawn<internal::MembershipActor>(internal::MembershipConfig{
        .node = &node,
        .members = members_,
        .self_address = self,
        .retry_interval = retry_interval_,
        .ask_timeout = ask_timeout_,
        .view = std::move(view),
    });
    if (absl::Status s = node.Publish(internal::kPublishedName, actor); !s.ok()) {
      actor.Stop();
      return s;
    }
    Running running;
    running.actor = actor;
    running.published = {internal::kPublishedName};
    running.subscribe = [actor](internal::MembershipEvents events) {
      actor.Tell(internal::AddSubscriber{std::move(events)});
    };
    running.leave = [actor] { return actor.Ask(internal::BeginLeave{}); };
    return running;
  }

 private:
  const std::vector<std::string> members_;
  const absl::Duration retry_interval_;
  const absl::Duration ask_timeout_;
};

}  // namespace

std::shared_ptr<MembershipProvider> StaticMembers(std::vector<std::string> members, absl::Duration retry_interval,
                                                  absl::Duration ask_timeout) {
  return std::make_shared<StaticProvider>(std::move(members), retry_interval, ask_timeout);
}

Cluster::Cluster(ActorSystem& system, Node& node, ClusterOptions options)
    : system_(system), node_(node), view_(std::make_shared<internal::SharedView>()) {
  if (node.address().empty()) {
    status_ = absl::FailedPreconditionError("cluster: the node does not listen; call Node::Listen first");
    return;
  }
  std::shared_ptr<MembershipProvider> provider = std::move(options.provider);
  if (provider == nullptr) {
    provider = StaticMembers(std::move(options.static_members), options.retry_interval, options.ask_timeout);
  } else if (!options.static_members.empty()) {
    status_ = absl::InvalidArgumentError("cluster: both a provider and static_members given; use one");
    return;
  }
  absl::StatusOr<MembershipProvider::Running> running = provider->Start(system, node, view_);
  if (!running.ok()) {
    status_ = std::move(running).status();
    return;
  }
  running_ = *std::move(running);
}

Cluster::~Cluster() {
  absl::flat_hash_map<std::string, RegionEntry> regions;
  {
    std::lock_guard<std::mutex> lock(regions_mu_);
    regions.swap(regions_);
  }
  std::vector<ActorRef> actors;
  for (auto& [type, entry] : regions) {
    node_.Unpublish(internal::RegionName(type));
    actors.push_back(entry.ref);
  }
  for (const std::string& name : running_.published) node_.Unpublish(name);
  if (running_.actor) actors.push_back(running_.actor);
  StopAndWait(system_, actors);
}

MembershipView Cluster::view() const { return view_->Get(); }

Future<void> Cluster::Leave() {
  if (!running_.leave) {
    Promise<void> failed;
    Future<void> f = failed.GetFuture();
    failed.SetError(absl::Status(status_.code(), std::string(status_.message())));  // unshared
    return f;
  }
  std::vector<Ref<internal::ShardRegion>> regions;
  {
    std::lock_guard<std::mutex> lock(regions_mu_);
    for (const auto& [type, entry] : regions_) regions.push_back(entry.ref);
  }
  Promise<void> promise;
  Future<void> done = promise.GetFuture();
  // The regions hear of the leave (a MemberChanged) before the leave's
  // reply, so before they are asked to wait for its handoffs.
  running_.leave().OnCompleteInline([regions = std::move(regions), promise = std::move(promise)](absl::Status&& s) mutable {
        if (!s.ok() || regions.empty()) {
          promise.Complete(std::move(s));
          return;
        }
        auto shared = std::make_shared<Promise<void>>(std::move(promise));
        auto left = std::make_shared<std::atomic<size_t>>(regions.size());
        for (const Ref<internal::ShardRegion>& region : regions) {
          region.Ask(internal::AwaitHandedOff{}).OnCompleteInline([shared, left](absl::Status&& r) {
            if (!r.ok()) shared->SetError(std::move(r));
            if (left->fetch_sub(1, std::memory_order_acq_rel) == 1) shared->SetValue();
          });
        }
      });
  return done;
}

absl::Status Cluster::AddRegion(std::string_view type, uint32_t shards, internal::RegionConfig config) {
  std::lock_guard<std::mutex> lock(regions_mu_);
  if (regions_.contains(std::string(type))) {
    return absl::AlreadyExistsError(absl::StrCat("cluster: entities of ", std::string(type), " already run on this node"));
  }
  std::shared_ptr<internal::RegionCounters> counters = config.counters;
  Ref<internal::ShardRegion> region = system_.Spawn<internal::ShardRegion>(std::move(config));
  if (absl::Status s = node_.Publish(internal::RegionName(type), region); !s.ok()) {
    region.Stop();
    return s;
  }
  regions_.emplace(std::string(type), RegionEntry{.ref = region, .shards = shards, .counters = std::move(counters)});
  // After publishing: the members' events start its placement.
  Subscribe(region);
  return absl::OkStatus();
}

void Cluster::FindRegion(std::string_view type, Ref<internal::ShardRegion>* region, uint32_t* shards) const {
  std::lock_guard<std::mutex> lock(regions_mu_);
  auto it = regions_.find(std::string(type));
  if (it == regions_.end()) return;
  *region = it->second.ref;
  *shards = it->second.shards;
}

RegionStats Cluster::RegionStatsOf(std::string_view type) const {
  std::lock_guard<std::mutex> lock(regions_mu_);
  auto it = regions_.find(std::string(type));
  return it == regions_.end() ? RegionStats{} : it->second.counters->Get();
}

}  // namespace troupe::cluster
