// Link: the handler of one connection — the handshake (net/handshake.h),
// then every frame handed to the dispatch (NodeState::HandleFrame). Runs on
// the connection's I/O thread only.
//
// States: kAwaitHello (both roles: the peer's hello is next), kAwaitProof
// (both roles: the peer's proof is next — the connector's comes first, the
// acceptor answers only once it has checked it), kUp, kClosed. Until kUp
// the connection takes frames of at most kHandshakeFrameBytes, and an
// accepted one counts against the HandshakeGate. Any frame out of order, a
// failed check or the handshake deadline closes the connection with one
// log line and a counter; a failed check first sends `refused` with the
// reason so that the peer can log it too. Where the peer's Peer decides
// that another connection carries the link (net/peer.h), the connector
// drops its attempt before proving, or the acceptor sends `yield`.

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "actors/system_core.h"
#include "net/frame_codec.h"
#include "net/handshake.h"
#include "net/node_state.h"

namespace troupe::internal {
namespace {

// The address to dial a peer by: what it advertised, unless that is a
// wildcard ("0.0.0.0:7000", "[::]:7000"), which only means "every
// interface" to the peer itself — then the host it connected from, with the
// advertised port.
std::string RoutableAddress(const std::string& advertised, const std::string& connected_from) {
  for (std::string_view wildcard : {"0.0.0.0:", "[::]:"}) {
    if (advertised.rfind(wildcard, 0) == 0) {
      const size_t colon = connected_from.rfind(':');
      if (colon == std::string::npos) return advertised;
      return connected_from.substr(0, colon) + advertised.substr(wildcard.size() - 1);
    }
  }
  return advertised;
}

// The host of "host:port" or "[v6]:port".
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

std::string Bytes(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

kj::ArrayPtr<const kj::byte> Data(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string PayloadOf(const net::OutFrame& frame) {
  return std::string(reinterpret_cast<const char*>(frame.payload()), frame.payload_size());
}

class Link final : public net::ConnectionHandler, public std::enable_shared_from_this<Link> {
 public:
  // `peer` and `attempt`: the connector's; null and 0 for the acceptor.
  Link(std::shared_ptr<NodeState> node, net::Role role, std::shared_ptr<Peer> peer, uint64_t attempt, uint64_t gate_id)
      : node_(std::move(node)),
        role_(role),
        peer_(std::move(peer)),
        attempt_(attempt),
        gate_id_(gate_id),
        challenge_(net::NewChallenge()) {}

  void Begin(const std::shared_ptr<net::Connection>& connection) {
    ArmHandshakeDeadline(connection);
    if (role_ == net::Role::kConnect) {
      absl::StatusOr<net::OutFrame> hello = Hello(net::kMinProtocolVersion, net::kMaxProtocolVersion);
      if (!hello.ok()) return;
      connector_hello_ = PayloadOf(*hello);
      (void)connection->SendControl(*std::move(hello));
    }
  }

  void OnFrame(net::Connection& connection, absl::Span<const uint8_t> payload) override {
    if (state_ == State::kClosed) return;
    payload_ = payload;
    // The first actor this read's messages make runnable may run on this
    // thread once the read's frames are in (OnReadDone; see
    // NodeOptions::io_thread_runs_actors).
    if (state_ == State::kUp && node_->options().io_thread_runs_actors) {
      // At most a turn's batch of frames per scope: an actor that gets them
      // all runs them here rather than handing the rest to a worker.
      if (turn_frames_ == node_->system().core().batch()) turn_.reset();
      if (!turn_.has_value()) {
        turn_.emplace(node_->system().core());
        turn_frames_ = 0;
      }
      ++turn_frames_;
    }
    absl::Status status = net::ReadFrame(payload, node_->reader_options(payload.size()), [&](wire::Frame::Reader f) {
      return state_ == State::kUp ? Forward(connection, f) : Handshake(connection, f);
    });
    if (!status.ok()) {
      counted_ = true;
      (state_ == State::kUp ? node_->bad_frames : node_->handshakes_failed).fetch_add(1, std::memory_order_relaxed);
      node_->log().warn("node {}: closing the connection with {} ({}): {}", node_->name(), connection.peer(),
                        peer_name_.empty() ? "before its handshake" : peer_name_, status.ToString());
      Fail(connection, status);
    }
  }

  void OnReadDone(net::Connection&) override { turn_.reset(); }

  void OnClosed(net::Connection& connection, const absl::Status& reason) override {
    const bool was_up = state_ == State::kUp;
    state_ = State::kClosed;
    if (gate_id_ != 0) node_->gate().Done(gate_id_);
    // Closed by the reactor for cause (an oversized length, a frame or idle
    // timeout): count it here; causes found in OnFrame were counted there.
    if (!counted_ && !deadline_fired_.load(std::memory_order_acquire) &&
        (absl::IsResourceExhausted(reason) || absl::IsDeadlineExceeded(reason))) {
      (was_up ? node_->bad_frames : node_->handshakes_failed).fetch_add(1, std::memory_order_relaxed);
      node_->log().warn("node {}: connection with {} ({}) closed: {}", node_->name(), connection.peer(),
                        peer_name_.empty() ? "before its handshake" : peer_name_, reason.ToString());
    }
    if (deadline_) node_->system().core().timers().Cancel(deadline_);
    if (was_up) {
      node_->log().info("node {}: connection with {} ({}) closed: {}", node_->name(), peer_name_, connection.peer(),
                        reason.ToString());
      peer_->ConnectionClosed(&connection, reason);
    } else if (role_ == net::Role::kConnect && peer_ != nullptr) {
      peer_->AttemptEnded(attempt_, failure_.ok() ? reason : failure_, yielded_);
    }
  }

 private:
  enum class State { kAwaitHello, kAwaitProof, kUp, kClosed };

  void ArmHandshakeDeadline(const std::shared_ptr<net::Connection>& connection) {
    std::weak_ptr<net::Connection> weak = connection;
    const absl::Duration timeout = node_->options().handshake_timeout;
    std::weak_ptr<Link> self = weak_from_this();
    TimerService& timers = node_->system().core().timers();
    deadline_ = timers.Schedule(timers.Now() + timeout, [weak, self, timeout]() {
      std::shared_ptr<Link> link = self.lock();
      std::shared_ptr<net::Connection> c = weak.lock();
      if (link == nullptr || c == nullptr || link->handshake_done_.load(std::memory_order_acquire)) return;
      // Counted here; OnClosed (after the Close below) does not count it again.
      link->deadline_fired_.store(true, std::memory_order_release);  // pairs with the acquire in OnClosed
      link->node_->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
      link->node_->log().warn("node {}: closing the connection with {}: no handshake within {}", link->node_->name(),
                              c->peer(), absl::FormatDuration(timeout));
      c->Close(LoggedAlready(
          absl::DeadlineExceededError(absl::StrCat("no handshake within ", absl::FormatDuration(timeout)))));
    });
  }

  absl::StatusOr<net::OutFrame> Hello(uint32_t min_version, uint32_t max_version) {
    const NodeOptions& o = node_->options();
    return net::BuildFrame([&](wire::Frame::Builder f) {
      wire::Hello::Builder hello = f.initHello();
      hello.setMinVersion(min_version);
      hello.setMaxVersion(max_version);
      hello.setNode(node_->name());
      hello.setIncarnation(node_->incarnation());
      hello.setAddress(node_->listen_address());
      hello.setChallenge(Data(challenge_));
      hello.setHeartbeatIntervalMs(static_cast<uint32_t>(absl::ToInt64Milliseconds(o.heartbeat_interval)));
      hello.setHeartbeatTimeoutMs(static_cast<uint32_t>(absl::ToInt64Milliseconds(o.heartbeat_timeout)));
      hello.setMaxFrameBytes(static_cast<uint32_t>(std::min<size_t>(o.max_frame_bytes, UINT32_MAX)));
      return absl::OkStatus();
    });
  }

  template <class Fill>
  static void SendControl(net::Connection& connection, Fill&& fill) {
    absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
      fill(f);
      return absl::OkStatus();
    });
    if (frame.ok()) (void)connection.SendControl(*std::move(frame));
  }

  // Tells the peer why (during the handshake) and closes. The caller has
  // logged the reason: the reactor's line for the close is a debug one
  // (Cancelled), so the refusal is logged once.
  void Fail(net::Connection& connection, const absl::Status& status) {
    failure_ = status;
    if (state_ != State::kUp) {
      SendControl(connection, [&](wire::Frame::Builder f) { f.setRefused(std::string(status.message())); });
    }
    state_ = State::kClosed;
    connection.Close(LoggedAlready(status));
  }

  // A close reason the reactor logs at debug level only.
  static absl::Status LoggedAlready(const absl::Status& status) {
    return absl::CancelledError(absl::StrCat("closed by the node (", absl::StatusCodeToString(status.code()),
                                             "): ", status.message()));
  }

  // Closes without a refusal: another connection carries the link.
  void Drop(net::Connection& connection, const std::string& why) {
    counted_ = true;
    failure_ = absl::CancelledError(why);
    state_ = State::kClosed;
    connection.Close(failure_);
  }

  absl::Status Handshake(net::Connection& connection, wire::Frame::Reader f) {
    switch (f.which()) {
      case wire::Frame::REFUSED: {
        const std::string why = net::Sanitize(f.getRefused().cStr());
        node_->log().error("node {}: {} refused the connection: {}", node_->name(), connection.peer(), why);
        node_->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
        counted_ = true;
        failure_ = absl::PermissionDeniedError(absl::StrCat("refused by the peer: ", why));
        state_ = State::kClosed;
        connection.Close(LoggedAlready(failure_));
        return absl::OkStatus();
      }
      case wire::Frame::HELLO:
        if (state_ == State::kAwaitHello) return OnHello(connection, f.getHello());
        break;
      case wire::Frame::PROOF:
        if (state_ == State::kAwaitProof) return OnProof(connection, Bytes(f.getProof()));
        break;
      case wire::Frame::YIELD:
        if (state_ == State::kAwaitProof && role_ == net::Role::kConnect) {
          node_->log().info("node {}: {} ({}): {}", node_->name(), peer_name_, connection.peer(),
                            net::Sanitize(f.getYield().cStr()));
          yielded_ = true;
          Drop(connection, "the peer's connection carries the link");
          return absl::OkStatus();
        }
        break;
      default:
        break;
    }
    return absl::InvalidArgumentError("protocol violation: a frame other than the handshake's before it finished");
  }

  absl::Status OnHello(net::Connection& connection, wire::Hello::Reader hello) {
    const std::string peer_node = hello.getNode().cStr();
    if (absl::Status s = net::CheckHello(peer_node, Bytes(hello.getChallenge())); !s.ok()) return s;
    absl::StatusOr<uint32_t> version = net::ChooseVersion(hello.getMinVersion(), hello.getMaxVersion());
    if (!version.ok()) return version.status();
    if (peer_node == node_->name()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the peer calls itself '", peer_node, "', the name of this node: node names must be unique"));
    }
    const NodeOptions& o = node_->options();
    if (absl::Status s = net::CheckHeartbeats(o.heartbeat_interval, o.heartbeat_timeout,
                                              hello.getHeartbeatIntervalMs(), hello.getHeartbeatTimeoutMs());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckCertificateName(connection, peer_node); !s.ok()) return s;
    peer_name_ = peer_node;
    hello_.name = peer_node;
    hello_.incarnation = hello.getIncarnation();
    hello_.listen_address = RoutableAddress(hello.getAddress().cStr(), connection.peer());
    hello_.max_frame_bytes = hello.getMaxFrameBytes();
    const std::string received(reinterpret_cast<const char*>(payload_.data()), payload_.size());
    state_ = State::kAwaitProof;
    if (role_ == net::Role::kAccept) {
      connector_hello_ = received;
      absl::StatusOr<net::OutFrame> mine = Hello(*version, *version);
      if (!mine.ok()) return mine.status();
      acceptor_hello_ = PayloadOf(*mine);
      (void)connection.SendControl(*std::move(mine));
      return absl::OkStatus();
    }
    // Connector: the acceptor's hello holds the version it chose.
    if (hello.getMinVersion() != hello.getMaxVersion()) {
      return absl::InvalidArgumentError("the acceptor's hello offers versions instead of choosing one");
    }
    acceptor_hello_ = received;
    std::shared_ptr<Peer> canonical = node_->directory().BindDialled(peer_node, peer_);
    bool carry_on = canonical == peer_ ? peer_->MayProve(attempt_) : peer_->MergeInto(canonical, attempt_);
    peer_ = canonical;
    if (!carry_on) {
      Drop(connection, "another connection carries the link");
      return absl::OkStatus();
    }
    const std::string proof = net::HandshakeMac(node_->key(), net::Role::kConnect,
                                                net::Transcript(connector_hello_, acceptor_hello_, binding_));
    SendControl(connection, [&](wire::Frame::Builder f) { f.setProof(Data(proof)); });
    return absl::OkStatus();
  }

  absl::Status OnProof(net::Connection& connection, const std::string& proof) {
    const std::string transcript = net::Transcript(connector_hello_, acceptor_hello_, binding_);
    const net::Role theirs = role_ == net::Role::kAccept ? net::Role::kConnect : net::Role::kAccept;
    if (absl::Status s = net::CheckProof(node_->key(), theirs, transcript, peer_name_, proof); !s.ok()) {
      if (binding_.empty()) return s;
      return absl::PermissionDeniedError(absl::StrCat(
          s.message(), ", or the handshake was relayed from another TLS connection (the channel bindings differ)"));
    }
    handshake_done_.store(true, std::memory_order_release);  // pairs with the acquire in the deadline
    if (deadline_) node_->system().core().timers().Cancel(deadline_);
    connection.SetMaxFrameBytes(node_->options().max_frame_bytes);
    std::shared_ptr<net::Connection> shared = connection.shared_from_this();
    if (role_ == net::Role::kConnect) {
      state_ = State::kUp;
      LogConnected(connection);
      peer_->AttachOutbound(attempt_, shared, hello_);
      node_->directory().BindAddress(hello_.listen_address, peer_);
      return absl::OkStatus();
    }
    node_->gate().Done(std::exchange(gate_id_, 0));
    peer_ = node_->directory().Named(hello_.name, hello_.listen_address);
    absl::StatusOr<net::OutFrame> mine = net::BuildFrame([&](wire::Frame::Builder f) {
      f.setProof(Data(net::HandshakeMac(node_->key(), net::Role::kAccept, transcript)));
      return absl::OkStatus();
    });
    if (!mine.ok()) return mine.status();
    Verdict verdict = peer_->OfferInbound(shared, hello_, *std::move(mine));
    switch (verdict.kind) {
      case Verdict::kAccept:
        state_ = State::kUp;
        node_->directory().BindAddress(hello_.listen_address, peer_);
        LogConnected(connection);
        return absl::OkStatus();
      case Verdict::kYield:
        SendControl(connection, [&](wire::Frame::Builder f) { f.setYield(verdict.reason); });
        Drop(connection, verdict.reason);
        return absl::OkStatus();
      case Verdict::kRefuse:
        break;
    }
    return absl::FailedPreconditionError(verdict.reason);
  }

  // With TLS: the name the peer claims must be one its certificate names,
  // and the handshake is bound to this TLS connection (binding_).
  absl::Status CheckCertificateName(net::Connection& connection, const std::string& claimed) {
    if (node_->tls() == nullptr) return absl::OkStatus();
    const net::TlsPeer* tls = connection.tls_peer();
    if (tls == nullptr || tls->exporter.empty()) {
      return absl::InternalError("a TLS connection without its TLS peer: the handshake cannot be bound");
    }
    if (std::find(tls->names.begin(), tls->names.end(), claimed) == tls->names.end()) {
      node_->tls_name_refused.fetch_add(1, std::memory_order_relaxed);
      return absl::PermissionDeniedError(
          absl::StrCat("the peer calls itself '", claimed, "' but its certificate is for [",
                       net::Sanitize(absl::StrJoin(tls->names, ", ")), "] (", net::Sanitize(tls->subject),
                       "): a node's name must be in its certificate"));
    }
    binding_ = tls->exporter;
    return absl::OkStatus();
  }

  void LogConnected(net::Connection& connection) {
    node_->log().info("node {}: connected to node {} ({}, incarnation {:x})", node_->name(), peer_name_,
                      connection.peer(), hello_.incarnation);
  }

  absl::Status Forward(net::Connection& connection, wire::Frame::Reader f) {
    LinkContext context{*peer_, connection, cache_, hello_.max_frame_bytes};
    return node_->HandleFrame(context, f);
  }

  const std::shared_ptr<NodeState> node_;
  const net::Role role_;
  std::shared_ptr<Peer> peer_;  // the dialled peer (canonical once named), or bound after the handshake
  const uint64_t attempt_;
  uint64_t gate_id_;  // counted by the HandshakeGate until authenticated; 0 once not
  const std::string challenge_;
  State state_ = State::kAwaitHello;
  std::atomic<bool> handshake_done_{false};
  bool counted_ = false;  // I/O thread: this connection's refusal is counted
  bool yielded_ = false;
  absl::Status failure_;  // why the handshake ended, for the Peer
  std::atomic<bool> deadline_fired_{false};  // set by the handshake deadline's timer
  TimerId deadline_;
  absl::Span<const uint8_t> payload_;  // the frame being handled
  // Open from a read's first frame (once up) to its OnReadDone; I/O thread.
  std::optional<InlineTurn> turn_;
  int turn_frames_ = 0;  // frames read since turn_ opened
  std::string connector_hello_, acceptor_hello_;  // the transcript's frames
  std::string binding_;  // TLS: the exporter value the transcript covers
  std::string peer_name_;
  PeerHello hello_;
  ExportCache cache_;
};

}  // namespace

std::shared_ptr<net::ConnectionHandler> NodeState::AcceptLink(net::Connection& connection) {
  const uint64_t gate_id = NextAttempt();  // unique, and in accept order
  auto link = std::make_shared<Link>(shared_from_this(), net::Role::kAccept, nullptr, 0, gate_id);
  std::shared_ptr<net::Connection> shared = connection.shared_from_this();
  for (const std::shared_ptr<net::Connection>& old : gate_.Admit(gate_id, shared, HostOf(connection.peer()), options_)) {
    unauthenticated_closed.fetch_add(1, std::memory_order_relaxed);
    old->Close(absl::ResourceExhaustedError(
        absl::StrCat("too many connections without a finished handshake (", options_.max_unauthenticated, " in all, ",
                     options_.max_unauthenticated_per_source, " from one address): the oldest is closed")));
  }
  link->Begin(shared);
  return link;
}

void NodeState::Connect(std::shared_ptr<Peer> peer, uint64_t attempt) {
  auto link = std::make_shared<Link>(shared_from_this(), net::Role::kConnect, peer, attempt, 0);
  std::weak_ptr<NodeState> weak = weak_from_this();
  const std::string address = peer->address();
  reactor_->Connect(address, connection_options(), link,
                    [link, peer, weak, address, attempt](absl::StatusOr<std::shared_ptr<net::Connection>> connection) {
                      if (connection.ok()) {
                        link->Begin(*connection);
                        return;
                      }
                      if (std::shared_ptr<NodeState> node = weak.lock()) {
                        node->log().info("node {}: cannot connect to {}: {}", node->name(), address,
                                         connection.status().ToString());
                      }
                      peer->AttemptEnded(attempt, connection.status(), /*yielded=*/false);
                    });
}

}  // namespace troupe::internal
