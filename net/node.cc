#include "net/node.h"

#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "kj/exception.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "net/frame_codec.h"
#include "net/handshake.h"
#include "net/node_state.h"

namespace troupe {
namespace internal {
namespace {

// Watches exported actors for the node: forgets them when they stop and
// tells the peers that monitor them.
struct ExportedActor {
  ActorRef ref;
};

class NodeAgent : public Actor<NodeAgent> {
 public:
  explicit NodeAgent(std::weak_ptr<NodeState> node) : node_(std::move(node)) {}

  // The export was noted before this watch arrives; an actor that stopped
  // in between still reports its own exit reason to the peers that watched
  // it, not "has stopped" (a linked actor must not die of a normal stop).
  void On(const ExportedActor& e) {
    Self().cell()->Monitor(e.ref.cell(), &MakeDown<NodeAgent>, /*exit_reason_if_late=*/true);
  }
  void On(const Down& down) {
    if (std::shared_ptr<NodeState> node = node_.lock()) node->ActorGone(down.actor.id(), down.reason);
  }

 private:
  std::weak_ptr<NodeState> node_;
};

std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "node", "-", getpid());
}

// Later starts have larger incarnations: milliseconds since the epoch in
// the high bits, 20 random bits below (two starts in one millisecond).
uint64_t NewIncarnation() {
  const std::string bytes = net::NewChallenge();
  const uint64_t random = (static_cast<uint64_t>(static_cast<uint8_t>(bytes[0])) |
                           static_cast<uint64_t>(static_cast<uint8_t>(bytes[1])) << 8 |
                           static_cast<uint64_t>(static_cast<uint8_t>(bytes[2])) << 16) &
                          0xFFFFF;
  const uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  return (millis << 20) | random | 1;
}

// Completes a lookup or spawn with the ActorAddress in the reply.
class RefReply final : public RemoteReply {
 public:
  RefReply(std::shared_ptr<NodeState> node, std::string actor_type, RefCallback done)
      : node_(std::move(node)), actor_type_(std::move(actor_type)), done_(std::move(done)) {}

  void Complete(WireReader* payload, absl::Status status) noexcept override {
    if (!status.ok()) {
      std::move(done_)(std::move(status));
      return;
    }
    absl::StatusOr<ActorRef> ref;
    kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
      ref = node_->refs().Decode(payload->payload().getAs<wire::ActorAddress>(), actor_type_);
    });
    KJ_IF_MAYBE(e, error) {
      ref = absl::InvalidArgumentError(absl::StrCat("malformed actor address: ", e->getDescription().cStr()));
    }
    std::move(done_)(std::move(ref));
  }

 private:
  const std::shared_ptr<NodeState> node_;
  const std::string actor_type_;
  RefCallback done_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Subscribers, the handshake gate.

void Subscribers::Add(ActorRef subscriber, NodeEvents events) {
  auto entry = std::make_shared<Entry>(Entry{std::move(subscriber), std::move(events)});
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back(std::move(entry));
}

void Subscribers::Notify(const std::variant<NodeUp, NodeDown, NodeLeft>& event) {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries = entries_;
  }
  for (const std::shared_ptr<Entry>& e : entries) {
    if (const auto* up = std::get_if<NodeUp>(&event)) {
      e->events.up(*up);
    } else if (const auto* down = std::get_if<NodeDown>(&event)) {
      // A reason of its own for each subscriber (see Unshared).
      e->events.down(NodeDown{down->node, down->address, down->incarnation, Unshared(down->reason), down->replaced});
    } else {
      e->events.left(std::get<NodeLeft>(event));
    }
  }
}

void Subscribers::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

std::vector<std::shared_ptr<net::Connection>> HandshakeGate::Admit(uint64_t id,
                                                                   const std::shared_ptr<net::Connection>& connection,
                                                                   const std::string& source,
                                                                   const NodeOptions& options) {
  std::vector<std::shared_ptr<net::Connection>> evicted;
  std::lock_guard<std::mutex> lock(mu_);
  entries_.emplace(id, Entry{connection, source});
  size_t& from_source = ++per_source_[source];
  // The oldest from the same source first, then the oldest of all.
  for (auto it = entries_.begin(); from_source > options.max_unauthenticated_per_source && it != entries_.end();) {
    auto next = std::next(it);
    if (it->second.source == source) {
      if (std::shared_ptr<net::Connection> c = it->second.connection.lock()) evicted.push_back(std::move(c));
      EraseLocked(it);
    }
    it = next;
  }
  while (entries_.size() > options.max_unauthenticated) {
    if (std::shared_ptr<net::Connection> c = entries_.begin()->second.connection.lock()) evicted.push_back(std::move(c));
    EraseLocked(entries_.begin());
  }
  return evicted;
}

void HandshakeGate::Done(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) EraseLocked(it);
}

void HandshakeGate::EraseLocked(std::map<uint64_t, Entry>::iterator it) {
  auto count = per_source_.find(it->second.source);
  if (count != per_source_.end() && --count->second == 0) per_source_.erase(count);
  entries_.erase(it);
}

size_t HandshakeGate::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

// ---------------------------------------------------------------------------
// NodeState.

NodeState::NodeState(ActorSystem& system, NodeOptions options)
    : system_(system),
      options_(std::move(options)),
      incarnation_(NewIncarnation()),
      key_(net::ClusterKey(options_.cluster_secret)),
      refs_(*this) {
  reactor_ = std::make_unique<net::Reactor>(net::ReactorOptions{
      .threads = options_.io_threads > 0 ? options_.io_threads : 1,
      .name = system.name() + "-io",
      .logger = system.core().log().clone(system.name() + "-io"),
  });
  LoadTls();
}

void NodeState::LoadTls() {
  const bool tls = !options_.tls.empty();
  absl::StatusOr<net::OutFrame> refusal = net::BuildFrame([&](wire::Frame::Builder f) {
    f.setRefused(tls ? "this node requires TLS: a peer needs a certificate, its key and the cluster's CA "
                       "(NodeOptions::tls, or --tls_cert/--tls_key/--tls_ca)"
                     : "this node runs without TLS (shared-secret mode) and does not speak TLS");
    return absl::OkStatus();
  });
  if (refusal.ok()) mismatch_reply_.assign(reinterpret_cast<const char*>(refusal->payload()), refusal->payload_size());
  if (!tls) {
    if (options_.cluster_secret.empty()) {
      ready_ = absl::FailedPreconditionError(
          "NodeOptions::cluster_secret is empty: without TLS (NodeOptions::tls) every node needs the cluster's secret");
    }
    return;
  }
  absl::StatusOr<std::shared_ptr<net::TlsConfig>> config = net::TlsConfig::Create(options_.tls, options_.name);
  if (!config.ok()) {
    ready_ = absl::FailedPreconditionError(absl::StrCat("node ", options_.name, ": TLS: ", config.status().message()));
    log().error("{}", std::string(ready_.message()));
    return;
  }
  tls_ = *std::move(config);
  log().info("node {}: TLS with {}", options_.name, CurrentCertificate());
}

std::string NodeState::CurrentCertificate() const {
  const std::shared_ptr<const net::TlsContext> context = tls_->Current();
  return absl::StrCat("certificate ", context->subject(), " (valid until ",
                      absl::FormatTime(context->not_after(), absl::UTCTimeZone()), ")");
}

void NodeState::ScheduleTlsCheck() {
  if (tls_ == nullptr || options_.tls_reload_interval <= absl::ZeroDuration()) return;
  std::weak_ptr<NodeState> weak = weak_from_this();
  tls_timer_ = system_.core().timers().SchedulePeriodic(options_.tls_reload_interval, [weak]() {
    std::shared_ptr<NodeState> node = weak.lock();
    if (node == nullptr || node->closed()) return;
    absl::StatusOr<bool> reloaded = node->tls_->ReloadIfChanged();
    if (!reloaded.ok()) {
      node->log().error("node {}: TLS files changed but do not load; the credentials in use stay: {}", node->name(),
                        std::string(reloaded.status().message()));
    } else if (*reloaded) {
      node->log().info("node {}: TLS files changed: new connections use {}", node->name(),
                       node->CurrentCertificate());
    }
  });
}

absl::Status NodeState::ReloadTls() {
  if (tls_ == nullptr) return absl::FailedPreconditionError("node " + options_.name + " runs without TLS");
  if (absl::Status s = tls_->Reload(); !s.ok()) {
    log().error("node {}: TLS reload failed; the credentials in use stay: {}", options_.name, std::string(s.message()));
    return s;
  }
  log().info("node {}: TLS reloaded: new connections use {}", options_.name, CurrentCertificate());
  return absl::OkStatus();
}

NodeState::~NodeState() = default;

void NodeState::Start() {
  directory_.set_node(weak_from_this());
  agent_ = system_.Spawn<NodeAgent>(weak_from_this());
  ScheduleTlsCheck();
}

void NodeState::Shutdown() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  if (tls_timer_) system_.core().timers().Cancel(tls_timer_);
  // Leave: every linked peer hears it (ahead of what is queued), then the
  // connections close once what is queued is written.
  std::vector<std::shared_ptr<Peer>> peers = directory_.TakeAll();
  for (const std::shared_ptr<Peer>& peer : peers) {
    absl::StatusOr<net::OutFrame> leave = net::BuildFrame([&](wire::Frame::Builder f) {
      f.setLeave("the node shut down");
      return absl::OkStatus();
    });
    if (!leave.ok()) continue;
    if (std::shared_ptr<net::Connection> c = peer->Leave(*std::move(leave))) {
      c->Close(absl::CancelledError(absl::StrCat("node ", options_.name, " shut down")));
    }
  }
  reactor_->Shutdown();  // writes what is queued (up to a second), then every Link hears OnClosed
  const absl::Status shut = absl::UnavailableError(absl::StrCat("node ", options_.name, " shut down"));
  for (const std::shared_ptr<Peer>& peer : peers) peer->Close(shut);
  agent_.Stop();
  subscribers_.Clear();
  refs_.Clear();
  std::lock_guard<std::mutex> lock(mu_);
  published_.clear();
  spawnable_.clear();
}

std::string NodeState::listen_address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listen_address_;
}

net::ConnectionOptions NodeState::connection_options() const {
  net::ConnectionOptions o;
  // Raised to max_frame_bytes once the handshake is done (Link).
  o.max_frame_bytes = net::kHandshakeFrameBytes;
  o.max_outbound_bytes = options_.max_outbound_bytes;
  o.max_control_bytes = options_.max_outbound_bytes;
  o.frame_timeout = options_.frame_timeout;
  o.idle_timeout = options_.heartbeat_timeout;
  o.connect_timeout = options_.connect_timeout;
  o.tls = tls_;
  o.tls_handshake_timeout = options_.handshake_timeout;
  o.refuse_tls_peers = true;  // a first frame is at most kHandshakeFrameBytes: no length looks like TLS
  o.mode_mismatch_reply = mismatch_reply_;
  return o;
}

capnp::ReaderOptions NodeState::reader_options(size_t payload_bytes) const {
  capnp::ReaderOptions o;
  // Every word may be read once; the allowance beyond it is for lists of
  // empty structs, which Cap'n Proto counts at one word each.
  o.traversalLimitInWords = payload_bytes / sizeof(capnp::word) * 2 + 64;
  o.nestingLimit = options_.nesting_limit;
  return o;
}

absl::StatusOr<std::string> NodeState::Listen(std::string_view address) {
  if (closed()) return absl::FailedPreconditionError("the node has shut down");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!listen_address_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("node ", options_.name, " already listens on ", listen_address_));
    }
  }
  std::weak_ptr<NodeState> weak = weak_from_this();
  absl::StatusOr<std::string> bound =
      reactor_->Listen(address, connection_options(), [weak](net::Connection& c) -> std::shared_ptr<net::ConnectionHandler> {
        std::shared_ptr<NodeState> node = weak.lock();
        if (node == nullptr) return nullptr;
        return node->AcceptLink(c);
      });
  if (!bound.ok()) return bound;
  std::lock_guard<std::mutex> lock(mu_);
  listen_address_ = options_.advertise_address.empty() ? *bound : options_.advertise_address;
  return bound;
}

absl::Status NodeState::Publish(std::string_view name, const ActorRef& ref) {
  if (!ref) return absl::InvalidArgumentError("Publish of an empty Ref");
  if (ref.is_remote()) return absl::InvalidArgumentError("only a local actor can be published");
  std::lock_guard<std::mutex> lock(mu_);
  published_[std::string(name)] = ref;
  return absl::OkStatus();
}

void NodeState::Unpublish(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  published_.erase(std::string(name));
}

void NodeState::Lookup(std::string_view address, std::string_view name, std::string_view actor_type,
                       absl::Duration timeout, RefCallback done) {
  const uint64_t id = NextRequestId();
  (void)SubmitFrame(
      *directory_.ForAddress(address),
      [&](wire::Frame::Builder f) {
        wire::Lookup::Builder lookup = f.initLookup();
        lookup.setRequestId(id);
        lookup.setName(std::string(name));
        lookup.setActorType(std::string(actor_type));
        return absl::OkStatus();
      },
      Submission::Request(0, id, std::make_unique<RefReply>(shared_from_this(), std::string(actor_type), std::move(done)),
                          timeout));
}

void NodeState::SpawnOn(std::string_view address, std::string_view actor_type, uint64_t args_type, EncodeFn encode,
                        const void* args, absl::Duration timeout, RefCallback done) {
  const uint64_t id = NextRequestId();
  (void)SubmitFrame(
      *directory_.ForAddress(address),
      [&](wire::Frame::Builder f) {
        wire::Spawn::Builder spawn = f.initSpawn();
        spawn.setRequestId(id);
        spawn.setActorType(std::string(actor_type));
        spawn.setArgsTypeId(args_type);
        if (encode == nullptr) return absl::OkStatus();
        WireWriter writer(spawn.initArgs(), &refs_);
        encode(args, writer);
        return writer.status();
      },
      Submission::Request(0, id, std::make_unique<RefReply>(shared_from_this(), std::string(actor_type), std::move(done)),
                          timeout));
}

void NodeState::RegisterSpawn(std::string_view actor_type, uint64_t args_type, SpawnFactory factory) {
  std::lock_guard<std::mutex> lock(mu_);
  spawnable_[std::string(actor_type)] = Spawnable{args_type, std::make_shared<SpawnFactory>(std::move(factory))};
}

absl::Status NodeState::SendTo(Peer& peer, uint64_t incarnation, uint64_t actor, RemoteSend& send) {
  const uint64_t request_id = send.reply != nullptr ? NextRequestId() : 0;
  return SubmitFrame(
      peer,
      [&](wire::Frame::Builder f) -> absl::Status {
        wire::Envelope::Builder envelope = f.initSend();
        envelope.setTarget(actor);
        envelope.setTargetIncarnation(incarnation);
        envelope.setRequestId(request_id);
        envelope.setTypeId(send.type_id);
        WireWriter writer(envelope.initPayload(), &refs_);
        send.encode(send.value, writer);
        if (writer.status().ok()) return absl::OkStatus();
        return absl::InvalidArgumentError(
            absl::StrCat("message ", std::string(send.type_name), " does not encode: ", writer.status().message()));
      },
      Submission::Request(incarnation, request_id, std::move(send.reply), send.timeout, send.type_name));
}

void NodeState::RefusedAtSender(std::string_view peer_node, const absl::Status& error) {
  rejected_sends.fetch_add(1, std::memory_order_relaxed);
  if (refusals_.ShouldLog(absl::StrCat("at the sender|", error.message()), system_.Now())) {
    log().error("node {}: a message for node {} was not sent (logged once for this kind): {}", options_.name,
                std::string(peer_node), std::string(error.message()));
  }
}

void NodeState::StopRemote(Peer& peer, uint64_t incarnation, uint64_t actor, const absl::Status& reason) {
  (void)SubmitFrame(
      peer,
      [&](wire::Frame::Builder f) {
        wire::Stop::Builder stop = f.initStop();
        stop.setTarget(actor);
        stop.setTargetIncarnation(incarnation);
        WriteStatus(stop, reason);
        return absl::OkStatus();
      },
      Submission::Reserved(incarnation));
}

void NodeState::SendDown(Peer& peer, uint64_t actor, const absl::Status& reason) {
  (void)SubmitFrame(
      peer,
      [&](wire::Frame::Builder f) {
        wire::Down::Builder down = f.initDown();
        down.setActor(actor);
        WriteStatus(down, reason);
        return absl::OkStatus();
      },
      Submission::Reserved());
}

void NodeState::SendLink(Peer& peer, uint64_t incarnation, uint64_t actor, const ActorRef& from, bool link) {
  absl::Status sent = SubmitFrame(
      peer,
      [&](wire::Frame::Builder f) {
        wire::Link::Builder l = link ? f.initLink() : f.initUnlink();
        l.setActor(actor);
        l.setIncarnation(incarnation);
        absl::Status encoded = refs_.Encode(from, l.initFrom());
        // The far side links a proxy of `from` and watches it, but `from`
        // may stop before that watch arrives: its down goes to the peer
        // from the start, with its exit reason.
        if (encoded.ok() && link && !from.is_remote()) (void)refs_.AddWatcher(from.id(), peer.canonical());
        return encoded;
      },
      Submission::Reserved(incarnation));
  // Unsent, a link's exit still comes: the watch of the target fails too.
  if (!sent.ok()) log().debug("node {}: a {} frame was not sent: {}", options_.name, link ? "link" : "unlink", sent.ToString());
}

void NodeState::WatchExport(const ActorRef& ref) { Ref<NodeAgent>::UncheckedCast(agent_).Tell(ExportedActor{ref}); }

void NodeState::ActorGone(ActorId id, const absl::Status& reason) {
  std::vector<std::shared_ptr<Peer>> watchers = refs_.Stopping(id, reason);
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::erase_if(published_, [id](const auto& entry) { return entry.second.id() == id; });
  }
  for (const std::shared_ptr<Peer>& peer : watchers) SendDown(*peer, id, reason);
  // A watch frame that arrives from now on follows these downs to its peer.
  refs_.Forget(id);
}

Future<void> NodeState::WaitForRoom(const ActorRef& target) {
  Promise<void> promise;
  Future<void> future = promise.GetFuture();
  if (!target.is_remote()) {
    promise.SetValue();
    return future;
  }
  std::shared_ptr<Peer> peer = static_cast<RemoteActor*>(target.cell())->peer()->canonical();
  std::shared_ptr<net::Connection> connection = peer->connection();
  if (connection == nullptr) {
    promise.SetError(absl::UnavailableError(absl::StrCat("node ", peer->name(), " is not connected")));
    return future;
  }
  // Runs on drain or on close: only the first is room.
  std::weak_ptr<net::Connection> weak = connection;
  connection->WhenQueuedAtMost(options_.max_outbound_bytes / 2, [promise = std::move(promise), peer,
                                                                 weak]() mutable {
    std::shared_ptr<net::Connection> link = weak.lock();
    if (link != nullptr && peer->connection() == link) {
      promise.SetValue();
    } else {
      promise.SetError(absl::UnavailableError(absl::StrCat("the connection to node ", peer->name(), " was lost")));
    }
  });
  return future;
}

NodeStats NodeState::stats() const {
  NodeStats s;
  s.connections = connections.load(std::memory_order_relaxed);
  s.peers = directory_.size();
  s.handshakes_failed = handshakes_failed.load(std::memory_order_relaxed);
  s.unauthenticated_closed = unauthenticated_closed.load(std::memory_order_relaxed);
  s.bad_frames = bad_frames.load(std::memory_order_relaxed);
  s.unknown_targets = unknown_targets.load(std::memory_order_relaxed);
  s.unknown_types = unknown_types.load(std::memory_order_relaxed);
  s.undecodable = undecodable.load(std::memory_order_relaxed);
  s.stale_incarnation = stale_incarnation.load(std::memory_order_relaxed);
  s.rejected_sends = rejected_sends.load(std::memory_order_relaxed);
  s.reconnects = reconnects.load(std::memory_order_relaxed);
  s.messages_in = messages_in.load(std::memory_order_relaxed);
  s.messages_out = messages_out.load(std::memory_order_relaxed);
  const net::ReactorStats reactor = reactor_->stats();
  s.tls_refused = reactor.tls_refused + tls_name_refused.load(std::memory_order_relaxed);
  s.tls_errors = reactor.tls_errors;
  return s;
}

}  // namespace internal

Node::Node(ActorSystem& system, NodeOptions options) : system_(system) {
  if (options.name.empty()) options.name = internal::DefaultName();
  state_ = std::make_shared<internal::NodeState>(system, std::move(options));
  state_->Start();
}

Node::~Node() { Shutdown(); }

absl::StatusOr<std::string> Node::Listen(std::string_view address) {
  if (!state_->ready().ok()) return state_->ready();
  return state_->Listen(address);
}

absl::Status Node::ReloadTls() { return state_->ReloadTls(); }
absl::Status Node::ready() const { return state_->ready(); }

absl::Status Node::Publish(std::string_view name, const ActorRef& ref) { return state_->Publish(name, ref); }
absl::Status Node::PublishRegistered(std::string_view name) {
  absl::StatusOr<ActorRef> ref = state_->system().registry().LookupRef(name);
  if (!ref.ok()) return ref.status();
  return state_->Publish(name, *ref);
}
void Node::Unpublish(std::string_view name) { state_->Unpublish(name); }
void Node::Shutdown() { state_->Shutdown(); }
Future<void> Node::WaitForRoom(const ActorRef& target) { return state_->WaitForRoom(target); }
const std::string& Node::name() const { return state_->name(); }
uint64_t Node::incarnation() const { return state_->incarnation(); }
std::string Node::address() const { return state_->listen_address(); }
NodeStats Node::stats() const { return state_->stats(); }

void Node::LookupRef(std::string_view address, std::string_view name, std::string_view actor_type,
                     absl::Duration timeout, internal::RefCallback done) {
  if (!state_->ready().ok()) {
    std::move(done)(state_->ready());
    return;
  }
  state_->Lookup(address, name, actor_type, timeout, std::move(done));
}

void Node::SpawnRef(std::string_view address, std::string_view actor_type, uint64_t args_type,
                    internal::EncodeFn encode, const void* args, absl::Duration timeout, internal::RefCallback done) {
  if (!state_->ready().ok()) {
    std::move(done)(state_->ready());
    return;
  }
  state_->SpawnOn(address, actor_type, args_type, encode, args, timeout, std::move(done));
}

void Node::RegisterSpawn(std::string_view actor_type, uint64_t args_type, internal::SpawnFactory factory) {
  state_->RegisterSpawn(actor_type, args_type, std::move(factory));
}

void Node::AddSubscriber(const ActorRef& subscriber, NodeEvents events) {
  state_->AddSubscriber(subscriber, std::move(events));
}

absl::StatusOr<std::string> Node::EncodeNested(uint64_t type_id, internal::EncodeFn encode, const void* value) {
  if (encode == nullptr) return std::string();  // a void reply: nothing to encode
  capnp::MallocMessageBuilder message;
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    WireWriter writer(message.initRoot<capnp::AnyPointer>(), &state_->refs());
    encode(value, writer);
    status = writer.status();
  });
  KJ_IF_MAYBE(e, error) { status = absl::InternalError(e->getDescription().cStr()); }
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a message of type id ", type_id, " does not encode: ", status.message()));
  }
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

absl::Status Node::DecodeNestedWith(std::string_view bytes, absl::FunctionRef<absl::Status(WireReader&)> decode) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a nested message of ", bytes.size(),
                                                   " bytes is not a Cap'n Proto message (a whole number of words)"));
  }
  // Copied: the bytes sit inside another message, not necessarily aligned.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader message(words);
    WireReader reader(message.getRoot<capnp::AnyPointer>(), &state_->refs());
    status = decode(reader);
  });
  KJ_IF_MAYBE(e, error) {
    status = absl::InvalidArgumentError(absl::StrCat("malformed nested message: ", e->getDescription().cStr()));
  }
  return status;
}

absl::Status Node::DeliverNested(const ActorRef& target, uint64_t type_id, std::string_view bytes,
                                 std::unique_ptr<internal::ReplyRoute> route) {
  if (!target || target.cell()->is_remote()) {
    return absl::InvalidArgumentError("DeliverNested needs a local actor");
  }
  return DecodeNestedWith(bytes, [&](WireReader& reader) {
    return target.cell()->DeliverRemote(type_id, reader, std::move(route));
  });
}

}  // namespace troupe
