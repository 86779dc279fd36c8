#include "net/node.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
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

  void On(const ExportedActor& e) { Monitor(e.ref); }
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

uint64_t NewIncarnation() {
  std::string bytes = net::NewChallenge();
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v == 0 ? 1 : v;
}

// Into a Reply, Stop or Down frame: each carries a status as code and message.
template <class Builder>
void WriteStatus(Builder frame, const absl::Status& status) {
  frame.setCode(static_cast<uint32_t>(status.code()));
  frame.setMessage(std::string(status.message()));
}

// Sends the reply of an ask that came from another node back to it.
class ConnectionReplyRoute final : public ReplyRoute {
 public:
  ConnectionReplyRoute(std::shared_ptr<NodeState> node, std::weak_ptr<net::Connection> connection, uint64_t request_id)
      : node_(std::move(node)), connection_(std::move(connection)), request_id_(request_id) {}

  void Send(uint64_t type_id, EncodeFn encode, const void* value) noexcept override {
    Finish(absl::OkStatus(), type_id, encode, value);
  }
  void Fail(const absl::Status& status) noexcept override { Finish(status, 0, nullptr, nullptr); }

 private:
  void Finish(const absl::Status& status, uint64_t type_id, EncodeFn encode, const void* value) {
    std::shared_ptr<net::Connection> connection = connection_.lock();
    if (connection == nullptr) return;  // the asker is gone with its connection
    absl::StatusOr<net::OutFrame> frame = node_->BuildReply(request_id_, status, type_id, encode, value);
    if (!frame.ok()) {
      // The reply does not encode: the asker gets the reason instead.
      frame = node_->BuildReply(request_id_, frame.status(), 0, nullptr, nullptr);
    }
    if (frame.ok()) {
      if (!connection->Send(*std::move(frame)).ok()) node_->rejected_sends.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const std::shared_ptr<NodeState> node_;
  const std::weak_ptr<net::Connection> connection_;
  const uint64_t request_id_;
};

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
      ref = node_->Decode(payload->payload().getAs<wire::ActorAddress>(), actor_type_);
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

NodeState::NodeState(ActorSystem& system, NodeOptions options)
    : system_(system), options_(std::move(options)), incarnation_(NewIncarnation()) {
  reactor_ = std::make_unique<net::Reactor>(net::ReactorOptions{
      .threads = options_.io_threads > 0 ? options_.io_threads : 1,
      .name = system.name() + "-io",
      .logger = system.core().log().clone(system.name() + "-io"),
  });
}

NodeState::~NodeState() = default;

void NodeState::Start() { agent_ = system_.Spawn<NodeAgent>(weak_from_this()); }

void NodeState::Shutdown() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  reactor_->Shutdown();  // every Link hears OnClosed: pending asks fail
  agent_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  published_.clear();
  subscribers_.clear();
  peers_by_address_.clear();
  peers_by_name_.clear();
  spawnable_.clear();
  std::lock_guard<std::mutex> exports_lock(exports_mu_);
  exports_.clear();
}

std::string NodeState::listen_address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listen_address_;
}

net::ConnectionOptions NodeState::connection_options() const {
  net::ConnectionOptions o;
  o.max_frame_bytes = options_.max_frame_bytes;
  o.max_outbound_bytes = options_.max_outbound_bytes;
  o.frame_timeout = options_.frame_timeout;
  o.idle_timeout = options_.heartbeat_timeout;
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

std::shared_ptr<Peer> NodeState::PeerForAddress(std::string_view address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& peer = peers_by_address_[std::string(address)];
  if (peer == nullptr) peer = std::make_shared<Peer>(weak_from_this(), std::string(address));
  return peer;
}

std::shared_ptr<Peer> NodeState::BindInbound(std::string_view name, uint64_t incarnation,
                                             std::string_view listen_address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& by_name = peers_by_name_[std::string(name)];
  if (by_name != nullptr && by_name->incarnation() != 0 && by_name->incarnation() != incarnation) {
    by_name = nullptr;  // the node restarted: a new peer for the new incarnation
  }
  if (by_name == nullptr && !listen_address.empty()) {
    // The node listens: share the peer we would dial, so both directions
    // use this connection.
    std::shared_ptr<Peer>& by_address = peers_by_address_[std::string(listen_address)];
    if (by_address == nullptr || (by_address->incarnation() != 0 && by_address->incarnation() != incarnation)) {
      by_address = std::make_shared<Peer>(weak_from_this(), std::string(listen_address));
    }
    by_name = by_address;
  }
  if (by_name == nullptr) by_name = std::make_shared<Peer>(weak_from_this(), "");
  return by_name;
}

void NodeState::BindOutbound(std::string_view name, uint64_t incarnation, const std::shared_ptr<Peer>& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Peer>& by_name = peers_by_name_[std::string(name)];
  if (by_name == nullptr || by_name == peer || (by_name->incarnation() != 0 && by_name->incarnation() != incarnation)) {
    by_name = peer;
  }
}

void NodeState::Lookup(std::string_view address, std::string_view name, std::string_view actor_type,
                       absl::Duration timeout, RefCallback done) {
  std::shared_ptr<Peer> peer = PeerForAddress(address);
  const uint64_t id = NextRequestId();
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Lookup::Builder lookup = f.initLookup();
    lookup.setRequestId(id);
    lookup.setName(std::string(name));
    lookup.setActorType(std::string(actor_type));
    return absl::OkStatus();
  });
  SubmitRefRequest(*peer, std::move(frame), id, actor_type, timeout, std::move(done));
}

void NodeState::SpawnOn(std::string_view address, std::string_view actor_type, uint64_t args_type, EncodeFn encode,
                        const void* args, absl::Duration timeout, RefCallback done) {
  std::shared_ptr<Peer> peer = PeerForAddress(address);
  const uint64_t id = NextRequestId();
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Spawn::Builder spawn = f.initSpawn();
    spawn.setRequestId(id);
    spawn.setActorType(std::string(actor_type));
    spawn.setArgsTypeId(args_type);
    if (encode != nullptr) {
      WireWriter writer(spawn.initArgs(), this);
      encode(args, writer);
      return writer.status();
    }
    return absl::OkStatus();
  });
  SubmitRefRequest(*peer, std::move(frame), id, actor_type, timeout, std::move(done));
}

void NodeState::SubmitRefRequest(Peer& peer, absl::StatusOr<net::OutFrame> frame, uint64_t request_id,
                                 std::string_view actor_type, absl::Duration timeout, RefCallback done) {
  auto reply = std::make_unique<RefReply>(shared_from_this(), std::string(actor_type), std::move(done));
  if (!frame.ok()) {
    reply->Complete(nullptr, frame.status());
    return;
  }
  (void)peer.Submit(*this, *std::move(frame), 0, request_id, std::move(reply), timeout);
}

void NodeState::SendDown(Peer& peer, uint64_t actor, const absl::Status& reason) {
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Down::Builder down = f.initDown();
    down.setActor(actor);
    WriteStatus(down, reason);
    return absl::OkStatus();
  });
  if (frame.ok()) (void)peer.Submit(*this, *std::move(frame), 0, 0, nullptr, absl::InfiniteDuration());
}

void NodeState::RegisterSpawn(std::string_view actor_type, uint64_t args_type, SpawnFactory factory) {
  std::lock_guard<std::mutex> lock(mu_);
  spawnable_[std::string(actor_type)] = Spawnable{args_type, std::make_shared<SpawnFactory>(std::move(factory))};
}

void NodeState::AddSubscriber(ActorRef subscriber, absl::AnyInvocable<void(const NodeUp&)> up,
                              absl::AnyInvocable<void(const NodeDown&)> down) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.push_back(Subscriber{std::move(subscriber), std::move(up), std::move(down)});
}

void NodeState::PeerUp(const NodeUp& up) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Subscriber& s : subscribers_) s.up(up);  // Tells: they only queue
}

void NodeState::PeerDown(const NodeDown& down) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Subscriber& s : subscribers_) s.down(NodeDown{down.node, down.address, Unshared(down.reason)});
}

absl::Status NodeState::SendTo(Peer& peer, uint64_t incarnation, uint64_t actor, RemoteSend& send) {
  const uint64_t request_id = send.reply != nullptr ? NextRequestId() : 0;
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Envelope::Builder envelope = f.initSend();
    envelope.setTarget(actor);
    envelope.setRequestId(request_id);
    envelope.setTypeId(send.type_id);
    WireWriter writer(envelope.initPayload(), this);
    send.encode(send.value, writer);
    return writer.status();
  });
  if (!frame.ok()) {
    absl::Status status = absl::InvalidArgumentError(
        absl::StrCat("message ", std::string(send.type_name), " does not encode: ", frame.status().message()));
    rejected_sends.fetch_add(1, std::memory_order_relaxed);
    if (send.reply != nullptr) send.reply->Complete(nullptr, Unshared(status));
    return status;
  }
  return peer.Submit(*this, *std::move(frame), incarnation, request_id, std::move(send.reply), send.timeout);
}

void NodeState::StopRemote(Peer& peer, uint64_t actor, const absl::Status& reason) {
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Stop::Builder stop = f.initStop();
    stop.setTarget(actor);
    WriteStatus(stop, reason);
    return absl::OkStatus();
  });
  if (frame.ok()) (void)peer.Submit(*this, *std::move(frame), 0, 0, nullptr, absl::InfiniteDuration());
}

void NodeState::WatchRemote(Peer& peer, uint64_t actor, ActorCell* watcher, DownFactory make_down, ActorCell* proxy) {
  peer.Watch(actor, watcher, make_down, proxy);
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    f.setWatch(actor);
    return absl::OkStatus();
  });
  if (frame.ok()) (void)peer.Submit(*this, *std::move(frame), 0, 0, nullptr, absl::InfiniteDuration());
}

absl::Status NodeState::Encode(const ActorRef& ref, wire::ActorAddress::Builder out) {
  if (ref.is_remote()) {
    auto* proxy = static_cast<RemoteActor*>(ref.cell());
    out.setNode(proxy->node_name());
    out.setIncarnation(proxy->remote_incarnation());
    out.setActor(proxy->remote_id());
    out.setAddress(proxy->peer()->address());
    return absl::OkStatus();
  }
  if (&ref.cell()->core() != &system_.core()) {
    return absl::InvalidArgumentError("a Ref of another ActorSystem cannot travel through this node");
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(exports_mu_);
    auto [it, inserted] = exports_.try_emplace(ref.id());
    if (inserted) {
      it->second.ref = ref;
      first = true;
    }
  }
  if (first) Ref<NodeAgent>::UncheckedCast(agent_).Tell(ExportedActor{ref});
  out.setNode(options_.name);
  out.setIncarnation(incarnation_);
  out.setActor(ref.id());
  out.setAddress(listen_address());
  return absl::OkStatus();
}

absl::StatusOr<ActorRef> NodeState::Decode(wire::ActorAddress::Reader in, std::string_view actor_type) {
  const std::string node = in.getNode().cStr();
  const uint64_t incarnation = in.getIncarnation();
  const uint64_t actor = in.getActor();
  if (node == options_.name) {
    if (incarnation != incarnation_) {
      return absl::NotFoundError(absl::StrCat("actor ", actor, " belonged to an earlier start of this node"));
    }
    ActorRef ref = FindExport(actor);
    if (!ref) return absl::NotFoundError(absl::StrCat("actor ", actor, " of this node has stopped"));
    if (!actor_type.empty() && ref.cell()->type_name() != actor_type) {
      return absl::FailedPreconditionError(absl::StrCat("actor ", actor, " is a ", std::string(ref.cell()->type_name()),
                                                        ", not a ", std::string(actor_type)));
    }
    return ref;
  }
  std::shared_ptr<Peer> peer;
  const std::string address = in.getAddress().cStr();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = peers_by_name_.find(node); it != peers_by_name_.end()) peer = it->second;
  }
  if (peer == nullptr) {
    if (address.empty()) {
      return absl::UnavailableError(absl::StrCat("node ", node, " does not listen and is not connected"));
    }
    peer = PeerForAddress(address);
  }
  return ProxyFor(peer, node, incarnation, actor);
}

ActorRef NodeState::FindExport(ActorId id) {
  std::lock_guard<std::mutex> lock(exports_mu_);
  auto it = exports_.find(id);
  return it != exports_.end() ? it->second.ref : ActorRef();
}

ActorRef NodeState::ProxyFor(const std::shared_ptr<Peer>& peer, std::string_view node, uint64_t incarnation,
                             uint64_t actor) {
  std::lock_guard<std::mutex> lock(proxies_mu_);
  auto key = std::make_tuple(std::string(node), incarnation, actor);
  RemoteActor*& slot = proxies_[key];
  if (slot != nullptr && slot->TryRetain()) return ActorRef::Adopt(slot);
  slot = new RemoteActor(shared_from_this(), peer, std::string(node), incarnation, actor);
  return ActorRef::Adopt(slot);
}

void NodeState::ForgetProxy(const RemoteActor* proxy) {
  std::lock_guard<std::mutex> lock(proxies_mu_);
  auto it = proxies_.find(std::make_tuple(proxy->node_name(), proxy->remote_incarnation(), proxy->remote_id()));
  if (it != proxies_.end() && it->second == proxy) proxies_.erase(it);
}

void NodeState::ActorGone(ActorId id, const absl::Status& reason) {
  std::vector<std::weak_ptr<Peer>> watchers;
  {
    std::lock_guard<std::mutex> lock(exports_mu_);
    auto it = exports_.find(id);
    if (it == exports_.end()) return;
    watchers = std::move(it->second.watchers);
    exports_.erase(it);
    exports_generation_.fetch_add(1, std::memory_order_release);  // pairs with HandleSend's acquire
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::erase_if(published_, [id](const auto& entry) { return entry.second.id() == id; });
  }
  for (const std::weak_ptr<Peer>& weak : watchers) {
    if (std::shared_ptr<Peer> peer = weak.lock()) SendDown(*peer, id, reason);
  }
}

void NodeState::WatchLocal(std::shared_ptr<Peer> peer, uint64_t actor) {
  {
    std::lock_guard<std::mutex> lock(exports_mu_);
    auto it = exports_.find(actor);
    if (it != exports_.end()) {
      it->second.watchers.push_back(peer);
      return;
    }
  }
  // Not (any more) here: it has stopped as far as the peer can know.
  SendDown(*peer, actor, absl::NotFoundError(absl::StrCat("actor ", actor, " is not on node ", options_.name)));
}

absl::StatusOr<net::OutFrame> NodeState::BuildReply(uint64_t request_id, const absl::Status& status, uint64_t type_id,
                                                    EncodeFn encode, const void* value) {
  return net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Reply::Builder reply = f.initReply();
    reply.setRequestId(request_id);
    WriteStatus(reply, status);
    reply.setTypeId(type_id);
    if (status.ok() && encode != nullptr) {
      WireWriter writer(reply.initPayload(), this);
      encode(value, writer);
      return writer.status();
    }
    return absl::OkStatus();
  });
}

void NodeState::ReplyTo(net::Connection& connection, uint64_t request_id, const absl::Status& status,
                        uint64_t type_id, EncodeFn encode, const void* value) {
  absl::StatusOr<net::OutFrame> frame = BuildReply(request_id, status, type_id, encode, value);
  if (!frame.ok()) frame = BuildReply(request_id, frame.status(), 0, nullptr, nullptr);
  if (frame.ok() && !connection.Send(*std::move(frame)).ok()) rejected_sends.fetch_add(1, std::memory_order_relaxed);
}

absl::Status NodeState::HandleFrame(Peer& peer, net::Connection& connection, wire::Frame::Reader frame,
                                    ExportCache& cache) {
  switch (frame.which()) {
    case wire::Frame::SEND:
      messages_in.fetch_add(1, std::memory_order_relaxed);
      return HandleSend(peer, connection, frame.getSend(), cache);
    case wire::Frame::REPLY: {
      wire::Reply::Reader reply = frame.getReply();
      absl::Status status = StatusFromWire(reply.getCode(), reply.getMessage().cStr());
      if (status.ok()) {
        WireReader reader(reply.getPayload(), this);
        peer.Complete(reply.getRequestId(), &reader, absl::OkStatus());
      } else {
        peer.Complete(reply.getRequestId(), nullptr, std::move(status));
      }
      return absl::OkStatus();
    }
    case wire::Frame::HEARTBEAT:
      return absl::OkStatus();
    case wire::Frame::LOOKUP:
      HandleLookup(connection, frame.getLookup());
      return absl::OkStatus();
    case wire::Frame::SPAWN:
      HandleSpawn(connection, frame.getSpawn());
      return absl::OkStatus();
    case wire::Frame::STOP: {
      wire::Stop::Reader stop = frame.getStop();
      if (ActorRef ref = FindExport(stop.getTarget())) {
        ref.Stop(StatusFromWire(stop.getCode(), stop.getMessage().cStr()));
      } else {
        unknown_targets.fetch_add(1, std::memory_order_relaxed);
      }
      return absl::OkStatus();
    }
    case wire::Frame::WATCH:
      WatchLocal(peer.shared_from_this(), frame.getWatch());
      return absl::OkStatus();
    case wire::Frame::DOWN: {
      wire::Down::Reader down = frame.getDown();
      peer.DeliverDown(down.getActor(), StatusFromWire(down.getCode(), down.getMessage().cStr()));
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown frame kind ", static_cast<int>(frame.which())));
  }
}

absl::Status NodeState::HandleSend(Peer& peer, net::Connection& connection, wire::Envelope::Reader envelope,
                                   ExportCache& cache) {
  const uint64_t request_id = envelope.getRequestId();
  const ActorId id = envelope.getTarget();
  const uint64_t generation = exports_generation_.load(std::memory_order_acquire);  // pairs with ActorGone
  if (cache.id != id || cache.generation != generation || !cache.ref) {
    cache.ref = FindExport(id);
    cache.id = id;
    cache.generation = generation;
  }
  const ActorRef& target = cache.ref;
  if (!target) {
    unknown_targets.fetch_add(1, std::memory_order_relaxed);
    log().warn("node {}: message from {} for actor {}, which is not (any more) here: dropped", options_.name,
               peer.name(), envelope.getTarget());
    if (request_id != 0) {
      ReplyTo(connection, request_id,
              absl::NotFoundError(absl::StrCat("actor ", envelope.getTarget(), " is not on node ", options_.name)), 0,
              nullptr, nullptr);
    }
    return absl::OkStatus();
  }
  std::unique_ptr<ReplyRoute> route;
  if (request_id != 0) {
    route = std::make_unique<ConnectionReplyRoute>(shared_from_this(), connection.shared_from_this(), request_id);
  }
  WireReader reader(envelope.getPayload(), this);
  absl::Status status = target.cell()->DeliverRemote(envelope.getTypeId(), reader, std::move(route));
  if (status.ok()) return absl::OkStatus();
  if (absl::IsResourceExhausted(status)) {
    // A full bounded mailbox: the ask's route was dropped unanswered.
    if (request_id != 0) ReplyTo(connection, request_id, status, 0, nullptr, nullptr);
    return absl::OkStatus();
  }
  if (absl::IsNotFound(status)) unknown_types.fetch_add(1, std::memory_order_relaxed);
  return status;  // the Link closes the connection
}

void NodeState::HandleLookup(net::Connection& connection, wire::Lookup::Reader lookup) {
  const std::string name = lookup.getName().cStr();
  const std::string type = lookup.getActorType().cStr();
  ActorRef ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = published_.find(name); it != published_.end()) ref = it->second;
  }
  absl::Status status;
  if (!ref) {
    status = absl::NotFoundError(absl::StrCat("no actor is published as '", name, "' on node ", options_.name));
  } else if (!type.empty() && ref.cell()->type_name() != type) {
    status = absl::FailedPreconditionError(absl::StrCat("the actor published as '", name, "' is a ",
                                                        std::string(ref.cell()->type_name()), ", not a ", type));
  }
  ReplyWithRef(connection, lookup.getRequestId(), status, ref);
}

void NodeState::HandleSpawn(net::Connection& connection, wire::Spawn::Reader spawn) {
  const std::string type = spawn.getActorType().cStr();
  std::shared_ptr<SpawnFactory> factory;
  uint64_t args_type = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = spawnable_.find(type); it != spawnable_.end()) {
      factory = it->second.factory;
      args_type = it->second.args_type;
    }
  }
  absl::StatusOr<ActorRef> ref;
  if (factory == nullptr) {
    ref = absl::NotFoundError(absl::StrCat("node ", options_.name, " does not allow spawning ", type));
  } else if (spawn.getArgsTypeId() != args_type) {
    ref = absl::InvalidArgumentError(absl::StrCat("spawning ", type, " on node ", options_.name,
                                                  " takes arguments of type id ", args_type, ", not ",
                                                  spawn.getArgsTypeId()));
  } else {
    WireReader reader(spawn.getArgs(), this);
    ref = (*factory)(args_type != 0 ? &reader : nullptr);
  }
  ReplyWithRef(connection, spawn.getRequestId(), ref.status(), ref.ok() ? *ref : ActorRef());
}

void NodeState::ReplyWithRef(net::Connection& connection, uint64_t request_id, const absl::Status& status,
                             const ActorRef& ref) {
  absl::StatusOr<net::OutFrame> frame = net::BuildFrame([&](wire::Frame::Builder f) {
    wire::Reply::Builder reply = f.initReply();
    reply.setRequestId(request_id);
    WriteStatus(reply, status);
    if (status.ok()) return Encode(ref, reply.initPayload().initAs<wire::ActorAddress>());
    return absl::OkStatus();
  });
  if (frame.ok() && !connection.Send(*std::move(frame)).ok()) rejected_sends.fetch_add(1, std::memory_order_relaxed);
}

NodeStats NodeState::stats() const {
  NodeStats s;
  s.connections = connections.load(std::memory_order_relaxed);
  s.handshakes_failed = handshakes_failed.load(std::memory_order_relaxed);
  s.bad_frames = bad_frames.load(std::memory_order_relaxed);
  s.unknown_targets = unknown_targets.load(std::memory_order_relaxed);
  s.unknown_types = unknown_types.load(std::memory_order_relaxed);
  s.rejected_sends = rejected_sends.load(std::memory_order_relaxed);
  s.messages_in = messages_in.load(std::memory_order_relaxed);
  s.messages_out = messages_out.load(std::memory_order_relaxed);
  return s;
}

RemoteActor::RemoteActor(std::shared_ptr<NodeState> node, std::shared_ptr<Peer> peer, std::string node_name,
                         uint64_t incarnation, uint64_t actor)
    : RemoteCell(&node->system().core()),
      node_(std::move(node)),
      peer_(std::move(peer)),
      node_name_(std::move(node_name)),
      incarnation_(incarnation),
      actor_(actor) {}

RemoteActor::~RemoteActor() { node_->ForgetProxy(this); }

absl::Status RemoteActor::SendRemote(RemoteSend& send) noexcept {
  return node_->SendTo(*peer_, incarnation_, actor_, send);
}

void RemoteActor::StopRemote(absl::Status reason) noexcept { node_->StopRemote(*peer_, actor_, reason); }

void RemoteActor::WatchRemote(ActorCell* watcher, DownFactory make_down) noexcept {
  node_->WatchRemote(*peer_, actor_, watcher, make_down, this);
}

}  // namespace internal

Node::Node(ActorSystem& system, NodeOptions options) : system_(system) {
  if (options.name.empty()) options.name = internal::DefaultName();
  state_ = std::make_shared<internal::NodeState>(system, std::move(options));
  state_->Start();
}

Node::~Node() { Shutdown(); }

absl::StatusOr<std::string> Node::Listen(std::string_view address) {
  if (state_->options().cluster_secret.empty()) {
    return absl::FailedPreconditionError("NodeOptions::cluster_secret is empty: every node needs the cluster's secret");
  }
  return state_->Listen(address);
}

absl::Status Node::Publish(std::string_view name, const ActorRef& ref) { return state_->Publish(name, ref); }
void Node::Unpublish(std::string_view name) { state_->Unpublish(name); }
void Node::Shutdown() { state_->Shutdown(); }
const std::string& Node::name() const { return state_->name(); }
uint64_t Node::incarnation() const { return state_->incarnation(); }
std::string Node::address() const { return state_->listen_address(); }
NodeStats Node::stats() const { return state_->stats(); }

void Node::LookupRef(std::string_view address, std::string_view name, std::string_view actor_type,
                     absl::Duration timeout, internal::RefCallback done) {
  if (state_->options().cluster_secret.empty()) {
    std::move(done)(absl::FailedPreconditionError("NodeOptions::cluster_secret is empty"));
    return;
  }
  state_->Lookup(address, name, actor_type, timeout, std::move(done));
}

void Node::SpawnRef(std::string_view address, std::string_view actor_type, uint64_t args_type,
                    internal::EncodeFn encode, const void* args, absl::Duration timeout, internal::RefCallback done) {
  if (state_->options().cluster_secret.empty()) {
    std::move(done)(absl::FailedPreconditionError("NodeOptions::cluster_secret is empty"));
    return;
  }
  state_->SpawnOn(address, actor_type, args_type, encode, args, timeout, std::move(done));
}

void Node::RegisterSpawn(std::string_view actor_type, uint64_t args_type, internal::SpawnFactory factory) {
  state_->RegisterSpawn(actor_type, args_type, std::move(factory));
}

void Node::AddSubscriber(const ActorRef& subscriber, absl::AnyInvocable<void(const NodeUp&)> up,
                         absl::AnyInvocable<void(const NodeDown&)> down) {
  state_->AddSubscriber(subscriber, std::move(up), std::move(down));
}

}  // namespace troupe
