// Peer (net/peer.h): the decisions that keep one connection per pair of
// nodes, the adoption of a connection as the link, losing it, healing it,
// leaving, and merging a dialled Peer into its node's canonical one.

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/handshake.h"
#include "net/node_state.h"
#include "net/peer.h"

namespace troupe::internal {

// ---------------------------------------------------------------------------
// The handshake's decisions.

bool Peer::MayProve(uint64_t attempt) {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_ == nullptr && attempt_ == attempt && state_ != State::kUp;
}

Verdict Peer::OfferInbound(const std::shared_ptr<net::Connection>& connection, const PeerHello& hello,
                           net::OutFrame proof) {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr) return Verdict{Verdict::kRefuse, "the node has shut down"};
  Effects fx;
  Verdict verdict;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool same = hello.incarnation == incarnation_;
    if (incarnation_ != 0 && hello.incarnation < incarnation_) {
      verdict = {Verdict::kRefuse, absl::StrCat("incarnation ", absl::Hex(hello.incarnation), " of node ", hello.name,
                                                " is older than incarnation ", absl::Hex(incarnation_),
                                                ", which replaced it")};
    } else if (same && state_ == State::kLeft) {
      verdict = {Verdict::kRefuse, absl::StrCat("node ", hello.name, " has left the cluster in this incarnation")};
    } else if (same && state_ == State::kUp && initiated_by_us_) {
      verdict = {Verdict::kYield, absl::StrCat("node ", node->name(), " is linked to ", hello.name,
                                               " by the connection it dialled")};
    } else if (state_ != State::kUp && attempt_ != 0 && node->name() < hello.name) {
      verdict = {Verdict::kYield, absl::StrCat("both nodes dialled: the connection of ", node->name(),
                                               " (whose name sorts first) carries the link")};
    } else {
      AdoptLocked(*node, connection, hello, /*initiated_by_us=*/false, std::move(proof), fx);
    }
  }
  Apply(fx);
  return verdict;
}

void Peer::AttachOutbound(uint64_t attempt, const std::shared_ptr<net::Connection>& connection,
                          const PeerHello& hello) {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr) return;
  Effects fx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt_ != attempt || state_ == State::kUp) {
      // Dropped while it finished: the peer's own connection won.
      fx.close.emplace_back(connection, absl::CancelledError("another connection carries the link"));
    } else if (incarnation_ != 0 && hello.incarnation < incarnation_) {
      fx.close.emplace_back(connection, absl::FailedPreconditionError("an earlier incarnation of the node answered"));
    } else {
      AdoptLocked(*node, connection, hello, /*initiated_by_us=*/true, net::OutFrame(), fx);
    }
  }
  Apply(fx);
}

void Peer::AdoptLocked(NodeState& node, const std::shared_ptr<net::Connection>& connection, const PeerHello& hello,
                       bool initiated_by_us, net::OutFrame first, Effects& fx) {
  const bool new_incarnation = incarnation_ != 0 && hello.incarnation != incarnation_;
  const std::string name = hello.name;
  if (state_ == State::kUp || (new_incarnation && ever_up_)) {
    absl::Status why =
        new_incarnation
            ? absl::UnavailableError(absl::StrCat("node ", name, " restarted: incarnation ", absl::Hex(incarnation_),
                                                  " was replaced by ", absl::Hex(hello.incarnation)))
            : absl::UnavailableError(absl::StrCat("node ", name, " reconnected: the earlier connection was lost"));
    if (connection_ != nullptr) {
      fx.close.emplace_back(connection_, why);
      connection_.reset();
      fx.connections_delta -= 1;
    }
    fx.cancel.push_back(std::exchange(heartbeat_, TimerId{}));
    TakeAllLocked(why, fx);
    fx.forget_remote_state = true;
    EmitLocked(NodeDown{name, address_, incarnation_, why, new_incarnation}, fx);
  }
  const bool reconnected = ever_up_ && !new_incarnation;
  name_ = name;
  incarnation_ = hello.incarnation;
  if (!hello.listen_address.empty()) address_ = hello.listen_address;
  max_frame_bytes_ = hello.max_frame_bytes;
  connection_ = connection;
  initiated_by_us_ = initiated_by_us;
  state_ = State::kUp;
  attempt_ = 0;  // ours is done, or dropped for the peer's
  backoff_ = absl::ZeroDuration();
  retry_not_before_ = absl::InfinitePast();
  fx.cancel.push_back(std::exchange(retry_, TimerId{}));
  if (!first.empty()) (void)connection_->SendControl(std::move(first));
  std::vector<Backlogged> backlog = std::move(backlog_);
  backlog_.clear();
  backlog_bytes_ = 0;
  for (Backlogged& b : backlog) FlushOneLocked(std::move(b), fx);
  std::weak_ptr<Peer> self = weak_from_this();
  heartbeat_ = node.system().core().timers().SchedulePeriodic(node.options().heartbeat_interval, [self]() {
    if (std::shared_ptr<Peer> peer = self.lock()) peer->SendHeartbeat();
  });
  ever_up_ = true;
  fx.connections_delta += 1;
  fx.reconnected = reconnected;
  EmitLocked(NodeUp{name_, address_, incarnation_, reconnected}, fx);
}

void Peer::FlushOneLocked(Backlogged b, Effects& fx) {
  absl::Status status;
  if (b.incarnation != 0 && b.incarnation != incarnation_) {
    status = PeerRestarted(who(), b.incarnation, incarnation_);
  } else {
    status = b.lane == Lane::kReserved ? connection_->SendReserved(std::move(b.frame))
                                       : connection_->Send(std::move(b.frame));
  }
  if (status.ok()) return;
  if (b.request_id == 0) {
    ++fx.dead_letters;
    return;
  }
  auto it = pending_.find(b.request_id);
  if (it == pending_.end()) return;
  fx.fail_pending.emplace_back(std::move(it->second), status);
  pending_.erase(it);
}

void Peer::AttemptEnded(uint64_t attempt, const absl::Status& why, bool yielded) {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr) return;
  Effects fx;
  std::shared_ptr<Peer> forward;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forward = forward_;
    if (forward == nullptr && attempt == attempt_) {
      attempt_ = 0;
      if (state_ == State::kConnecting) {
        if (yielded) {
          // The peer's connection will carry the link; give it a while.
          std::weak_ptr<Peer> self = weak_from_this();
          TimerService& timers = node->system().core().timers();
          fx.cancel.push_back(std::exchange(retry_, TimerId{}));
          retry_ = timers.Schedule(timers.Now() + 2 * node->options().handshake_timeout, [self]() {
            if (std::shared_ptr<Peer> peer = self.lock()) peer->Retry();
          });
        } else if (!ever_up_) {
          FailFirstAttemptLocked(*node, why, fx);
        } else {
          last_error_ = Unshared(why);
          state_ = State::kUnreachable;
          ScheduleRetryLocked(*node, fx);
        }
      }
    }
  }
  if (forward != nullptr) return forward->AttemptEnded(attempt, why, yielded);
  Apply(fx);
}

// ---------------------------------------------------------------------------
// Losing the link, and healing it.

void Peer::ConnectionClosed(const net::Connection* connection, const absl::Status& reason) {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr) return;
  Effects fx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (connection == nullptr || connection != connection_.get()) return;  // not (or no longer) the link
    if (state_ == State::kLeft) {
      connection_.reset();
      fx.connections_delta -= 1;
    } else {
      const absl::Status error =
          absl::UnavailableError(absl::StrCat("connection to node ", who(), " lost: ", reason.ToString()));
      EmitLocked(NodeDown{name_, address_, incarnation_, Unshared(reason), false}, fx);
      lost_at_ = node->system().Now();
      LoseLocked(*node, error, fx);
    }
  }
  Apply(fx);
}

void Peer::LoseLocked(NodeState& node, const absl::Status& error, Effects& fx) {
  if (connection_ != nullptr) {
    connection_.reset();
    fx.connections_delta -= 1;
  }
  fx.cancel.push_back(std::exchange(heartbeat_, TimerId{}));
  TakeAllLocked(error, fx);
  fx.forget_remote_state = true;
  last_error_ = Unshared(error);
  attempt_ = 0;
  state_ = State::kUnreachable;
  ScheduleRetryLocked(node, fx);
}

void Peer::TakeAllLocked(const absl::Status& error, Effects& fx) {
  for (auto& [id, p] : pending_) fx.fail_pending.emplace_back(std::move(p), error);
  pending_.clear();
  for (auto& [actor, list] : watches_) fx.fail_watches.emplace_back(std::move(list), error);
  watches_.clear();
  for (Backlogged& b : backlog_) {
    if (b.request_id == 0) ++fx.dead_letters;
  }
  backlog_.clear();
  backlog_bytes_ = 0;
}

void Peer::FailFirstAttemptLocked(NodeState& node, const absl::Status& error, Effects& fx) {
  // Never linked: what waits fails, sends fail until a backoff has passed,
  // and then the directory forgets the address (a mistyped one leaves
  // nothing behind); a later send dials anew.
  const absl::Status unreachable = PeerUnreachable(who(), error);
  TakeAllLocked(unreachable, fx);
  last_error_ = Unshared(error);
  state_ = State::kIdle;
  backoff_ = backoff_ == absl::ZeroDuration() ? node.options().reconnect_min
                                               : std::min(backoff_ * 2, node.options().reconnect_max);
  retry_not_before_ = node.system().Now() + backoff_;
  // Forgotten once the backoff has passed unused (Retry).
  std::weak_ptr<Peer> self = weak_from_this();
  TimerService& timers = node.system().core().timers();
  fx.cancel.push_back(std::exchange(retry_, TimerId{}));
  retry_ = timers.Schedule(timers.Now() + std::max(backoff_, absl::Milliseconds(1)), [self]() {
    if (std::shared_ptr<Peer> peer = self.lock()) peer->Retry();
  });
}

void Peer::ScheduleRetryLocked(NodeState& node, Effects& fx) {
  const NodeOptions& o = node.options();
  const absl::Time now = node.system().Now();
  if (now - lost_at_ >= o.reconnect_give_up) {
    node.log().warn("node {}: giving up on node {}: unreachable for {}", node.name(), who(),
                    absl::FormatDuration(now - lost_at_));
    last_error_ = absl::UnavailableError(absl::StrCat("given up after ", absl::FormatDuration(now - lost_at_),
                                                      " unreachable: ", last_error_.message()));
    state_ = State::kGone;
    fx.forget = true;
    return;
  }
  absl::Duration delay;
  if (address_.empty()) {
    delay = lost_at_ + o.reconnect_give_up - now;  // it dials us, or it is given up
  } else {
    backoff_ = backoff_ == absl::ZeroDuration() ? o.reconnect_min : std::min(backoff_ * 2, o.reconnect_max);
    std::uniform_real_distribution<double> half_to_one(0.5, 1.0);
    delay = std::max(backoff_ * half_to_one(jitter_), absl::Milliseconds(1));
  }
  std::weak_ptr<Peer> self = weak_from_this();
  TimerService& timers = node.system().core().timers();
  fx.cancel.push_back(std::exchange(retry_, TimerId{}));
  retry_ = timers.Schedule(timers.Now() + delay, [self]() {
    if (std::shared_ptr<Peer> peer = self.lock()) peer->Retry();
  });
}

void Peer::Retry() {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr || node->closed()) return;
  Effects fx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retry_ = TimerId{};
    if (forward_ != nullptr) return;
    if (state_ == State::kConnecting && attempt_ == 0) {
      // Told to wait for the peer's connection, which did not come.
      if (!ever_up_) {
        FailFirstAttemptLocked(*node, absl::UnavailableError("the peer's own connection did not arrive"), fx);
      } else {
        state_ = State::kUnreachable;
        ScheduleRetryLocked(*node, fx);
      }
    } else if (state_ == State::kIdle && !ever_up_) {
      fx.forget = true;  // the backoff of a first attempt has passed
    } else if (state_ == State::kUnreachable) {
      if (address_.empty() || node->system().Now() - lost_at_ >= node->options().reconnect_give_up) {
        ScheduleRetryLocked(*node, fx);  // gives up
      } else {
        state_ = State::kConnecting;
        attempt_ = fx.connect = node->NextAttempt();
      }
    }
  }
  Apply(fx);
}

void Peer::Left(std::string_view reason) {
  std::shared_ptr<NodeState> node = this->node();
  if (node == nullptr) return;
  Effects fx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kUp) return;
    const std::string why = net::Sanitize(reason);
    const absl::Status error =
        absl::UnavailableError(absl::StrCat("node ", who(), " left the cluster", why.empty() ? "" : ": ", why));
    state_ = State::kLeft;
    fx.cancel.push_back(std::exchange(heartbeat_, TimerId{}));
    fx.cancel.push_back(std::exchange(retry_, TimerId{}));
    TakeAllLocked(error, fx);
    last_error_ = Unshared(error);
    fx.forget = true;
    fx.forget_remote_state = true;
    EmitLocked(NodeLeft{name_, address_, incarnation_, why}, fx);
  }
  Apply(fx);
}

bool Peer::MergeInto(const std::shared_ptr<Peer>& canonical, uint64_t attempt) {
  std::vector<Backlogged> backlog;
  absl::flat_hash_map<uint64_t, Pending> pending;
  absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches;
  bool had = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (forward_ != nullptr || canonical.get() == this) return attempt_ == attempt;
    forward_ = canonical;
    backlog = std::move(backlog_);
    backlog_.clear();
    backlog_bytes_ = 0;
    pending.swap(pending_);
    watches.swap(watches_);
    had = attempt_ == attempt;
    attempt_ = 0;
    state_ = State::kGone;
  }
  return canonical->Absorb(std::move(backlog), std::move(pending), std::move(watches), had ? attempt : 0) && had;
}

bool Peer::Absorb(std::vector<Backlogged> backlog, absl::flat_hash_map<uint64_t, Pending> pending,
                  absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches, uint64_t attempt) {
  std::shared_ptr<NodeState> node = this->node();
  Effects fx;
  bool takes_attempt = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, p] : pending) pending_.emplace(id, std::move(p));
    for (auto& [actor, list] : watches) {
      std::vector<RemoteWatch>& mine = watches_[actor];
      mine.insert(mine.end(), list.begin(), list.end());
    }
    if (attempt != 0 && state_ != State::kUp && attempt_ == 0 && state_ != State::kLeft) {
      attempt_ = attempt;
      state_ = State::kConnecting;
      takes_attempt = true;
    }
    for (Backlogged& b : backlog) {
      if (state_ == State::kUp) {
        FlushOneLocked(std::move(b), fx);
      } else if (state_ == State::kConnecting && !ever_up_) {
        backlog_bytes_ += b.frame.bytes().size();
        backlog_.push_back(std::move(b));
      } else if (b.request_id != 0) {
        auto it = pending_.find(b.request_id);
        if (it != pending_.end()) {
          fx.fail_pending.emplace_back(std::move(it->second), PeerUnreachable(who(), last_error_));
          pending_.erase(it);
        }
      } else {
        ++fx.dead_letters;
      }
    }
  }
  if (node != nullptr) Apply(fx);
  return takes_attempt;
}

}  // namespace troupe::internal
