// Peer: one remote node as seen from here — its link (the one connection
// that carries traffic both ways), what waits for the link, the asks
// waiting for replies, the monitors of its actors, and the decisions that
// keep one connection per pair of nodes. Part of a Node (net/node_state.h).
//
// Identity: a Peer is made for a dial address (Lookup, SpawnOn, a Ref's
// address) or for a node name (an inbound connection); once a handshake
// names the node, the directory keeps one canonical Peer per name
// (net/peer_directory.h). A dialled Peer that turns out to name a node
// that already has one is merged into it: its queued frames, asks and
// monitors move over, and it forwards everything after. Across restarts of
// the remote node the Peer stays; its incarnation moves on.
//
// States (all under mu_), and what a send gets in each:
//   kIdle         never connected: the send starts a connection and waits
//                 in the backlog
//   kConnecting   an attempt (ours, or the peer's that won the tie-break)
//                 is under way: before the first link, sends wait in the
//                 backlog; while healing a lost one, they fail (Unavailable)
//   kUp           sends go to the link's connection
//   kUnreachable  the link was lost (or the first attempts failed): sends
//                 fail at once; redialled with backoff and jitter if the
//                 address is known, until reconnect_give_up
//   kLeft         the peer left (a `leave` frame): sends fail; forgotten
//   kGone         given up, or the first connection failed: forgotten
//
// One connection per pair: a connector that, on reading the acceptor's
// hello, finds the peer already linked drops its attempt before proving
// anything. An acceptor, once the connector has proven itself, accepts
// unless (a) its own attempt to the same node is under way and its own
// name sorts first — the attempt of the node whose name sorts first wins,
// on both sides — or (b) a link it dialled is up; then it sends `yield`,
// and the connector waits (up to twice the handshake timeout) for the
// winning connection instead of reporting a failure. A second connection
// from the same incarnation while a link that peer dialled is up means the
// peer saw the old one die: the new one replaces it (a loss, then a
// reconnection). A connection from a newer incarnation replaces the old
// incarnation (NodeDown with `replaced`, then NodeUp); one from an older
// incarnation is refused.
//
// Threads: any. Peer methods never call subscribers, complete futures or
// close connections while holding mu_: each collects what to do in an
// Effects and runs it after unlocking. Exceptions, both leaves of the lock
// order: Connection::Send / SendControl (queue operations) while in kUp, so
// that frames of one peer are queued in the order they were accepted, and
// TimerService::Schedule / Cancel.

#ifndef TROUPE_NET_PEER_H_
#define TROUPE_NET_PEER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor_cell.h"
#include "actors/wire.h"
#include "net/io/reactor.h"
#include "net/node.h"
#include "net/wire/codec.h"
#include "scheduler/timer_service.h"

namespace troupe::internal {

class NodeState;

// Where a frame goes on the link (net/io/reactor.h): sends on the data lane,
// bounded; replies, downs, stops, watches and leaves also on the data lane,
// so that they keep their place after the sends before them, but from the
// reserve, never refused for a full queue. (Heartbeats take the control
// lane, ahead of everything: Peer::SendHeartbeat.)
enum class Lane { kData, kReserved };

// What goes with a frame handed to Peer::Submit.
struct Submission {
  uint64_t incarnation = 0;  // the target's incarnation; 0: any
  Lane lane = Lane::kData;
  // An ask (or lookup, spawn): its reply is registered under request_id,
  // with a deadline when `timeout` is finite.
  uint64_t request_id = 0;
  std::unique_ptr<RemoteReply> reply;
  absl::Duration timeout = absl::InfiniteDuration();
  // The C++ message type (static storage), for errors naming it.
  std::string_view message_type;

  // A frame from the reserve (stop, watch, down) for `incarnation` (0: any).
  static Submission Reserved(uint64_t incarnation = 0) {
    Submission s;
    s.incarnation = incarnation;
    s.lane = Lane::kReserved;
    return s;
  }
  // A request whose reply comes back under `request_id`.
  static Submission Request(uint64_t incarnation, uint64_t request_id, std::unique_ptr<RemoteReply> reply,
                            absl::Duration timeout, std::string_view message_type = {}) {
    Submission s;
    s.incarnation = incarnation;
    s.request_id = request_id;
    s.reply = std::move(reply);
    s.timeout = timeout;
    s.message_type = message_type;
    return s;
  }
};

// What an authenticated peer said in its hello.
struct PeerHello {
  std::string name;
  uint64_t incarnation = 0;
  std::string listen_address;  // routable; empty if it does not listen
  size_t max_frame_bytes = 0;
};

// The acceptor's answer to a connector that has proven itself.
struct Verdict {
  enum Kind { kAccept, kYield, kRefuse } kind = kAccept;
  std::string reason;  // for kYield and kRefuse
};

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  enum class State { kIdle, kConnecting, kUp, kUnreachable, kLeft, kGone };

  Peer(std::weak_ptr<NodeState> node, std::string address);
  ~Peer();

  // Any thread. Queues `frame` for this peer (connecting if it never was).
  // On failure the reply, if any, is completed with the error, which is also
  // returned: Unavailable (unreachable, left, restarted: `s.incarnation` is
  // not the peer's), ResourceExhausted (a full queue), InvalidArgument (over
  // the peer's frame limit), Cancelled (shutdown).
  // `node` is this Peer's (its callers hold it: no weak_ptr lock per send).
  absl::Status Submit(NodeState& node, net::FrameWriter& frame, Submission s);
  absl::Status Submit(NodeState& node, net::OutFrame frame, Submission s) {
    net::OutFrameWriter writer(frame);
    return Submit(node, writer, std::move(s));
  }

  // I/O thread: the reply frame for `request_id`. `refused_by` (non-empty):
  // the target refused the message's type.
  void Complete(uint64_t request_id, WireReader* payload, absl::Status status, std::string_view refused_by = {},
                bool refused_accepts_some = false);
  // Timer: the deadline of `request_id` passed.
  void Expire(uint64_t request_id, absl::Duration timeout);

  // Any thread: `watcher` hears Down when the remote actor `actor` of
  // incarnation `incarnation` stops or the link is lost. Sends one watch
  // frame per remote actor however many local watchers it has.
  void Watch(uint64_t actor, uint64_t incarnation, ActorCell* watcher, DownFactory make_down, ActorCell* proxy);
  // Any thread: forgets what Watch registered for (watcher, monitor). The
  // remote node keeps its own entry until the actor stops or the link goes.
  void Unwatch(uint64_t actor, ActorCell* watcher, uint64_t monitor);
  // I/O thread: a down frame.
  void DeliverDown(uint64_t actor, const absl::Status& reason);

  // --- The handshake's decisions (I/O threads). `attempt` identifies one of
  // this node's outbound attempts (NodeState::NextAttempt).
  // Connector, after reading the acceptor's hello: false if the attempt is
  // to be dropped (the peer is linked already, or another attempt of ours is
  // under way).
  bool MayProve(uint64_t attempt);
  // Acceptor, after the connector proved itself. On kAccept, `proof` (the
  // acceptor's) is queued first on `connection`, which becomes the link.
  Verdict OfferInbound(const std::shared_ptr<net::Connection>& connection, const PeerHello& hello,
                       net::OutFrame proof);
  // Connector, after checking the acceptor's proof: `connection` becomes the
  // link (or is closed, if the attempt was dropped meanwhile).
  void AttachOutbound(uint64_t attempt, const std::shared_ptr<net::Connection>& connection, const PeerHello& hello);
  // An attempt of ours ended without a link: failed (`yielded` false) or
  // told to wait for the peer's own connection (`yielded`).
  void AttemptEnded(uint64_t attempt, const absl::Status& why, bool yielded);
  // I/O thread: `connection` closed; if it was the link, the link is lost.
  void ConnectionClosed(const net::Connection* connection, const absl::Status& reason);
  // I/O thread: the peer sent `leave`.
  void Left(std::string_view reason);
  // This dialled Peer names the node `canonical` stands for: everything
  // queued here moves there, and this forwards from now on. Returns whether
  // `attempt` (this Peer's, under way) carries on as canonical's attempt.
  bool MergeInto(const std::shared_ptr<Peer>& canonical, uint64_t attempt);

  // Node shutdown: queues `leave` on the link (if up); returns the link's
  // connection to close.
  std::shared_ptr<net::Connection> Leave(net::OutFrame leave);
  // Node shutdown: fails everything pending; no events.
  void Close(const absl::Status& reason);

  // Any thread.
  std::string address() const;
  std::string name() const;
  uint64_t incarnation() const;
  State state() const;
  std::shared_ptr<net::Connection> connection() const;
  // The canonical Peer this one was merged into, or this.
  std::shared_ptr<Peer> canonical();

 private:
  struct Backlogged {
    net::OutFrame frame;
    uint64_t incarnation;
    uint64_t request_id;
    Lane lane;
  };
  struct Pending {
    std::unique_ptr<RemoteReply> reply;
    TimerId timer;
    std::string_view message_type;
  };
  struct RemoteWatch {
    ActorCell* watcher;  // holds a reference
    DownFactory make_down;
    ActorCell* proxy;  // holds a reference
  };
  using Event = std::variant<NodeUp, NodeDown, NodeLeft>;
  // What a locked section leaves to do once unlocked.
  struct Effects {
    std::vector<std::pair<Pending, absl::Status>> fail_pending;
    std::vector<std::pair<std::vector<RemoteWatch>, absl::Status>> fail_watches;
    uint64_t dead_letters = 0;  // tells in a failed backlog
    std::vector<TimerId> cancel;
    std::vector<std::pair<std::shared_ptr<net::Connection>, absl::Status>> close;
    bool deliver_events = false;
    bool forget = false;               // leave the directory
    bool forget_remote_state = false;  // the peer's watches of our actors
    uint64_t connect = 0;              // an attempt to dial address_
    int connections_delta = 0;
    bool reconnected = false;
  };

  std::shared_ptr<NodeState> node() const { return node_.lock(); }
  // The peer's name for logs and errors: its node name once known, else the
  // address dialled. Holds mu_.
  const std::string& who() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return name_.empty() ? address_ : name_; }
  // Holding mu_: `connection` becomes the link for `hello`, replacing an
  // earlier incarnation's or a dead one's.
  void AdoptLocked(NodeState& node, const std::shared_ptr<net::Connection>& connection, const PeerHello& hello,
                   bool initiated_by_us, net::OutFrame first, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holding mu_: the link (or the last attempt) is gone; fails what waits on
  // it with `error` and schedules the next attempt.
  void LoseLocked(NodeState& node, const absl::Status& error, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holding mu_: the next dial (with backoff), or giving up.
  void ScheduleRetryLocked(NodeState& node, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holding mu_: an attempt that did not link before the first link.
  void FailFirstAttemptLocked(NodeState& node, const absl::Status& error, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holding mu_: moves what waits here (asks, monitors, the backlog) into
  // fx, to fail with `error`.
  void TakeAllLocked(const absl::Status& error, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Holding mu_: sends one backlogged frame on the link, or fails it.
  void FlushOneLocked(Backlogged b, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitLocked(Event event, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Apply(Effects& fx);
  void DeliverEvents(NodeState& node);
  // Timer: the retry delay has passed.
  void Retry();
  void SendHeartbeat();
  // Takes what a dialled Peer merged into this one had.
  bool Absorb(std::vector<Backlogged> backlog, absl::flat_hash_map<uint64_t, Pending> pending,
              absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches, uint64_t attempt);

  const std::weak_ptr<NodeState> node_;

  mutable std::mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kIdle;
  std::string address_ ABSL_GUARDED_BY(mu_);  // where it listens; "" if unknown
  std::string name_ ABSL_GUARDED_BY(mu_);
  uint64_t incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_frame_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // the peer's; 0 until known
  bool ever_up_ ABSL_GUARDED_BY(mu_) = false;  // this incarnation was linked before
  std::shared_ptr<net::Connection> connection_ ABSL_GUARDED_BY(mu_);  // the link, in kUp
  bool initiated_by_us_ ABSL_GUARDED_BY(mu_) = false;  // of the link
  uint64_t attempt_ ABSL_GUARDED_BY(mu_) = 0;  // our attempt under way, or 0
  std::shared_ptr<Peer> forward_ ABSL_GUARDED_BY(mu_);  // merged into
  std::vector<Backlogged> backlog_ ABSL_GUARDED_BY(mu_);
  size_t backlog_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::vector<RemoteWatch>> watches_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time lost_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time retry_not_before_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // never linked: after a failure
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  TimerId heartbeat_ ABSL_GUARDED_BY(mu_);
  TimerId retry_ ABSL_GUARDED_BY(mu_);
  std::minstd_rand jitter_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;  // one thread delivers events_, in order
};

// Unavailable: node `who` cannot be reached, and why.
absl::Status PeerUnreachable(const std::string& who, const absl::Status& why);
// Unavailable: node `who` restarted after an address of incarnation `was`.
absl::Status PeerRestarted(const std::string& who, uint64_t was, uint64_t now);

// A copy of `status` that shares nothing with it. Debian's Abseil is not
// built for ThreadSanitizer, so the reference count of a Status shared
// between threads is invisible to it; statuses handed to other threads (a
// future's error, a Down, a NodeDown) are copied this way instead.
inline absl::Status Unshared(const absl::Status& status) {
  return status.ok() ? absl::OkStatus() : absl::Status(status.code(), std::string(status.message()));
}

}  // namespace troupe::internal

#endif  // TROUPE_NET_PEER_H_
