// Peer: one remote node as seen from here (net/peer.h).

#include "net/peer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/frame_codec.h"
#include "net/handshake.h"
#include "net/node_state.h"

namespace troupe::internal {
namespace {

absl::Status Unreachable(const std::string& who, const absl::Status& why) {
  return absl::UnavailableError(absl::StrCat("node ", who, " is unreachable: ", why.message()));
}

absl::Status Restarted(const std::string& who, uint64_t was, uint64_t now) {
  return absl::UnavailableError(absl::StrCat("node ", who, " has restarted since this address was made (incarnation ",
                                             absl::Hex(was), ", now ", absl::Hex(now), ")"));
}

template <class Fill>
net::OutFrame ControlFrame(Fill&& fill) {
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    fill(f);
    return absl::OkStatus();
  });
  return frame.ok() ? *std::move(frame) : net::OutFrame();
}

}  // namespace

Peer::Peer(std::weak_ptr<NodeState> node, std::string address)
    : node_(std::move(node)), address_(std::move(address)) {
  const std::string seed = net::NewChallenge();
  jitter_.seed(static_cast<uint32_t>(static_cast<uint8_t>(seed[0]) | static_cast<uint8_t>(seed[1]) << 8 |
                                     static_cast<uint8_t>(seed[2]) << 16));
}

Peer::~Peer() = default;

std::string Peer::address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return address_;
}

std::string Peer::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return who();
}

uint64_t Peer::incarnation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return incarnation_;
}

Peer::State Peer::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::shared_ptr<net::Connection> Peer::connection() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connection_;
}

std::shared_ptr<Peer> Peer::canonical() {
  std::shared_ptr<Peer> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    next = forward_;
  }
  return next != nullptr ? next->canonical() : shared_from_this();
}

// ---------------------------------------------------------------------------
// Sending.

absl::Status Peer::Submit(net::OutFrame frame, Submission s) {
  std::shared_ptr<NodeState> node = this->node();
  absl::Status status;
  Effects fx;
  std::shared_ptr<Peer> forward;
  if (node == nullptr) {
    status = absl::CancelledError("the node has shut down");
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    forward = forward_;
    if (forward != nullptr) {
      // Merged: the canonical Peer takes it (below, unlocked).
    } else if (node->closed()) {
      status = absl::CancelledError("the node has shut down");
    } else if (s.incarnation != 0 && incarnation_ != 0 && s.incarnation != incarnation_) {
      status = Restarted(who(), s.incarnation, incarnation_);
    } else if (const size_t limit = max_frame_bytes_ != 0 ? std::min(max_frame_bytes_, node->options().max_frame_bytes)
                                                          : node->options().max_frame_bytes;
               frame.payload_size() > limit) {
      status = absl::InvalidArgumentError(
          absl::StrCat(s.message_type.empty() ? "a frame" : absl::StrCat("message ", std::string(s.message_type)), " of ",
                       frame.payload_size(), " bytes is larger than the ", limit,
                       " bytes that node ", who(), " accepts (max_frame_bytes)"));
    } else {
      switch (state_) {
        case State::kUp:
          status = s.lane == Lane::kReserved ? connection_->SendReserved(std::move(frame))
                                             : connection_->Send(std::move(frame));
          break;
        case State::kIdle:
          if (node->system().Now() < retry_not_before_) {
            status = Unreachable(who(), last_error_);
            break;
          }
          state_ = State::kConnecting;
          attempt_ = fx.connect = node->NextAttempt();
          [[fallthrough]];
        case State::kConnecting:
          if (ever_up_) {
            status = Unreachable(who(), last_error_);
          } else if (backlog_bytes_ + frame.bytes().size() > node->options().max_outbound_bytes) {
            status = absl::ResourceExhaustedError(absl::StrCat("outbound buffer for node ", who(), " is full (",
                                                               node->options().max_outbound_bytes, " bytes)"));
          } else {
            backlog_bytes_ += frame.bytes().size();
            backlog_.push_back(Backlogged{std::move(frame), s.incarnation, s.reply != nullptr ? s.request_id : 0, s.lane});
          }
          break;
        case State::kUnreachable:
          status = Unreachable(who(), last_error_);
          break;
        case State::kLeft:
          status = absl::UnavailableError(absl::StrCat("node ", who(), " has left the cluster"));
          break;
        case State::kGone:
          status = absl::UnavailableError(absl::StrCat("node ", who(), " is gone: ", last_error_.message()));
          break;
      }
    }
    if (forward == nullptr && status.ok() && s.reply != nullptr) {
      pending_.emplace(s.request_id, Pending{std::move(s.reply), TimerId{}, s.message_type});
    }
  }
  if (forward != nullptr) return forward->Submit(std::move(frame), std::move(s));
  Apply(fx);
  if (!status.ok()) {
    if (node != nullptr) node->rejected_sends.fetch_add(1, std::memory_order_relaxed);
    if (s.reply != nullptr) s.reply->Complete(nullptr, Unshared(status));
    return status;
  }
  node->messages_out.fetch_add(1, std::memory_order_relaxed);
  if (s.request_id != 0 && s.timeout != absl::InfiniteDuration()) {
    TimerService& timers = node->system().core().timers();
    std::weak_ptr<Peer> self = weak_from_this();
    const uint64_t id = s.request_id;
    const absl::Duration timeout = s.timeout;
    TimerId timer = timers.Schedule(timers.Now() + timeout, [self, id, timeout]() {
      if (std::shared_ptr<Peer> peer = self.lock()) peer->Expire(id, timeout);
    });
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(id);
      if (it != pending_.end()) {
        it->second.timer = timer;
      } else {
        cancel = true;  // the reply or the loss came first
      }
    }
    if (cancel && timer) timers.Cancel(timer);
  }
  return absl::OkStatus();
}

void Peer::Complete(uint64_t request_id, WireReader* payload, absl::Status status, std::string_view refused_by,
                    bool refused_accepts_some) {
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;  // its deadline passed first
    pending = std::move(it->second);
    pending_.erase(it);
  }
  if (pending.timer) {
    if (std::shared_ptr<NodeState> node = this->node()) node->system().core().timers().Cancel(pending.timer);
  }
  if (!refused_by.empty() && !pending.message_type.empty()) {
    status = RefusedTypeError(refused_by, pending.message_type, refused_accepts_some);
  }
  pending.reply->Complete(payload, std::move(status));
}

void Peer::Expire(uint64_t request_id, absl::Duration timeout) {
  Pending pending;
  std::string who;
  std::shared_ptr<Peer> forward;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) {
      forward = forward_;  // moved there by a merge
    } else {
      pending = std::move(it->second);
      pending_.erase(it);
      who = this->who();
    }
  }
  if (forward != nullptr) return forward->Expire(request_id, timeout);
  if (pending.reply == nullptr) return;
  pending.reply->Complete(nullptr, absl::DeadlineExceededError(absl::StrCat(
                                       "no reply from node ", who, " within ", absl::FormatDuration(timeout))));
}

// ---------------------------------------------------------------------------
// Monitors of remote actors.

void Peer::Watch(uint64_t actor, uint64_t incarnation, ActorCell* watcher, DownFactory make_down, ActorCell* proxy) {
  absl::Status refused;
  bool first = false;
  std::shared_ptr<Peer> forward;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forward = forward_;
    if (forward == nullptr) {
      if (incarnation_ != 0 && incarnation != incarnation_) {
        refused = Restarted(who(), incarnation, incarnation_);
      } else if (state_ == State::kUp || (state_ == State::kConnecting && !ever_up_) || state_ == State::kIdle) {
        watcher->Retain();
        proxy->Retain();
        std::vector<RemoteWatch>& list = watches_[actor];
        first = list.empty();
        list.push_back(RemoteWatch{watcher, make_down, proxy});
      } else {
        refused = Unreachable(who(), last_error_);
      }
    }
  }
  if (forward != nullptr) return forward->Watch(actor, incarnation, watcher, make_down, proxy);
  if (!refused.ok()) {
    watcher->Enqueue(make_down(proxy, Unshared(refused)));
    return;
  }
  if (!first) return;  // the peer already tells us about this actor
  net::OutFrame frame = ControlFrame([&](wire::Frame::Builder f) {
    wire::Watch::Builder w = f.initWatch();
    w.setActor(actor);
    w.setIncarnation(incarnation);
  });
  absl::Status sent = Submit(std::move(frame), Submission::Reserved(incarnation));
  if (!sent.ok()) DeliverDown(actor, sent);
}

void Peer::DeliverDown(uint64_t actor, const absl::Status& reason) {
  std::vector<RemoteWatch> watches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watches_.find(actor);
    if (it == watches_.end()) return;
    watches = std::move(it->second);
    watches_.erase(it);
  }
  for (RemoteWatch& w : watches) {
    w.watcher->Enqueue(w.make_down(w.proxy, Unshared(reason)));
    w.watcher->Release();
    w.proxy->Release();
  }
}

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
    status = Restarted(who(), b.incarnation, incarnation_);
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
  const absl::Status unreachable = Unreachable(who(), error);
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
    last_error_ = error;
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
          fx.fail_pending.emplace_back(std::move(it->second), Unreachable(who(), last_error_));
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

// ---------------------------------------------------------------------------
// Shutdown, heartbeats, events.

std::shared_ptr<net::Connection> Peer::Leave(net::OutFrame leave) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kUp || forward_ != nullptr) return nullptr;
  (void)connection_->SendReserved(std::move(leave));  // after the replies queued before it
  return connection_;
}

void Peer::Close(const absl::Status& reason) {
  Effects fx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (forward_ != nullptr) return;
    fx.cancel.push_back(std::exchange(heartbeat_, TimerId{}));
    fx.cancel.push_back(std::exchange(retry_, TimerId{}));
    TakeAllLocked(reason, fx);
    if (connection_ != nullptr) {
      connection_.reset();
      fx.connections_delta -= 1;
    }
    attempt_ = 0;
    state_ = State::kGone;
    last_error_ = reason;
  }
  Apply(fx);
}

void Peer::SendHeartbeat() {
  std::shared_ptr<net::Connection> connection = this->connection();
  if (connection == nullptr) return;
  net::OutFrame frame = ControlFrame([](wire::Frame::Builder f) { f.setHeartbeat(); });
  if (!frame.empty()) (void)connection->SendControl(std::move(frame));
}

void Peer::EmitLocked(Event event, Effects& fx) {
  events_.push_back(std::move(event));
  if (!delivering_) {
    delivering_ = true;
    fx.deliver_events = true;
  }
}

void Peer::DeliverEvents(NodeState& node) {
  for (;;) {
    std::vector<Event> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (events_.empty()) {
        delivering_ = false;
        return;
      }
      batch.swap(events_);
    }
    for (Event& e : batch) node.Notify(e);
  }
}

void Peer::Apply(Effects& fx) {
  std::shared_ptr<NodeState> node = this->node();
  if (node != nullptr) {
    TimerService& timers = node->system().core().timers();
    for (TimerId t : fx.cancel) {
      if (t) timers.Cancel(t);
    }
    for (auto& [p, error] : fx.fail_pending) {
      if (p.timer) timers.Cancel(p.timer);
    }
  }
  for (auto& [p, error] : fx.fail_pending) p.reply->Complete(nullptr, Unshared(error));
  for (auto& [list, error] : fx.fail_watches) {
    for (RemoteWatch& w : list) {
      w.watcher->Enqueue(w.make_down(w.proxy, Unshared(error)));
      w.watcher->Release();
      w.proxy->Release();
    }
  }
  for (auto& [connection, reason] : fx.close) connection->Close(reason);
  if (node == nullptr) return;
  for (uint64_t i = 0; i < fx.dead_letters; ++i) node->system().core().CountDeadLetter();
  if (fx.connections_delta != 0) {
    node->connections.fetch_add(static_cast<uint64_t>(static_cast<int64_t>(fx.connections_delta)),
                                std::memory_order_relaxed);
  }
  if (fx.reconnected) node->reconnects.fetch_add(1, std::memory_order_relaxed);
  if (fx.forget) node->ForgetPeer(*this);
  if (fx.forget_remote_state) node->ForgetRemoteWatcher(this);
  if (fx.connect != 0) node->Connect(shared_from_this(), fx.connect);
  if (fx.deliver_events) DeliverEvents(*node);
}

}  // namespace troupe::internal
