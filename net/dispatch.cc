// Dispatch: what each frame after the handshake does (net/node_state.h).
// Runs on the connection's I/O thread.
//
// A message that cannot be delivered is refused alone and the connection
// stays up: an actor that is gone, a target of an earlier incarnation of
// this node, a type the target does not accept, a payload that does not
// decode. An ask gets the reason as its error; a tell is counted. Either
// is logged once per (reason, actor type, message type).

#include <utility>

#include "absl/strings/str_cat.h"
#include "actors/actor.h"
#include "net/handshake.h"
#include "net/node_state.h"

namespace troupe::internal {
namespace {

// Sends the reply of an ask that came from another node back to it.
class ConnectionReplyRoute final : public ReplyRoute {
 public:
  ConnectionReplyRoute(std::shared_ptr<NodeState> node, std::weak_ptr<net::Connection> connection, uint64_t request_id,
                       size_t limit)
      : node_(std::move(node)), connection_(std::move(connection)), request_id_(request_id), limit_(limit) {}

  void Send(uint64_t type_id, EncodeFn encode, const void* value) noexcept override {
    Finish(absl::OkStatus(), ReplyBody::Value(type_id, encode, value));
  }
  void Fail(const absl::Status& status) noexcept override { Finish(status, {}); }

 private:
  void Finish(const absl::Status& status, const ReplyBody& body) {
    std::shared_ptr<net::Connection> connection = connection_.lock();
    if (connection == nullptr) return;  // the asker is gone with its connection
    node_->Reply(*connection, request_id_, status, body, limit_);
  }

  const std::shared_ptr<NodeState> node_;
  const std::weak_ptr<net::Connection> connection_;
  const uint64_t request_id_;
  const size_t limit_;
};

}  // namespace

bool RefusalLog::ShouldLog(std::string_view reason, std::string_view actor_type, uint64_t type_id, absl::Time now) {
  return ShouldLog(absl::StrCat(std::string(reason), "|", std::string(actor_type), "|", type_id), now);
}

bool RefusalLog::ShouldLog(std::string kind, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seen_.contains(kind)) return false;
  if (seen_.size() < kMaxKinds) {
    seen_.insert(std::move(kind));
    return true;
  }
  if (now - last_overflow_line_ < absl::Seconds(1)) return false;
  last_overflow_line_ = now;
  return true;
}

void NodeState::Reply(net::Connection& connection, uint64_t request_id, const absl::Status& status,
                      const ReplyBody& body, size_t limit) {
  auto build = [&](const absl::Status& s, const ReplyBody& b) {
    return net::BuildFrame([&](wire::Frame::Builder f) {
      wire::Reply::Builder reply = f.initReply();
      reply.setRequestId(request_id);
      WriteStatus(reply, s);
      if (!b.refused_by.empty()) {
        reply.setRefusedBy(std::string(b.refused_by));
        reply.setRefusedAcceptsSome(b.refused_accepts_some);
      }
      if (!s.ok()) return absl::OkStatus();
      if (b.ref != nullptr) return refs_.Encode(*b.ref, reply.initPayload().initAs<wire::ActorAddress>());
      reply.setTypeId(b.type_id);
      if (b.encode == nullptr) return absl::OkStatus();
      WireWriter writer(reply.initPayload(), &refs_);
      b.encode(b.value, writer);
      return writer.status();
    });
  };
  absl::StatusOr<net::OutFrame> frame = build(status, body);
  if (frame.ok() && limit != 0 && frame->payload_size() > limit) {
    frame = absl::InvalidArgumentError(absl::StrCat("the reply of ", frame->payload_size(),
                                                    " bytes is larger than the asking node accepts (", limit,
                                                    " bytes, max_frame_bytes)"));
  }
  if (!frame.ok()) frame = build(absl::InvalidArgumentError(absl::StrCat("the reply does not encode: ",
                                                                         frame.status().message())),
                                 {});
  if (frame.ok() && !connection.SendReserved(*std::move(frame)).ok()) {
    rejected_sends.fetch_add(1, std::memory_order_relaxed);
  }
}

absl::Status NodeState::HandleFrame(LinkContext& link, wire::Frame::Reader frame) {
  switch (frame.which()) {
    case wire::Frame::SEND:
      messages_in.fetch_add(1, std::memory_order_relaxed);
      return HandleSend(link, frame.getSend());
    case wire::Frame::REPLY: {
      wire::Reply::Reader reply = frame.getReply();
      absl::Status status = StatusFromWire(reply.getCode(), reply.getMessage().cStr());
      if (status.ok()) {
        WireReader reader(reply.getPayload(), &refs_);
        link.peer.Complete(reply.getRequestId(), &reader, absl::OkStatus());
      } else {
        link.peer.Complete(reply.getRequestId(), nullptr, std::move(status), reply.getRefusedBy().cStr(),
                           reply.getRefusedAcceptsSome());
      }
      return absl::OkStatus();
    }
    case wire::Frame::HEARTBEAT:
      return absl::OkStatus();
    case wire::Frame::LOOKUP:
      HandleLookup(link, frame.getLookup());
      return absl::OkStatus();
    case wire::Frame::SPAWN:
      HandleSpawn(link, frame.getSpawn());
      return absl::OkStatus();
    case wire::Frame::STOP:
      HandleStop(link, frame.getStop());
      return absl::OkStatus();
    case wire::Frame::WATCH:
      HandleWatch(link, frame.getWatch());
      return absl::OkStatus();
    case wire::Frame::LINK:
      HandleLink(link, frame.getLink(), /*link_them=*/true);
      return absl::OkStatus();
    case wire::Frame::UNLINK:
      HandleLink(link, frame.getUnlink(), /*link_them=*/false);
      return absl::OkStatus();
    case wire::Frame::DOWN: {
      wire::Down::Reader down = frame.getDown();
      link.peer.DeliverDown(down.getActor(), StatusFromWire(down.getCode(), down.getMessage().cStr()));
      return absl::OkStatus();
    }
    case wire::Frame::LEAVE:
      link.peer.Left(frame.getLeave().cStr());
      return absl::OkStatus();
    case wire::Frame::HELLO:
    case wire::Frame::PROOF:
    case wire::Frame::YIELD:
      return absl::InvalidArgumentError("protocol violation: a handshake frame after the handshake");
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown frame kind ", static_cast<int>(frame.which())));
  }
}

void NodeState::Refuse(LinkContext& link, uint64_t request_id, std::atomic<uint64_t>& counter, std::string_view reason,
                       std::string_view actor_type, uint64_t type_id, const absl::Status& status,
                       const ReplyBody& body) {
  counter.fetch_add(1, std::memory_order_relaxed);
  if (refusals_.ShouldLog(reason, actor_type, type_id, system_.Now())) {
    log().warn("node {}: {} from {} refused ({}; logged once for this kind): {}", options_.name,
               request_id != 0 ? "an ask" : "a tell", link.peer.name(), reason, std::string(status.message()));
  }
  if (request_id != 0) Reply(link.connection, request_id, status, body, link.peer_max_frame_bytes);
}

absl::Status NodeState::HandleSend(LinkContext& link, wire::Envelope::Reader envelope) {
  const uint64_t request_id = envelope.getRequestId();
  const ActorId id = envelope.getTarget();
  const uint64_t type_id = envelope.getTypeId();
  if (envelope.getTargetIncarnation() != incarnation_) {
    Refuse(link, request_id, stale_incarnation, "earlier incarnation", "", 0,
           absl::UnavailableError(absl::StrCat("actor ", id, " belonged to incarnation ",
                                               absl::Hex(envelope.getTargetIncarnation()), " of node ", options_.name,
                                               ", which has restarted (now incarnation ", absl::Hex(incarnation_),
                                               "): the message was not delivered")));
    if (request_id == 0) {
      system_.core().ReportDeadLetter(nullptr, "a message from another node",
                                      absl::UnavailableError("it was sent to an earlier incarnation of this node"));
    }
    return absl::OkStatus();
  }
  const ActorRef& target = refs_.Find(id, link.cache);
  if (!target) {
    Refuse(link, request_id, unknown_targets, "no such actor", "", 0,
           absl::NotFoundError(absl::StrCat("actor ", id, " is not (any more) on node ", options_.name)));
    return absl::OkStatus();
  }
  std::unique_ptr<ReplyRoute> route;
  if (request_id != 0) {
    route = std::make_unique<ConnectionReplyRoute>(shared_from_this(), link.connection.shared_from_this(), request_id,
                                                   link.peer_max_frame_bytes);
  }
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    WireReader reader(envelope.getPayload(), &refs_);
    status = target.cell()->DeliverRemote(type_id, reader, std::move(route));
  });
  KJ_IF_MAYBE(e, error) {
    status = absl::InvalidArgumentError(absl::StrCat("malformed payload: ", e->getDescription().cStr()));
  }
  if (status.ok()) return absl::OkStatus();
  const std::string_view actor_type = target.cell()->type_name();
  if (absl::IsUnimplemented(status)) {
    const bool accepts_some = std::string(status.message()).find(kAcceptsNoMessages) == std::string::npos;
    Refuse(link, request_id, unknown_types, "type not accepted", actor_type, type_id,
           absl::InvalidArgumentError(absl::StrCat(status.message(),
                                                   "; add the message type to `using Remote = troupe::Accepts<...>`")),
           ReplyBody::Refused(actor_type, accepts_some));
  } else if (absl::IsResourceExhausted(status)) {
    // A full bounded mailbox: counted by the system as dropped.
    if (request_id != 0) Reply(link.connection, request_id, status, {}, link.peer_max_frame_bytes);
  } else {
    Refuse(link, request_id, undecodable, "payload does not decode", actor_type, type_id,
           absl::InvalidArgumentError(absl::StrCat("a message of type id ", type_id, " for ", std::string(actor_type),
                                                   " does not decode: ", status.message())));
  }
  return absl::OkStatus();
}

void NodeState::HandleLookup(LinkContext& link, wire::Lookup::Reader lookup) {
  const std::string name = lookup.getName().cStr();
  const std::string type = lookup.getActorType().cStr();
  ActorRef ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = published_.find(name); it != published_.end()) ref = it->second;
  }
  absl::Status status;
  if (!ref) {
    status = absl::NotFoundError(absl::StrCat("no actor is published as '", net::Sanitize(name), "' on node ",
                                              options_.name));
  } else if (!type.empty() && ref.cell()->type_name() != type) {
    status = absl::FailedPreconditionError(absl::StrCat("the actor published as '", name, "' is a ",
                                                        std::string(ref.cell()->type_name()), ", not a ",
                                                        net::Sanitize(type)));
  }
  Reply(link.connection, lookup.getRequestId(), status, ReplyBody::Address(&ref), link.peer_max_frame_bytes);
}

void NodeState::HandleSpawn(LinkContext& link, wire::Spawn::Reader spawn) {
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
    ref = absl::NotFoundError(absl::StrCat("node ", options_.name, " does not allow spawning ", net::Sanitize(type)));
  } else if (spawn.getArgsTypeId() != args_type) {
    ref = absl::InvalidArgumentError(absl::StrCat("spawning ", type, " on node ", options_.name,
                                                  " takes arguments of type id ", args_type, ", not ",
                                                  spawn.getArgsTypeId()));
  } else {
    kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
      WireReader reader(spawn.getArgs(), &refs_);
      ref = (*factory)(args_type != 0 ? &reader : nullptr);
    });
    KJ_IF_MAYBE(e, error) {
      ref = absl::InvalidArgumentError(absl::StrCat("malformed spawn arguments: ", e->getDescription().cStr()));
    }
  }
  const ActorRef spawned = ref.ok() ? *ref : ActorRef();
  Reply(link.connection, spawn.getRequestId(), ref.status(), ReplyBody::Address(&spawned), link.peer_max_frame_bytes);
}

void NodeState::HandleStop(LinkContext& link, wire::Stop::Reader stop) {
  ActorRef ref = stop.getTargetIncarnation() == incarnation_ ? refs_.Find(stop.getTarget()) : ActorRef();
  if (ref) {
    ref.Stop(StatusFromWire(stop.getCode(), stop.getMessage().cStr()));
  } else {
    Refuse(link, 0, unknown_targets, "stop of no such actor", "", 0,
           absl::NotFoundError(absl::StrCat("actor ", stop.getTarget(), " is not (any more) on node ", options_.name)));
  }
}

void NodeState::HandleWatch(LinkContext& link, wire::Watch::Reader watch) {
  const uint64_t actor = watch.getActor();
  std::shared_ptr<Peer> peer = link.peer.shared_from_this();
  // Not (any more) here: it has stopped as far as the peer can know.
  const std::optional<absl::Status> down =
      watch.getIncarnation() == incarnation_ ? refs_.AddWatcher(actor, peer) : refs_.NotExported(actor);
  if (down.has_value()) SendDown(*peer, actor, *down);
}

void NodeState::HandleLink(LinkContext& link, wire::Link::Reader frame, bool link_them) {
  // A target that is gone needs no answer here: the sender also watches
  // it, and that watch reports it gone (its down frame is the exit).
  ActorRef target = frame.getIncarnation() == incarnation_ ? refs_.Find(frame.getActor()) : ActorRef();
  if (!target) return;
  absl::StatusOr<ActorRef> from = refs_.Decode(frame.getFrom(), "");
  if (!from.ok() || !from->is_remote()) {
    Refuse(link, 0, bad_frames, "a link from an actor that is not the peer's", "", 0,
           from.ok() ? absl::InvalidArgumentError("the link's `from` is an actor of this node") : from.status());
    return;
  }
  auto* proxy = static_cast<RemoteCell*>(from->cell());
  if (link_them) {
    // Their actor's stop (or the link's loss) is the target's exit.
    proxy->WatchRemote(target.cell(), ActorCell::kLinkExit);
    target.cell()->RequestLink(proxy);
  } else {
    proxy->UnwatchRemote(target.cell(), ActorCell::kLinkExit.monitor);
    target.cell()->RequestUnlink(proxy);
  }
}

}  // namespace troupe::internal
