#include "net/fuzz/node_target.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "capnp/message.h"
#include "net/frame_codec.h"
#include "net/fuzz/frame_target.h"
#include "net/fuzz/node_fuzz_messages.troupe.h"
#include "net/handshake.h"
#include "net/io/frame.h"
#include "net/io/reactor.h"
#include "net/node_state.h"
#include "net/wire/envelope.capnp.h"
#include "net/wire/troupe.capnp.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"

namespace troupe::net::fuzz {

// The test actors. Outside the anonymous namespace: node_fuzz_messages.capnp
// names Counter in a Ref field. `alive` goes false when the object is
// destroyed (the actor stopped), so the harness can restart a published one.
struct Counter : Actor<Counter> {
  using Remote = Accepts<fuzzmsg::Add, fuzzmsg::Get, fuzzmsg::Echo, fuzzmsg::Post, fuzzmsg::Quit>;
  explicit Counter(std::shared_ptr<std::atomic<bool>> alive) : alive(std::move(alive)) {}
  explicit Counter(const fuzzmsg::CounterArgs& args) : n(args.start) {}
  ~Counter() {
    if (alive != nullptr) alive->store(false, std::memory_order_relaxed);  // read by the harness thread later
  }
  // Wraps instead of overflowing (signed overflow is UB, and UBSan would
  // report the harness).
  void On(const fuzzmsg::Add& m) { n = static_cast<int64_t>(static_cast<uint64_t>(n) + static_cast<uint64_t>(m.by)); }
  int64_t On(const fuzzmsg::Get&) { return n; }
  std::string On(const fuzzmsg::Echo& e) {
    std::string out = e.text;
    for (const std::string& tag : e.tags) absl::StrAppend(&out, " #", tag);
    absl::StrAppend(&out, " (", e.blob.size(), " bytes)");
    return out;
  }
  fuzzmsg::Post On(const fuzzmsg::Post& p) { return p; }
  void On(const fuzzmsg::Quit&) { Stop(); }
  std::shared_ptr<std::atomic<bool>> alive;
  int64_t n = 0;
};

// Handles messages but accepts none from other nodes (no `Remote`).
struct Mute : Actor<Mute> {
  Mute() = default;
  explicit Mute(std::shared_ptr<std::atomic<bool>> alive) : alive(std::move(alive)) {}
  ~Mute() {
    if (alive != nullptr) alive->store(false, std::memory_order_relaxed);
  }
  void On(const fuzzmsg::Add&) {}
  std::shared_ptr<std::atomic<bool>> alive;
};

// A bounded mailbox: a burst of sends finds it full (ResourceExhausted).
struct Tiny : Actor<Tiny> {
  static constexpr uint32_t kMailboxCapacity = 2;
  using Remote = Accepts<fuzzmsg::Add, fuzzmsg::Get, fuzzmsg::Quit>;
  explicit Tiny(std::shared_ptr<std::atomic<bool>> alive) : alive(std::move(alive)) {}
  ~Tiny() { alive->store(false, std::memory_order_relaxed); }
  void On(const fuzzmsg::Add& m) { n ^= m.by; }
  int64_t On(const fuzzmsg::Get&) { return n; }
  void On(const fuzzmsg::Quit&) { Stop(); }
  std::shared_ptr<std::atomic<bool>> alive;
  int64_t n = 0;
};

static_assert(internal::TypeName<Counter>() == kSpawnCounter);
static_assert(internal::TypeName<Mute>() == kSpawnMute);

namespace {

using internal::NodeState;

constexpr char kSecret[] = "fuzz-cluster-secret";
// Long: no heartbeat or handshake deadline fires during an input.
constexpr absl::Duration kHeartbeatInterval = absl::Hours(1);
constexpr absl::Duration kHeartbeatTimeout = absl::Hours(2);
// After the handshake; small, as in the frame fuzzer.
constexpr size_t kMaxFrameBytes = kFuzzMaxPayloadBytes;
// How long the asks delivered to actors may take to be answered.
constexpr absl::Duration kReplyWait = absl::Seconds(5);

[[noreturn]] void Violation(const std::string& what) {
  std::fprintf(stderr, "node_fuzzer: invariant broken: %s\n", what.c_str());
  std::abort();
}

// One frame the node sent, its payload 8-byte aligned.
enum class SentOn { kData, kReserved, kControl };

struct Sent {
  SentOn lane = SentOn::kData;
  std::vector<uint64_t> words;
  size_t size = 0;
  absl::Span<const uint8_t> payload() const { return {reinterpret_cast<const uint8_t*>(words.data()), size}; }
};

// A Connection that is not a socket: it captures what is sent and records
// what the node asks of it. Thread-safe (replies come from worker threads,
// downs from any thread); no callback runs under mu_.
class FakeConnection final : public Connection {
 public:
  FakeConnection(std::string peer, size_t max_frame_bytes) : peer_(std::move(peer)), max_frame_bytes_(max_frame_bytes) {}

  absl::Status Send(OutFrame frame) override { return Capture(std::move(frame), SentOn::kData); }
  absl::Status SendReserved(OutFrame frame) override { return Capture(std::move(frame), SentOn::kReserved); }
  absl::Status SendControl(OutFrame frame) override { return Capture(std::move(frame), SentOn::kControl); }
  void Close(absl::Status reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    reason_ = std::move(reason);
  }
  void SetMaxFrameBytes(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    max_frame_bytes_ = bytes;
    ++limit_changes_;
  }
  const std::string& peer() const override { return peer_; }
  const TlsPeer* tls_peer() const override { return nullptr; }
  ConnectionStats stats() const override { return {}; }
  size_t outbound_bytes() const override { return 0; }
  // Nothing is ever queued: the condition holds at once.
  void WhenQueuedAtMost(size_t, absl::AnyInvocable<void() &&> callback) override { std::move(callback)(); }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  absl::Status reason() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }
  size_t max_frame_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_frame_bytes_;
  }
  int limit_changes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return limit_changes_;
  }
  // The frames sent from index `from` on.
  std::vector<Sent> From(size_t from) const {
    std::lock_guard<std::mutex> lock(mu_);
    return from < sent_.size() ? std::vector<Sent>(sent_.begin() + static_cast<ptrdiff_t>(from), sent_.end())
                               : std::vector<Sent>();
  }
  size_t sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_.size();
  }
  // Waits until `done()` (called under mu_, after each captured frame) or
  // the deadline; returns done().
  template <class Done>
  bool WaitUntil(absl::Time deadline, Done&& done) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done(sent_)) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return done(sent_);
      changed_.wait_for(lock, absl::ToChronoMilliseconds(left) + std::chrono::milliseconds(1));
    }
    return true;
  }

 private:
  absl::Status Capture(OutFrame frame, SentOn lane) {
    if (frame.empty()) return absl::InvalidArgumentError("an empty OutFrame");
    Sent s{.lane = lane, .words = std::vector<uint64_t>((frame.payload_size() + 7) / 8), .size = frame.payload_size()};
    if (s.size != 0) std::memcpy(s.words.data(), frame.payload(), s.size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return absl::UnavailableError("the connection is closed");
      sent_.push_back(std::move(s));
    }
    changed_.notify_all();
    return absl::OkStatus();
  }

  const std::string peer_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
  size_t max_frame_bytes_ ABSL_GUARDED_BY(mu_);
  int limit_changes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
};

std::shared_ptr<spdlog::logger> QuietLogger() {
  // TROUPE_FUZZ_LOG=1: the node's log lines on stderr, to read a finding.
  if (const char* log = std::getenv("TROUPE_FUZZ_LOG"); log != nullptr && log[0] == '1') return nullptr;
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::off);
  return logger;
}

NodeOptions FuzzNodeOptions() {
  NodeOptions o;
  o.name = std::string(kNodeName);
  o.cluster_secret = kSecret;
  o.heartbeat_interval = kHeartbeatInterval;
  o.heartbeat_timeout = kHeartbeatTimeout;
  o.handshake_timeout = absl::Hours(1);
  // A peer whose only connection (the input's) closed is forgotten 1 ms
  // later, so peers do not pile up over millions of inputs.
  o.reconnect_give_up = absl::Milliseconds(1);
  o.max_frame_bytes = kMaxFrameBytes;
  return o;
}

// The process's node (see node_target.h). Every member is used from the
// fuzzing thread only, except what the actors and the node share.
class World {
 public:
  World()
      : system_(ActorSystemOptions{.workers = 1, .name = "fuzz", .logger = QuietLogger()}),
        node_(std::make_shared<NodeState>(system_, FuzzNodeOptions())),
        key_(ClusterKey(kSecret)) {
    node_->Start();  // as Node's constructor does
    node_->RegisterSpawn(kSpawnCounter, WireTraits<fuzzmsg::CounterArgs>::kTypeId,
                         [this](WireReader* in) -> absl::StatusOr<ActorRef> {
                           absl::StatusOr<fuzzmsg::CounterArgs> args = WireTraits<fuzzmsg::CounterArgs>::Decode(*in);
                           if (!args.ok()) return args.status();
                           return Spawned(system_.Spawn<Counter>(*args));
                         });
    node_->RegisterSpawn(kSpawnMute, 0, [this](WireReader*) -> absl::StatusOr<ActorRef> {
      return Spawned(system_.Spawn<Mute>());
    });
  }

  NodeState& node() { return *node_; }
  const std::string& key() const { return key_; }
  uint64_t NextInput() { return ++inputs_; }

  // Restarts, republishes and re-exports the test actors that stopped.
  void RestoreActors() {
    for (size_t k = 0; k < std::size(kTestActors); ++k) {
      Slot& slot = slots_[k];
      if (slot.alive != nullptr && slot.alive->load(std::memory_order_relaxed)) continue;
      slot.alive = std::make_shared<std::atomic<bool>>(true);
      switch (k) {
        case 0: slot.ref = system_.Spawn<Counter>(slot.alive); break;
        case 1: slot.ref = system_.Spawn<Mute>(slot.alive); break;
        default: slot.ref = system_.Spawn<Tiny>(slot.alive); break;
      }
      if (absl::Status s = node_->Publish(kTestActors[k], slot.ref); !s.ok()) Violation(s.ToString());
      // Exported as a reply carrying its address would export it, so that
      // frames can target it by id from the first input on.
      capnp::MallocMessageBuilder scratch;
      if (absl::Status s = node_->refs().Encode(slot.ref, scratch.initRoot<wire::ActorAddress>()); !s.ok()) {
        Violation(s.ToString());
      }
    }
  }

  // The value a token word stands for; false if `word` is not a token.
  bool Token(uint64_t word, uint64_t& value) const {
    if ((word & ~uint64_t{0xffff}) != kTokenBase) return false;
    const uint64_t selector = word & 0xffff;
    if (selector == 0) {
      value = node_->incarnation();
      return true;
    }
    if (selector - 1 >= std::size(kTestActors)) return false;
    value = slots_[selector - 1].ref.id();
    return true;
  }

  // Stops what the last input spawned.
  void StopSpawned() {
    std::vector<ActorRef> spawned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      spawned.swap(spawned_);
    }
    for (const ActorRef& ref : spawned) ref.Stop();
  }

 private:
  struct Slot {
    ActorRef ref;
    std::shared_ptr<std::atomic<bool>> alive;
  };

  ActorRef Spawned(ActorRef ref) {
    std::lock_guard<std::mutex> lock(mu_);
    spawned_.push_back(ref);
    return ref;
  }

  ActorSystem system_;
  std::shared_ptr<NodeState> node_;
  const std::string key_;
  uint64_t inputs_ = 0;
  Slot slots_[std::size(kTestActors)];
  std::mutex mu_;
  std::vector<ActorRef> spawned_ ABSL_GUARDED_BY(mu_);
};

World& TheWorld() {
  // Never destroyed: libFuzzer exits from inside the loop, and tearing the
  // node down under running workers at exit would only add noise.
  static World* const world = new World();
  return *world;
}

std::string SourceAddress(uint64_t n) {
  return absl::StrCat("10.", (n >> 16) & 0xff, ".", (n >> 8) & 0xff, ".", n & 0xff, ":4000");
}

std::string PayloadOf(const OutFrame& frame) {
  return std::string(reinterpret_cast<const char*>(frame.payload()), frame.payload_size());
}

std::string Text(capnp::Data::Reader data) { return std::string(reinterpret_cast<const char*>(data.begin()), data.size()); }

kj::ArrayPtr<const kj::byte> Bytes(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// What the harness reads of one frame of the input, before the node does.
struct Classified {
  bool read = false;         // ReadFrame and the kind's id fields read
  bool well_formed = false;  // and WalkFrame read every field
  wire::Frame::Which which = wire::Frame::HELLO;
  bool ask = false;          // a reply is due (send with a request id, lookup, spawn)
  uint64_t request_id = 0;
  bool watch = false;
  uint64_t actor = 0;  // of a watch
};

bool IsTraffic(wire::Frame::Which which) {
  switch (which) {
    case wire::Frame::SEND:
    case wire::Frame::REPLY:
    case wire::Frame::HEARTBEAT:
    case wire::Frame::LOOKUP:
    case wire::Frame::SPAWN:
    case wire::Frame::STOP:
    case wire::Frame::WATCH:
    case wire::Frame::DOWN:
    case wire::Frame::LEAVE:
      return true;
    default:
      return false;
  }
}

Classified Classify(absl::Span<const uint8_t> payload) {
  Classified c;
  const absl::Status read = ReadFrame(payload, NodeReaderOptions(payload.size()), [&](wire::Frame::Reader f) {
    c.which = f.which();
    switch (c.which) {
      case wire::Frame::SEND:
        c.request_id = f.getSend().getRequestId();
        c.ask = c.request_id != 0;
        break;
      case wire::Frame::LOOKUP:
        c.request_id = f.getLookup().getRequestId();
        c.ask = true;
        break;
      case wire::Frame::SPAWN:
        c.request_id = f.getSpawn().getRequestId();
        c.ask = true;
        break;
      case wire::Frame::WATCH:
        c.actor = f.getWatch().getActor();
        c.watch = true;
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  c.read = read.ok();
  if (!c.read) return c;
  uint64_t digest = 0;
  c.well_formed =
      ReadFrame(payload, NodeReaderOptions(payload.size()), [&](wire::Frame::Reader f) { return WalkFrame(f, digest); })
          .ok();
  return c;
}

// One input's connection, from accept to OnClosed.
class Session {
 public:
  Session(World& world, uint64_t n, bool authenticate)
      : world_(world),
        n_(n),
        authenticate_(authenticate),
        connection_(std::make_shared<FakeConnection>(SourceAddress(n), world.node().connection_options().max_frame_bytes)) {
    if (connection_->max_frame_bytes() != kHandshakeFrameBytes) {
      Violation(absl::StrCat("the node accepts connections with a frame limit of ", connection_->max_frame_bytes(),
                             " bytes before the handshake, not kHandshakeFrameBytes"));
    }
    handler_ = world.node().AcceptLink(*connection_);
    if (connection_->sent() != 0) Violation("the acceptor sent something before the connector's hello");
  }

  NodeRunResult Run(absl::Span<const uint8_t> frames) {
    if (authenticate_) Authenticate();
    Feed(frames);
    Finish();
    return result_;
  }

 private:
  // One frame as one read: OnFrame, then OnReadDone, as the reactor calls them.
  void OnFrame(absl::Span<const uint8_t> payload) {
    try {
      handler_->OnFrame(*connection_, payload);
      handler_->OnReadDone(*connection_);
    } catch (...) {
      // The reactor would close the connection (Internal); the node means
      // to turn every problem with a frame into a status.
      Violation("an exception escaped Link::OnFrame or OnReadDone");
    }
  }

  // Plays a correct protocol-2 connector; aborts if the node does not
  // complete the handshake with it.
  void Authenticate() {
    const NodeOptions& o = world_.node().options();
    absl::StatusOr<OutFrame> hello = BuildFrame([&](wire::Frame::Builder f) {
      wire::Hello::Builder h = f.initHello();
      h.setMinVersion(kMinProtocolVersion);
      h.setMaxVersion(kMaxProtocolVersion);
      h.setNode(absl::StrCat("fuzz-peer-", n_));  // a fresh Peer per input
      h.setIncarnation(n_);
      h.setAddress("");  // not dialled back when the connection closes
      h.setChallenge(Bytes(NewChallenge()));
      h.setHeartbeatIntervalMs(static_cast<uint32_t>(absl::ToInt64Milliseconds(o.heartbeat_interval)));
      h.setHeartbeatTimeoutMs(static_cast<uint32_t>(absl::ToInt64Milliseconds(o.heartbeat_timeout)));
      h.setMaxFrameBytes(static_cast<uint32_t>(o.max_frame_bytes));
      return absl::OkStatus();
    });
    if (!hello.ok()) Violation(hello.status().ToString());
    const std::string connector_hello = PayloadOf(*hello);
    OnFrame(absl::MakeConstSpan(hello->payload(), hello->payload_size()));
    std::vector<Sent> answer = connection_->From(0);
    if (connection_->closed() || answer.size() != 1) {
      Violation(absl::StrCat("the node answered a correct hello with ", answer.size(), " frames (closed: ",
                             connection_->reason().ToString(), ")"));
    }
    const std::string acceptor_hello(reinterpret_cast<const char*>(answer[0].payload().data()), answer[0].size);
    absl::Status checked = ReadFrame(answer[0].payload(), NodeReaderOptions(answer[0].size), [&](wire::Frame::Reader f) {
      if (f.which() != wire::Frame::HELLO) return absl::InternalError("not a hello");
      wire::Hello::Reader h = f.getHello();
      if (h.getMinVersion() != kMaxProtocolVersion || h.getMaxVersion() != kMaxProtocolVersion) {
        return absl::InternalError("the acceptor did not choose version 2");
      }
      if (std::string_view(h.getNode().cStr()) != kNodeName) return absl::InternalError("the node's name");
      if (h.getChallenge().size() != kChallengeBytes) return absl::InternalError("the challenge's size");
      if (h.getMaxFrameBytes() != kMaxFrameBytes) return absl::InternalError("max_frame_bytes");
      return CheckHeartbeats(kHeartbeatInterval, kHeartbeatTimeout, h.getHeartbeatIntervalMs(),
                             h.getHeartbeatTimeoutMs());
    });
    if (!checked.ok()) Violation(absl::StrCat("the node's hello: ", checked.ToString()));
    if (connection_->max_frame_bytes() != kHandshakeFrameBytes || connection_->limit_changes() != 0) {
      Violation("the frame limit changed before the connector proved itself");
    }
    const std::string transcript = Transcript(connector_hello, acceptor_hello);
    absl::StatusOr<OutFrame> proof = BuildFrame([&](wire::Frame::Builder f) {
      f.setProof(Bytes(HandshakeMac(world_.key(), Role::kConnect, transcript)));
      return absl::OkStatus();
    });
    if (!proof.ok()) Violation(proof.status().ToString());
    OnFrame(absl::MakeConstSpan(proof->payload(), proof->payload_size()));
    answer = connection_->From(1);
    if (connection_->closed() || answer.size() != 1) {
      Violation(absl::StrCat("the node answered a correct proof with ", answer.size(), " frames (closed: ",
                             connection_->reason().ToString(), ")"));
    }
    checked = ReadFrame(answer[0].payload(), NodeReaderOptions(answer[0].size), [&](wire::Frame::Reader f) {
      if (f.which() != wire::Frame::PROOF) return absl::InternalError("not a proof");
      return CheckProof(world_.key(), Role::kAccept, transcript, kNodeName, Text(f.getProof()));
    });
    if (!checked.ok()) Violation(absl::StrCat("the node's proof: ", checked.ToString()));
    if (connection_->max_frame_bytes() != kMaxFrameBytes) {
      Violation(absl::StrCat("after the handshake the frame limit is ", connection_->max_frame_bytes(),
                             " bytes, not max_frame_bytes"));
    }
    handshake_frames_ = connection_->sent();
    result_.authenticated = true;
  }

  // The input's frames, as the reactor hands them over.
  void Feed(absl::Span<const uint8_t> bytes) {
    FrameDecoder decoder(connection_->max_frame_bytes());
    const absl::Status fed = decoder.Feed(bytes, [&](absl::Span<const uint8_t> payload) -> absl::Status {
      OnePayload(payload);
      decoder.set_max_payload_bytes(connection_->max_frame_bytes());
      // Once closing, no further OnFrame (net/io/reactor.h).
      return connection_->closed() ? absl::CancelledError("closed") : absl::OkStatus();
    });
    if (connection_->closed()) return;
    if (!fed.ok()) {
      end_reason_ = fed;  // the reactor closes for an oversized length
      result_.oversized = true;
    } else {
      end_reason_ = absl::UnavailableError("peer closed the connection");
    }
  }

  void OnePayload(absl::Span<const uint8_t> in) {
    // A copy the harness may change: the tokens of authenticated inputs.
    std::vector<uint64_t> words((in.size() + 7) / 8);
    if (!in.empty()) std::memcpy(words.data(), in.data(), in.size());
    if (result_.authenticated) {
      for (size_t i = 0; i < in.size() / 8; ++i) {
        uint64_t value;
        if (world_.Token(words[i], value)) words[i] = value;
      }
    }
    const absl::Span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(words.data()), in.size());
    const Classified c = result_.authenticated ? Classify(payload) : Classified{};
    OnFrame(payload);
    ++result_.frames_fed;
    if (connection_->closed()) result_.closed_by_node = true;
    if (!result_.authenticated) {
      CheckUnauthenticated();
      return;
    }
    if (connection_->closed()) {
      if (c.well_formed && IsTraffic(c.which)) {
        Violation(absl::StrCat("the node closed the connection after a well-formed frame of kind ",
                               static_cast<int>(c.which), ": ", connection_->reason().ToString()));
      }
      return;
    }
    // Handled whole (it did not close): what it owes.
    if (c.ask) ++asks_[c.request_id];
    if (c.watch) ++watches_[c.actor];
    if (connection_->max_frame_bytes() != kMaxFrameBytes || connection_->limit_changes() != 1) {
      Violation("the frame limit changed after the handshake");
    }
  }

  // Before authentication the node may send a hello (once) and a refusal,
  // never a proof; the frame limit stays the handshake's.
  void CheckUnauthenticated() {
    if (connection_->limit_changes() != 0 || connection_->max_frame_bytes() != kHandshakeFrameBytes) {
      Violation("the frame limit was raised for a connector that did not prove itself");
    }
    int hellos = 0;
    for (const Sent& s : connection_->From(0)) {
      (void)ReadFrame(s.payload(), NodeReaderOptions(s.size), [&](wire::Frame::Reader f) {
        switch (f.which()) {
          case wire::Frame::HELLO:
            if (++hellos > 1) Violation("the node sent two hellos on one connection");
            break;
          case wire::Frame::REFUSED:
            break;
          default:
            Violation(absl::StrCat("the node sent a frame of kind ", static_cast<int>(f.which()),
                                   " to a connector that did not prove itself"));
        }
        return absl::OkStatus();
      });
    }
  }

  // Waits for the replies due (asks delivered to actors are answered on a
  // worker thread), closes, and checks what was owed against what came.
  void Finish() {
    const bool node_closed = connection_->closed();
    if (result_.authenticated && !node_closed && !asks_.empty()) {
      // Counted as they come (under the connection's lock: no callback).
      absl::flat_hash_map<uint64_t, int> answered;
      size_t seen = handshake_frames_, unanswered = asks_.size();
      connection_->WaitUntil(absl::Now() + kReplyWait, [&](const std::vector<Sent>& sent) {
        for (; seen < sent.size(); ++seen) {
          uint64_t id = 0;
          bool reply = false;
          (void)ReadFrame(sent[seen].payload(), NodeReaderOptions(sent[seen].size), [&](wire::Frame::Reader f) {
            if (f.which() == wire::Frame::REPLY) {
              reply = true;
              id = f.getReply().getRequestId();
            }
            return absl::OkStatus();
          });
          auto owed = asks_.find(id);
          if (reply && owed != asks_.end() && ++answered[id] == owed->second) --unanswered;
        }
        return unanswered == 0;
      });
    }
    connection_->Close(end_reason_);  // a no-op if the node closed it
    const absl::Status reason = connection_->reason();
    handler_->OnClosed(*connection_, reason);
    if (result_.authenticated) CheckOwed(node_closed);
    if (world_.node().gate().size() != 0) {
      Violation(absl::StrCat(world_.node().gate().size(), " connections left in the HandshakeGate after OnClosed"));
    }
  }

  size_t TotalAsks() const {
    size_t total = 0;
    for (const auto& [id, n] : asks_) total += n;
    return total;
  }

  void CheckOwed(bool node_closed) {
    absl::flat_hash_map<uint64_t, int> replies, downs;
    for (const Sent& s : connection_->From(handshake_frames_)) {
      absl::Status read = ReadFrame(s.payload(), NodeReaderOptions(s.size), [&](wire::Frame::Reader f) {
        switch (f.which()) {
          case wire::Frame::REPLY:
            if (s.lane != SentOn::kReserved) Violation("a reply not from the data lane's reserve");
            ++replies[f.getReply().getRequestId()];
            break;
          case wire::Frame::DOWN:
            if (s.lane != SentOn::kReserved) Violation("a down not from the data lane's reserve");
            ++downs[f.getDown().getActor()];
            break;
          case wire::Frame::HEARTBEAT:
            break;
          default:
            Violation(absl::StrCat("after the handshake the node sent a frame of kind ", static_cast<int>(f.which())));
        }
        return absl::OkStatus();
      });
      if (!read.ok()) Violation(absl::StrCat("the node sent a frame it cannot read itself: ", read.ToString()));
    }
    for (const auto& [id, n] : replies) {
      auto it = asks_.find(id);
      const int owed = it == asks_.end() ? 0 : it->second;
      if (n > owed) Violation(absl::StrCat(n, " replies with request id ", id, " to ", owed, " asks"));
      result_.replies += n;
    }
    if (!node_closed) {
      for (const auto& [id, owed] : asks_) {
        auto it = replies.find(id);
        const int n = it == replies.end() ? 0 : it->second;
        if (n != owed) {
          Violation(absl::StrCat(owed, " asks with request id ", id, " got ", n, " replies within ",
                                 absl::FormatDuration(kReplyWait), " (connection not closed)"));
        }
      }
    }
    for (const auto& [actor, n] : downs) {
      auto it = watches_.find(actor);
      const int watched = it == watches_.end() ? 0 : it->second;
      if (n > watched) Violation(absl::StrCat(n, " downs for actor ", actor, " watched ", watched, " times"));
      result_.downs += n;
    }
  }

  World& world_;
  const uint64_t n_;
  const bool authenticate_;
  const std::shared_ptr<FakeConnection> connection_;
  std::shared_ptr<ConnectionHandler> handler_;
  size_t handshake_frames_ = 0;
  absl::Status end_reason_ = absl::UnavailableError("peer closed the connection");
  absl::flat_hash_map<uint64_t, int> asks_;     // request id: how many asks
  absl::flat_hash_map<uint64_t, int> watches_;  // actor: how many watches
  NodeRunResult result_;
};

}  // namespace

NodeRunResult RunNodeInput(absl::Span<const uint8_t> input) {
  if (input.empty()) return {};
  World& world = TheWorld();
  const bool authenticate = (input[0] & 1) == kModeAuthenticated;
  world.RestoreActors();
  NodeRunResult result = Session(world, world.NextInput(), authenticate).Run(input.subspan(1));
  world.StopSpawned();
  return result;
}

}  // namespace troupe::net::fuzz
