// Peer: one remote node as seen from here (net/peer.h).

#include "net/peer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/frame_codec.h"
#include "net/handshake.h"
#include "net/node_state.h"

namespace troupe::internal {

absl::Status PeerUnreachable(const std::string& who, const absl::Status& why) {
  return absl::UnavailableError(absl::StrCat("node ", who, " is unreachable: ", why.message()));
}

absl::Status PeerRestarted(const std::string& who, uint64_t was, uint64_t now) {
  return absl::UnavailableError(absl::StrCat("node ", who, " has restarted since this address was made (incarnation ",
                                             absl::Hex(was), ", now ", absl::Hex(now), ")"));
}

namespace {

// Queues a Down for `proxy` with `reason` at `watcher`. The Down holds the
// only reference to its reason's copy: ours is gone before the Enqueue that
// hands the message to another thread (see Unshared).
void EnqueueDown(ActorCell* watcher, DownFactory make_down, ActorCell* proxy, const absl::Status& reason) {
  Message* down;
  {
    const absl::Status own = Unshared(reason);
    down = make_down(proxy, own);
  }
  if (make_down.urgent) {
    watcher->EnqueueUrgent(down);
  } else {
    watcher->Enqueue(down);
  }
}

template <class Fill>
net::OutFrame PeerControlFrame(Fill&& fill) {
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

absl::Status Peer::Submit(NodeState& node, net::FrameWriter& frame, Submission s) {
  absl::Status status;
  Effects fx;
  std::shared_ptr<Peer> forward;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forward = forward_;
    if (forward != nullptr) {
      // Merged: the canonical Peer takes it (below, unlocked).
    } else if (node.closed()) {
      status = absl::CancelledError("the node has shut down");
    } else if (s.incarnation != 0 && incarnation_ != 0 && s.incarnation != incarnation_) {
      status = PeerRestarted(who(), s.incarnation, incarnation_);
    } else if (const size_t limit = max_frame_bytes_ != 0 ? std::min(max_frame_bytes_, node.options().max_frame_bytes)
                                                          : node.options().max_frame_bytes;
               frame.payload_size() > limit) {
      status = absl::InvalidArgumentError(
          absl::StrCat(s.message_type.empty() ? "a frame" : absl::StrCat("message ", std::string(s.message_type)), " of ",
                       frame.payload_size(), " bytes is larger than the ", limit,
                       " bytes that node ", who(), " accepts (max_frame_bytes)"));
    } else {
      switch (state_) {
        case State::kUp:
          status = s.lane == Lane::kReserved ? connection_->SendReservedInPlace(frame)
                                             : connection_->SendInPlace(frame);
          break;
        case State::kIdle:
          if (node.system().Now() < retry_not_before_) {
            status = PeerUnreachable(who(), last_error_);
            break;
          }
          state_ = State::kConnecting;
          attempt_ = fx.connect = node.NextAttempt();
          [[fallthrough]];
        case State::kConnecting:
          if (ever_up_) {
            status = PeerUnreachable(who(), last_error_);
          } else if (const size_t bytes = net::kFramePrefixBytes + frame.payload_size();
                     backlog_bytes_ + bytes > node.options().max_outbound_bytes) {
            status = absl::ResourceExhaustedError(absl::StrCat("outbound buffer for node ", who(), " is full (",
                                                               node.options().max_outbound_bytes, " bytes)"));
          } else {
            backlog_bytes_ += bytes;
            backlog_.push_back(
                Backlogged{frame.TakeOutFrame(), s.incarnation, s.reply != nullptr ? s.request_id : 0, s.lane});
          }
          break;
        case State::kUnreachable:
          status = PeerUnreachable(who(), last_error_);
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
  if (forward != nullptr) return forward->Submit(node, frame, std::move(s));
  if (fx.connect != 0) Apply(fx);  // the only effect a send can have: dialling
  if (!status.ok()) {
    node.rejected_sends.fetch_add(1, std::memory_order_relaxed);
    if (s.reply != nullptr) s.reply->Complete(nullptr, Unshared(status));
    return status;
  }
  node.messages_out.fetch_add(1, std::memory_order_relaxed);
  if (s.request_id != 0 && s.timeout != absl::InfiniteDuration()) {
    TimerService& timers = node.system().core().timers();
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
        refused = PeerRestarted(who(), incarnation, incarnation_);
      } else if (state_ == State::kUp || (state_ == State::kConnecting && !ever_up_) || state_ == State::kIdle) {
        watcher->Retain();
        proxy->Retain();
        std::vector<RemoteWatch>& list = watches_[actor];
        first = list.empty();
        list.push_back(RemoteWatch{watcher, make_down, proxy});
      } else {
        refused = PeerUnreachable(who(), last_error_);
      }
    }
  }
  if (forward != nullptr) return forward->Watch(actor, incarnation, watcher, make_down, proxy);
  if (!refused.ok()) {
    EnqueueDown(watcher, make_down, proxy, refused);
    return;
  }
  if (!first) return;  // the peer already tells us about this actor
  net::OutFrame frame = PeerControlFrame([&](wire::Frame::Builder f) {
    wire::Watch::Builder w = f.initWatch();
    w.setActor(actor);
    w.setIncarnation(incarnation);
  });
  std::shared_ptr<NodeState> node = this->node();
  absl::Status sent = node != nullptr ? Submit(*node, std::move(frame), Submission::Reserved(incarnation))
                                      : absl::CancelledError("the node has shut down");
  if (!sent.ok()) DeliverDown(actor, sent);
}

void Peer::Unwatch(uint64_t actor, ActorCell* watcher, uint64_t monitor) {
  RemoteWatch removed{nullptr, {}, nullptr};
  std::shared_ptr<Peer> forward;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forward = forward_;
    if (forward == nullptr) {
      auto it = watches_.find(actor);
      if (it == watches_.end()) return;
      std::vector<RemoteWatch>& list = it->second;
      auto w = std::find_if(list.begin(), list.end(), [&](const RemoteWatch& rw) {
        return rw.watcher == watcher && rw.make_down.monitor == monitor;
      });
      if (w == list.end()) return;
      removed = *w;
      list.erase(w);
      if (list.empty()) watches_.erase(it);
    }
  }
  if (forward != nullptr) return forward->Unwatch(actor, watcher, monitor);
  removed.watcher->Release();
  removed.proxy->Release();
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
    EnqueueDown(w.watcher, w.make_down, w.proxy, reason);
    w.watcher->Release();
    w.proxy->Release();
  }
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
    last_error_ = Unshared(reason);
  }
  Apply(fx);
}

void Peer::SendHeartbeat() {
  std::shared_ptr<net::Connection> connection = this->connection();
  if (connection == nullptr) return;
  net::OutFrame frame = PeerControlFrame([](wire::Frame::Builder f) { f.setHeartbeat(); });
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
      EnqueueDown(w.watcher, w.make_down, w.proxy, error);
      w.watcher->Release();
      w.proxy->Release();
    }
  }
  for (auto& [connection, reason] : fx.close) connection->Close(reason);
  if (node == nullptr) return;
  for (uint64_t i = 0; i < fx.dead_letters; ++i) {
    node->system().core().ReportDeadLetter(nullptr, "a message bound for another node",
                                           absl::UnavailableError("the link to its node failed before it was sent"));
  }
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
