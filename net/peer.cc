// Peer: one remote node as seen from here (net/node_state.h).

#include <utility>

#include "absl/strings/str_cat.h"
#include "net/frame_codec.h"
#include "net/node_state.h"

namespace troupe::internal {

namespace {

absl::Status Unreachable(std::string_view who, const absl::Status& why) {
  return absl::UnavailableError(absl::StrCat("node ", std::string(who), " is unreachable: ", why.message()));
}

}  // namespace

std::string Peer::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return who();
}

uint64_t Peer::incarnation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return incarnation_;
}

std::shared_ptr<net::Connection> Peer::connection() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connection_;
}

absl::Status Peer::Submit(NodeState& node, net::OutFrame frame, uint64_t incarnation, uint64_t request_id,
                          std::unique_ptr<RemoteReply> reply, absl::Duration timeout) {
  absl::Status status;
  bool connect = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (node.closed()) {
      status = absl::CancelledError("the node has shut down");
    } else if (incarnation != 0 && incarnation_ != 0 && incarnation != incarnation_) {
      status = absl::UnavailableError(
          absl::StrCat("node ", who(), " has restarted since this address was made (incarnation ", incarnation,
                       ", now ", incarnation_, ")"));
    } else {
      switch (state_) {
        case State::kUp:
          status = connection_->Send(std::move(frame));
          break;
        case State::kBackoff:
          if (node.system().Now() < retry_at_) {
            status = Unreachable(who(), last_error_);
            break;
          }
          [[fallthrough]];
        case State::kIdle:
          state_ = State::kConnecting;
          connect = true;
          [[fallthrough]];
        case State::kConnecting:
          if (backlog_bytes_ + frame.bytes().size() > node.options().max_outbound_bytes) {
            status = absl::ResourceExhaustedError(absl::StrCat("outbound buffer for node ", who(), " is full (",
                                                               node.options().max_outbound_bytes, " bytes)"));
          } else {
            backlog_bytes_ += frame.bytes().size();
            backlog_.push_back(std::move(frame));
          }
          break;
        case State::kGone:
          status = absl::UnavailableError(
              absl::StrCat("the connection to node ", who(), " was lost and it does not listen: it cannot be reached"));
          break;
      }
    }
    if (status.ok() && reply != nullptr) pending_.emplace(request_id, Pending{std::move(reply), TimerId{}});
  }
  if (connect) StartConnect();
  if (!status.ok()) {
    node.rejected_sends.fetch_add(1, std::memory_order_relaxed);
    if (reply != nullptr) reply->Complete(nullptr, Unshared(status));
    return status;
  }
  node.messages_out.fetch_add(1, std::memory_order_relaxed);
  if (request_id != 0 && timeout != absl::InfiniteDuration()) {
    TimerService& timers = node.system().core().timers();
    std::weak_ptr<Peer> self = weak_from_this();
    TimerId timer = timers.Schedule(timers.Now() + timeout, [self, request_id, timeout]() {
      if (std::shared_ptr<Peer> peer = self.lock()) peer->Expire(request_id, timeout);
    });
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(request_id);
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

void Peer::Complete(uint64_t request_id, WireReader* payload, absl::Status status) {
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;  // its deadline passed first
    pending = std::move(it->second);
    pending_.erase(it);
  }
  if (pending.timer) {
    if (std::shared_ptr<NodeState> node = node_.lock()) node->system().core().timers().Cancel(pending.timer);
  }
  pending.reply->Complete(payload, std::move(status));
}

void Peer::Expire(uint64_t request_id, absl::Duration timeout) {
  Pending pending;
  std::string who;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;
    pending = std::move(it->second);
    pending_.erase(it);
    who = this->who();
  }
  pending.reply->Complete(nullptr, absl::DeadlineExceededError(absl::StrCat(
                                       "no reply from node ", who, " within ", absl::FormatDuration(timeout))));
}

void Peer::Watch(uint64_t actor, ActorCell* watcher, DownFactory make_down, ActorCell* proxy) {
  watcher->Retain();
  proxy->Retain();
  bool up;
  {
    std::lock_guard<std::mutex> lock(mu_);
    up = state_ == State::kUp || state_ == State::kConnecting || state_ == State::kIdle;
    if (up) watches_[actor].push_back(RemoteWatch{watcher, make_down, proxy});
  }
  if (!up) {
    watcher->Enqueue(make_down(proxy, absl::UnavailableError("the actor's node is unreachable")));
    watcher->Release();
    proxy->Release();
  }
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

void Peer::Up(std::shared_ptr<net::Connection> connection, std::string name, uint64_t incarnation,
              std::string listen_address) {
  std::shared_ptr<NodeState> node = node_.lock();
  if (node == nullptr) return;
  absl::Status failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Both nodes dialled at once: keep the connection already carrying
    // sends (order); the new one still delivers what the peer sends on it.
    if (state_ == State::kUp) return;
    name_ = std::move(name);
    incarnation_ = incarnation;
    connection_ = std::move(connection);
    state_ = State::kUp;
    backoff_ = absl::ZeroDuration();
    // Under the lock, so that sends accepted into the backlog keep their
    // order ahead of sends that now go straight to the connection.
    for (net::OutFrame& frame : backlog_) {
      if (absl::Status s = connection_->Send(std::move(frame)); !s.ok() && failed.ok()) failed = s;
    }
    backlog_.clear();
    backlog_bytes_ = 0;
    std::weak_ptr<Peer> self = weak_from_this();
    heartbeat_ = node->system().core().timers().SchedulePeriodic(node->options().heartbeat_interval, [self]() {
      if (std::shared_ptr<Peer> peer = self.lock()) peer->SendHeartbeat();
    });
  }
  node->connections.fetch_add(1, std::memory_order_relaxed);
  if (!failed.ok()) {
    node->log().warn("node {}: frames queued for {} while connecting were refused: {}", node->name(), this->name(),
                     failed.ToString());
  }
  node->PeerUp(NodeUp{this->name(), listen_address, incarnation});
}

void Peer::SendHeartbeat() {
  std::shared_ptr<net::Connection> connection = this->connection();
  if (connection == nullptr) return;
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([](wire::Frame::Builder f) {
    f.setHeartbeat();
    return absl::OkStatus();
  });
  if (frame.ok()) (void)connection->Send(*std::move(frame));  // a full buffer says enough
}

void Peer::Lost(const net::Connection* connection, const absl::Status& reason) {
  std::shared_ptr<NodeState> node = node_.lock();
  absl::flat_hash_map<uint64_t, Pending> pending;
  absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches;
  TimerId heartbeat;
  bool was_up = false;
  std::string who;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A connection that is not (or no longer) this peer's: a duplicate, or
    // a failed attempt after another connection came up.
    if (connection != nullptr && connection != connection_.get()) return;
    if (connection == nullptr && state_ != State::kConnecting) return;
    was_up = state_ == State::kUp;
    who = this->who();
    connection_.reset();
    backlog_.clear();
    backlog_bytes_ = 0;
    last_error_ = Unshared(reason);
    heartbeat = std::exchange(heartbeat_, TimerId{});
    if (address_.empty()) {
      state_ = State::kGone;
    } else {
      state_ = State::kBackoff;
      const absl::Duration min = node != nullptr ? node->options().reconnect_min : absl::Milliseconds(50);
      const absl::Duration max = node != nullptr ? node->options().reconnect_max : absl::Seconds(5);
      backoff_ = backoff_ == absl::ZeroDuration() ? min : std::min(backoff_ * 2, max);
      retry_at_ = (node != nullptr ? node->system().Now() : absl::Now()) + backoff_;
    }
    pending.swap(pending_);
    watches.swap(watches_);
  }
  const absl::Status unavailable =
      absl::UnavailableError(absl::StrCat("connection to node ", who, " lost: ", reason.ToString()));
  if (node != nullptr) {
    TimerService& timers = node->system().core().timers();
    if (heartbeat) timers.Cancel(heartbeat);
    for (auto& [id, p] : pending) {
      if (p.timer) timers.Cancel(p.timer);
    }
  }
  for (auto& [id, p] : pending) p.reply->Complete(nullptr, Unshared(unavailable));
  for (auto& [actor, list] : watches) {
    for (RemoteWatch& w : list) {
      w.watcher->Enqueue(w.make_down(w.proxy, Unshared(unavailable)));
      w.watcher->Release();
      w.proxy->Release();
    }
  }
  if (node != nullptr && was_up) {
    node->connections.fetch_sub(1, std::memory_order_relaxed);
    node->PeerDown(NodeDown{who, address_, Unshared(reason)});
  }
}

void Peer::StartConnect() {
  std::shared_ptr<NodeState> node = node_.lock();
  if (node == nullptr) return;
  node->Connect(shared_from_this());
}

}  // namespace troupe::internal
