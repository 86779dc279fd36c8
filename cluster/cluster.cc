#include "cluster/cluster.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace troupe::cluster {

Cluster::Cluster(ActorSystem& system, Node& node, ClusterOptions options)
    : node_(node), view_(std::make_shared<internal::SharedView>()) {
  const std::string self = node.address();
  if (self.empty()) {
    status_ = absl::FailedPreconditionError("cluster: the node does not listen; call Node::Listen first");
    return;
  }
  if (options.static_members.empty()) {
    status_ = absl::InvalidArgumentError("cluster: no members listed (ClusterOptions::static_members)");
    return;
  }
  if (std::find(options.static_members.begin(), options.static_members.end(), self) == options.static_members.end()) {
    status_ = absl::InvalidArgumentError(absl::StrCat("cluster: this node's address ", self,
                                                      " is not among the members listed (",
                                                      absl::StrJoin(options.static_members, ", "), ")"));
    return;
  }
  membership_ = system.Spawn<internal::MembershipActor>(internal::MembershipConfig{
      .node = &node,
      .members = std::move(options.static_members),
      .self_address = self,
      .retry_interval = options.retry_interval,
      .ask_timeout = options.ask_timeout,
      .view = view_,
  });
  if (absl::Status s = node.Publish(internal::kPublishedName, membership_); !s.ok()) {
    status_ = s;
    membership_.Stop();
    membership_ = Ref<internal::MembershipActor>();
  }
}

Cluster::~Cluster() {
  if (membership_) {
    node_.Unpublish(internal::kPublishedName);
    membership_.Stop();
  }
}

MembershipView Cluster::view() const { return view_->Get(); }

Future<void> Cluster::Leave() {
  if (!membership_) {
    Promise<void> failed;
    Future<void> f = failed.GetFuture();
    failed.SetError(absl::Status(status_.code(), std::string(status_.message())));  // unshared
    return f;
  }
  return membership_.Ask(internal::BeginLeave{});
}

}  // namespace troupe::cluster
