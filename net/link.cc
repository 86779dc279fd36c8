// Link: the handler of one connection — the handshake (net/handshake.h),
// then every frame handed to NodeState::HandleFrame. Runs on the
// connection's I/O thread only.
//
// States: kAwaitHello (both roles: the peer's hello is next), kAwaitProof
// (acceptor: the connector's proof is next), kUp, kClosed. Any frame out of
// order, a failed check or the handshake deadline closes the connection
// with one log line and a counter; a failed check first sends `refused`
// with the reason so the peer can log it too.

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
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

std::string Bytes(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

class Link final : public net::ConnectionHandler, public std::enable_shared_from_this<Link> {
 public:
  Link(std::shared_ptr<NodeState> node, net::Role role, std::shared_ptr<Peer> peer)
      : node_(std::move(node)), role_(role), peer_(std::move(peer)), challenge_(net::NewChallenge()) {}

  // Connector: the connection is open; say hello.
  void Begin(const std::shared_ptr<net::Connection>& connection) {
    connection_ = connection;
    ArmHandshakeDeadline(connection);
    if (role_ == net::Role::kConnect) SendHello(*connection, /*peer_challenge=*/"");
  }

  void OnFrame(net::Connection& connection, absl::Span<const uint8_t> payload) override {
    if (state_ == State::kClosed) return;
    absl::Status status = net::ReadFrame(payload, node_->reader_options(payload.size()), [&](wire::Frame::Reader f) {
      return state_ == State::kUp ? Forward(connection, f) : Handshake(connection, f);
    });
    if (!status.ok()) {
      counted_ = true;
      if (state_ == State::kUp) {
        node_->bad_frames.fetch_add(1, std::memory_order_relaxed);
      } else {
        node_->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
      }
      node_->log().warn("node {}: closing the connection with {} ({}): {}", node_->name(), connection.peer(),
                        peer_name_.empty() ? "before its handshake" : peer_name_, status.ToString());
      Fail(connection, status);
    }
  }

  void OnClosed(net::Connection& connection, const absl::Status& reason) override {
    const bool was_up = state_ == State::kUp;
    state_ = State::kClosed;
    // Closed by the reactor for cause (an oversized length, a frame or idle
    // timeout): count it here; causes found in OnFrame were counted there.
    if (!counted_ && !deadline_fired_.load(std::memory_order_acquire) && (absl::IsResourceExhausted(reason) || absl::IsDeadlineExceeded(reason))) {
      (was_up ? node_->bad_frames : node_->handshakes_failed).fetch_add(1, std::memory_order_relaxed);
      node_->log().warn("node {}: connection with {} ({}) closed: {}", node_->name(), connection.peer(),
                        peer_name_.empty() ? "before its handshake" : peer_name_, reason.ToString());
    }
    if (peer_ != nullptr) peer_->Lost(was_up ? &connection : nullptr, reason);
    if (deadline_) node_->system().core().timers().Cancel(deadline_);
    if (was_up) {
      node_->log().info("node {}: connection with {} ({}) closed: {}", node_->name(), peer_name_, connection.peer(),
                        reason.ToString());
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
      c->Close(absl::DeadlineExceededError(
          absl::StrCat("no handshake within ", absl::FormatDuration(timeout))));
    });
  }

  void SendHello(net::Connection& connection, std::string_view peer_challenge) {
    const std::string address = node_->listen_address();
    absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
      wire::Hello::Builder hello = f.initHello();
      hello.setProtocolVersion(net::kProtocolVersion);
      hello.setNode(node_->name());
      hello.setIncarnation(node_->incarnation());
      hello.setAddress(address);
      hello.setChallenge(kj::arrayPtr(reinterpret_cast<const kj::byte*>(challenge_.data()), challenge_.size()));
      if (!peer_challenge.empty()) {
        const std::string proof = net::HandshakeMac(node_->options().cluster_secret, net::Role::kAccept,
                                                    peer_challenge, node_->name(), node_->incarnation());
        hello.setProof(kj::arrayPtr(reinterpret_cast<const kj::byte*>(proof.data()), proof.size()));
      }
      return absl::OkStatus();
    });
    if (frame.ok()) (void)connection.Send(*std::move(frame));
  }

  void SendProof(net::Connection& connection, std::string_view peer_challenge) {
    const std::string proof = net::HandshakeMac(node_->options().cluster_secret, net::Role::kConnect, peer_challenge,
                                                node_->name(), node_->incarnation());
    absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
      f.setProof(kj::arrayPtr(reinterpret_cast<const kj::byte*>(proof.data()), proof.size()));
      return absl::OkStatus();
    });
    if (frame.ok()) (void)connection.Send(*std::move(frame));
  }

  // Tells the peer why (during the handshake) and closes.
  void Fail(net::Connection& connection, const absl::Status& status) {
    if (state_ != State::kUp) {
      absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
        f.setRefused(std::string(status.message()));
        return absl::OkStatus();
      });
      if (frame.ok()) (void)connection.Send(*std::move(frame));
    }
    connection.Close(status);
  }

  absl::Status Handshake(net::Connection& connection, wire::Frame::Reader f) {
    switch (f.which()) {
      case wire::Frame::REFUSED:
        node_->log().error("node {}: {} refused the connection: {}", node_->name(), connection.peer(),
                           f.getRefused().cStr());
        node_->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
        state_ = State::kClosed;
        connection.Close(absl::PermissionDeniedError(absl::StrCat("refused by the peer: ", f.getRefused().cStr())));
        return absl::OkStatus();
      case wire::Frame::HELLO:
        if (state_ == State::kAwaitHello) return OnHello(connection, f.getHello());
        break;
      case wire::Frame::PROOF:
        if (state_ == State::kAwaitProof) return OnProof(connection, Bytes(f.getProof()));
        break;
      default:
        break;
    }
    return absl::InvalidArgumentError("protocol violation: a frame other than the handshake's before it finished");
  }

  absl::Status OnHello(net::Connection& connection, wire::Hello::Reader hello) {
    const std::string peer_node = hello.getNode().cStr();
    const std::string peer_challenge = Bytes(hello.getChallenge());
    if (absl::Status s = net::CheckHello(hello.getProtocolVersion(), peer_node, peer_challenge); !s.ok()) return s;
    if (peer_node == node_->name()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the peer calls itself '", peer_node, "', the name of this node: node names must be unique"));
    }
    peer_name_ = peer_node;
    peer_incarnation_ = hello.getIncarnation();
    peer_address_ = hello.getAddress().cStr();
    if (role_ == net::Role::kConnect) {
      // The acceptor proved itself in its hello.
      if (absl::Status s = net::CheckProof(node_->options().cluster_secret, net::Role::kAccept, challenge_, peer_node,
                                           peer_incarnation_, Bytes(hello.getProof()));
          !s.ok()) {
        return s;
      }
      SendProof(connection, peer_challenge);
      node_->BindOutbound(peer_name_, peer_incarnation_, peer_);
      Established(connection);
    } else {
      SendHello(connection, peer_challenge);
      state_ = State::kAwaitProof;
    }
    return absl::OkStatus();
  }

  absl::Status OnProof(net::Connection& connection, const std::string& proof) {
    if (absl::Status s = net::CheckProof(node_->options().cluster_secret, net::Role::kConnect, challenge_, peer_name_,
                                         peer_incarnation_, proof);
        !s.ok()) {
      return s;
    }
    peer_ = node_->BindInbound(peer_name_, peer_incarnation_, RoutableAddress(peer_address_, connection.peer()));
    Established(connection);
    return absl::OkStatus();
  }

  void Established(net::Connection& connection) {
    state_ = State::kUp;
    handshake_done_.store(true, std::memory_order_release);  // pairs with the acquire in the deadline
    if (deadline_) node_->system().core().timers().Cancel(deadline_);
    std::shared_ptr<net::Connection> shared = connection_.lock();
    if (shared == nullptr) shared = connection.shared_from_this();
    node_->log().info("node {}: connected to node {} ({}, incarnation {})", node_->name(), peer_name_,
                      connection.peer(), peer_incarnation_);
    peer_->Up(std::move(shared), peer_name_, peer_incarnation_, peer_address_);
  }

  absl::Status Forward(net::Connection& connection, wire::Frame::Reader f) {
    if (f.which() == wire::Frame::HELLO || f.which() == wire::Frame::PROOF) {
      return absl::InvalidArgumentError("protocol violation: a second handshake on one connection");
    }
    return node_->HandleFrame(*peer_, connection, f, cache_);
  }

  const std::shared_ptr<NodeState> node_;
  const net::Role role_;
  std::shared_ptr<Peer> peer_;  // the dialled peer, or bound after the handshake
  const std::string challenge_;
  std::weak_ptr<net::Connection> connection_;
  State state_ = State::kAwaitHello;
  std::atomic<bool> handshake_done_{false};
  bool counted_ = false;  // I/O thread: this connection's refusal is counted
  std::atomic<bool> deadline_fired_{false};  // set by the handshake deadline's timer
  TimerId deadline_;
  std::string peer_name_;
  uint64_t peer_incarnation_ = 0;
  std::string peer_address_;
  ExportCache cache_;
};

}  // namespace

std::shared_ptr<net::ConnectionHandler> NodeState::AcceptLink(net::Connection& connection) {
  auto link = std::make_shared<Link>(shared_from_this(), net::Role::kAccept, nullptr);
  link->Begin(connection.shared_from_this());
  return link;
}

void NodeState::Connect(std::shared_ptr<Peer> peer) {
  auto link = std::make_shared<Link>(shared_from_this(), net::Role::kConnect, peer);
  std::weak_ptr<NodeState> weak = weak_from_this();
  reactor_->Connect(peer->address(), connection_options(), link,
                    [link, peer, weak](absl::StatusOr<std::shared_ptr<net::Connection>> connection) {
                      if (connection.ok()) {
                        link->Begin(*connection);
                        return;
                      }
                      if (std::shared_ptr<NodeState> node = weak.lock()) {
                        node->log().warn("node {}: cannot connect to {}: {}", node->name(), peer->address(),
                                         connection.status().ToString());
                      }
                      peer->Lost(nullptr, connection.status());
                    });
}

}  // namespace troupe::internal
