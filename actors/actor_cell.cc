#include "actors/actor_cell.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/system_core.h"
#include "actors/wire.h"

namespace troupe::internal {
namespace {

// The text of an exception caught at the actor boundary.
std::string Describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace

struct ActorCell::Extras {
  // Each holds a reference, released when the child reports it stopped.
  absl::flat_hash_set<ActorCell*> children;
  // Watches on this actor, by (watcher, monitor id). Each holds a reference
  // to its watcher until Down is sent or the watch is removed.
  absl::flat_hash_map<std::pair<ActorCell*, uint64_t>, DownFactory> watchers;
  // Monitors this actor holds, by id: the target, with a reference held.
  absl::flat_hash_map<uint64_t, ActorCell*> monitors;
  uint64_t last_monitor = 0;
  // Timers this actor started. One-shot ones that fired are pruned when the
  // set has doubled since the last prune.
  absl::flat_hash_set<TimerId> timers;
  size_t prune_timers_at = 16;
  // Linked actors (or proxies of remote ones), each with a reference held.
  absl::flat_hash_set<ActorCell*> links;
  // Set while trapping exits: builds the Exit message.
  ExitFactory make_exit = nullptr;
  // Supervised actors: builds the next instance in this cell.
  Rebuild rebuild;
  // Continuations waiting for a future (a doubly linked list through
  // PendingContinuation::pending_prev/next).
  PendingContinuation* pending = nullptr;
  // User messages that arrived during an exclusive co_await, in order.
  MessageList deferred;
  absl::Status exit_reason;
};

// Lifecycle signals between actors: system messages, never deferred.
class ActorCell::Signal final : public Message {
 public:
  enum class What {
    kStop, kStopNow, kChildStopped, kChildTerminated, kRestart, kWatch, kUnwatch, kLink, kUnlink, kExit
  };

  static Signal* Stop(absl::Status reason, bool now, bool for_good = false) {
    auto* s = new Signal(now ? What::kStopNow : What::kStop);
    s->reason_ = std::move(reason);
    s->for_good_ = for_good;
    return s;
  }
  // kChildStopped (for good) or kChildTerminated (an instance ended).
  static Signal* ChildEvent(What what, ActorCell* child, absl::Status reason) {
    auto* s = new Signal(what);
    s->cell_ = child;  // the child's reference moves into the signal
    s->reason_ = std::move(reason);
    return s;
  }
  static Signal* Restart() { return new Signal(What::kRestart); }
  static Signal* Watch(ActorCell* watcher, DownFactory make_down, ActorCell* target) {
    auto* s = new Signal(What::kWatch);
    watcher->Retain();
    s->cell_ = watcher;
    s->make_down_ = make_down;
    s->target_ = target;
    return s;
  }
  static Signal* Unwatch(ActorCell* watcher, uint64_t monitor) {
    auto* s = new Signal(What::kUnwatch);
    s->target_ = watcher;  // only compared, never dereferenced
    s->make_down_.monitor = monitor;
    return s;
  }

  // kLink, kUnlink, kExit to `to`: `from` is the other end of the link.
  static Signal* Linking(What what, ActorCell* from, ActorCell* to, absl::Status reason = absl::OkStatus()) {
    auto* s = new Signal(what);
    from->Retain();
    s->cell_ = from;
    s->target_ = to;
    s->reason_ = std::move(reason);
    return s;
  }

  What what() const noexcept { return what_; }
  // Whether bouncing it reports the reason anywhere; the others are just
  // dropped when their receiver has stopped.
  bool bounce_needs_reason() const noexcept { return what_ == What::kWatch || what_ == What::kLink; }
  bool wants_exit_reason_if_late() const noexcept { return what_ == What::kWatch && make_down_.exit_reason_if_late; }

  void Deliver(void* receiver) override {
    std::unique_ptr<Signal> self(this);
    auto* cell = static_cast<ActorCell*>(receiver);
    switch (what_) {
      case What::kStop:
      case What::kStopNow:
        cell->BeginStop(std::move(reason_), what_ == What::kStopNow, for_good_);
        break;
      case What::kChildStopped:
        cell->OnChildStopped(std::exchange(cell_, nullptr), reason_);
        break;
      case What::kChildTerminated:
        cell->HandleChildEvent(cell_, reason_, /*ended=*/false);
        break;
      case What::kRestart:
        cell->Restart();
        break;
      case What::kWatch:
        cell->AddWatcher(std::exchange(cell_, nullptr), make_down_);
        break;
      case What::kUnwatch:
        cell->RemoveWatcher(target_, make_down_.monitor);
        break;
      case What::kLink:
        cell->Link(cell_);
        break;
      case What::kUnlink:
        cell->Unlink(cell_);
        break;
      case What::kExit:
        cell->OnExit(std::exchange(cell_, nullptr), std::move(reason_));
        break;
    }
  }

  bool Bounce(const absl::Status& reason) noexcept override {
    std::unique_ptr<Signal> self(this);
    if (what_ == What::kWatch) {
      // Watching an actor that has already stopped: Down at once. The
      // target is still allocated: its sender holds a reference.
      ActorCell* watcher = std::exchange(cell_, nullptr);
      watcher->Enqueue(make_down_(target_, reason));
      watcher->Release();
    } else if (what_ == What::kLink) {
      // Linking to an actor that has already stopped: an exit at once
      // (Erlang's noproc). The stopped actor is still allocated: the linker
      // holds a reference.
      cell_->RequestExit(target_, reason);
    }
    return false;
  }

  ~Signal() override {
    if (cell_ != nullptr) cell_->Release();
  }

 private:
  explicit Signal(What what) : Message(Kind::kSystem), what_(what) {}

  What what_;
  bool for_good_ = false;
  absl::Status reason_;
  ActorCell* cell_ = nullptr;
  DownFactory make_down_;
  // kWatch, kLink: the receiver; kUnwatch: the watcher. Not a reference.
  ActorCell* target_ = nullptr;
};

ActorCell::~ActorCell() {
  if (extras_ != nullptr) {
    // A stopped actor has emptied these; a cell that never ran has none.
    // Release what is left rather than leak it.
    for (ActorCell* child : extras_->children) child->Release();
    for (auto& [key, make_down] : extras_->watchers) key.first->Release();
    for (auto& [id, target] : extras_->monitors) target->Release();
    for (ActorCell* other : extras_->links) other->Release();
    delete extras_;
  }
  // A child's reference is to its parent (released by Destroy).
  if (core_ != nullptr && parent_ == nullptr) core_->Release();
}

void ActorCell::Destroy() noexcept {
  ActorCell* cell = this;
  do {
    ActorCell* parent = cell->parent_;
    delete cell;
    cell = parent;
  } while (cell != nullptr && (cell->refs_.fetch_sub(1, std::memory_order_acq_rel) & kCountMask) == 1);
}

void ActorCell::Init(SystemCore* core, ActorId id, ActorCell* parent, bool has_start_hook) noexcept {
  if (parent != nullptr) {
    parent->Retain();  // see parent_
  } else {
    core->Retain();
  }
  core_ = core;
  id_ = id;
  parent_ = parent;
  if (has_start_hook) inbox_.StartScheduled();  // the spawner schedules the first turn
}

void ActorCell::InitDead(SystemCore* core, ActorId id) noexcept {
  core->Retain();
  core_ = core;
  id_ = id;
  flags_ = kStarted | kStopping | kStopped;
  MessageList none = inbox_.Close();
  (void)none;
  DestroyState();
  Release();  // the alive count: this actor never runs
}

void ActorCell::InitProxy(SystemCore* core, ActorId id) noexcept {
  core->Retain();
  core_ = core;
  id_ = id | kRemoteBit;
  flags_ = kStarted | kStopping | kStopped;
  MessageList none = inbox_.Close();
  (void)none;
}

absl::Status ActorCell::DeliverRemote(uint64_t, WireReader&, std::unique_ptr<ReplyRoute>) {
  // Unimplemented marks a refused type for net/, which names the message.
  return absl::UnimplementedError(absl::StrCat(std::string(type_name()), std::string(kAcceptsNoMessages)));
}

absl::Status RefusedTypeError(std::string_view actor, std::string_view message, bool accepts_some) {
  const std::string a(actor), m(message);
  if (accepts_some) {
    return absl::InvalidArgumentError(absl::StrCat(a, " does not accept ", m, " from other nodes; add it to `using Remote = troupe::Accepts<...>` in ", a));
  }
  return absl::InvalidArgumentError(absl::StrCat(a, " accepts no messages from other nodes; add ", m, " to `using Remote = troupe::Accepts<...>` in ", a));
}

absl::Status ActorCell::exit_reason() const noexcept {
  return extras_ != nullptr ? extras_->exit_reason : absl::OkStatus();
}

void ActorCell::set_exit_reason(absl::Status reason) {
  // A plain stop keeps the exit reason OK without allocating the extras.
  if (!reason.ok() || extras_ != nullptr) extras().exit_reason = std::move(reason);
}

ActorCell::Extras& ActorCell::extras() {
  if (extras_ == nullptr) extras_ = new Extras();
  return *extras_;
}

bool ActorCell::Enqueue(Message* m) noexcept {
  switch (inbox_.Push(m)) {
    case Inbox::PushResult::kQueued:
      return true;
    case Inbox::PushResult::kScheduleNow:
      core_->Schedule(this);
      return true;
    case Inbox::PushResult::kClosed: {
      if (m->kind() == Message::Kind::kSystem && !static_cast<Signal*>(m)->bounce_needs_reason()) {
        delete static_cast<Signal*>(m);  // a stop or a child's event for an actor already gone
        return false;
      }
      const std::string_view type = m->type_name();
      const bool late_watch = m->kind() == Message::Kind::kSystem && static_cast<Signal*>(m)->wants_exit_reason_if_late();
      const absl::Status reason = late_watch ? ExitReasonOnceClosed() : StoppedError();
      if (m->Bounce(reason)) core_->ReportDeadLetter(this, type, reason);
      return false;
    }
  }
  return false;
}

void ActorCell::RequestStop(absl::Status reason) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->StopRemote(std::move(reason));
    return;
  }
  Enqueue(Signal::Stop(std::move(reason), /*now=*/false));
}

void ActorCell::RequestStopForGood(absl::Status reason, bool now) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->StopRemote(std::move(reason));
    return;
  }
  Signal* s = Signal::Stop(std::move(reason), now, /*for_good=*/true);
  if (now) {
    EnqueueUrgent(s);
  } else {
    Enqueue(s);
  }
}

void ActorCell::RequestRestart() noexcept { EnqueueUrgent(Signal::Restart()); }

void ActorCell::SetSupervised(Rebuild rebuild) {
  flags_ |= kSupervised;
  extras().rebuild = std::move(rebuild);
}

void ActorCell::HandleChildEvent(ActorCell*, const absl::Status&, bool) noexcept {}

bool ActorCell::StopChildrenInOrder(bool) noexcept { return false; }

void ActorCell::RequestStopNow(absl::Status reason) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->StopRemote(std::move(reason));
    return;
  }
  EnqueueUrgent(Signal::Stop(std::move(reason), /*now=*/true));
}

void ActorCell::RequestWatch(ActorCell* watcher, DownFactory make_down) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->WatchRemote(watcher, make_down);
    return;
  }
  Enqueue(Signal::Watch(watcher, make_down, this));
}

void ActorCell::RequestLink(ActorCell* from) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->LinkRemote(from);
    return;
  }
  Enqueue(Signal::Linking(Signal::What::kLink, from, this));
}

void ActorCell::RequestUnlink(ActorCell* from) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->UnlinkRemote(from);
    return;
  }
  Enqueue(Signal::Linking(Signal::What::kUnlink, from, this));
}

void ActorCell::RequestExit(ActorCell* from, const absl::Status& reason) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->ExitRemote(from);
    return;
  }
  EnqueueUrgent(Signal::Linking(Signal::What::kExit, from, this, reason));
}

Message* ActorCell::MakeLinkExit(ActorCell* target, const absl::Status& reason, uint64_t) {
  return Signal::Linking(Signal::What::kExit, target, nullptr, reason);
}

bool ActorCell::MarkRegistered() noexcept {
  // All four operations of the pair are seq_cst: this RMW and the check
  // after it, FinishStop's Close and its load of refs_. In their single
  // total order either the load sees the bit or the check sees the close.
  refs_.fetch_or(kRegisteredBit, std::memory_order_seq_cst);
  return inbox_.IsClosedSeqCst();
}

void ActorCell::EnqueueUrgent(Message* m) noexcept {
  if (!Enqueue(m)) return;  // stopped: bounced
  // Release: pairs with the acquire load in Run; the signal is pushed first.
  refs_.fetch_or(kUrgentBit, std::memory_order_release);
}

void ActorCell::RequestUnwatch(ActorCell* watcher, uint64_t monitor) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->UnwatchRemote(watcher, monitor);
    return;
  }
  Enqueue(Signal::Unwatch(watcher, monitor));
}

RemoteCell::RemoteCell(SystemCore* core) noexcept { InitProxy(core, core->NextProxyId()); }

void ActorCell::BeginExclusiveWait() noexcept { flags_ |= kExclusive; }

bool ActorCell::HoldsUserMessages() const noexcept {
  // Between instances of a supervised actor, and while one ends (waiting
  // for its children): what is queued is for the next instance.
  return (flags_ & kSuspended) || ((flags_ & kStopping) && !(flags_ & kForGood));
}

Message* ActorCell::NextMessage() noexcept {
  // The common state: no co_await holds the actor, no instance is ending,
  // nothing deferred. Every message then runs in mailbox order.
  if (!(flags_ & (kExclusive | kSuspended | kStopping)) && (extras_ == nullptr || extras_->deferred.empty()))
      [[likely]] {
    return inbox_.Pop();
  }
  const bool hold = HoldsUserMessages();
  if (!(flags_ & kExclusive) && !hold && extras_ != nullptr && !extras_->deferred.empty()) {
    return extras_->deferred.PopFront();
  }
  while (Message* m = inbox_.Pop()) {
    const Message::Kind kind = m->kind();
    if (kind == Message::Kind::kSystem) return m;
    if (hold) {
      // Continuations belong to the instance that ends (Process bounces
      // them); user messages wait for the next.
      if (kind != Message::Kind::kUser) return m;
    } else if (!(flags_ & kExclusive) || kind == Message::Kind::kExclusiveResume) {
      return m;
    }
    extras().deferred.PushBack(m);  // wait until the exclusive co_await resumes, or the restart
  }
  return nullptr;
}

bool ActorCell::HasRunnableMessages() const noexcept {
  if (extras_ != nullptr && !extras_->deferred.empty() && !(flags_ & kExclusive) && !HoldsUserMessages()) return true;
  return inbox_.HasMessages();
}

void ActorCell::Run() noexcept {
  ScopedCurrentActor scope(this);
  if (!(flags_ & kStarted)) {
    flags_ |= kStarted;
    try {
      HandleStart();
    } catch (...) {
      HandleFailure("OnStart", std::current_exception());
    }
    ApplyPendingStop();
  }
  for (int budget = core_->batch(); budget > 0 && !(flags_ & kStopped); --budget) {
    // Acquire: pairs with EnqueueUrgent's release; its signal is then ours
    // to find.
    if (refs_.load(std::memory_order_acquire) & kUrgentBit) [[unlikely]] {
      TakeUrgent();
      continue;
    }
    Message* m = NextMessage();
    if (m == nullptr) break;
    Process(m);
  }
  if (flags_ & kStopped) {
    Release();  // the alive count: this was the actor's last turn
    return;
  }
  // After TryBlock or Yield another worker may run us: touch nothing more.
  if (HasRunnableMessages() || !inbox_.TryBlock()) core_->Yield(this);
}

void ActorCell::TakeUrgent() noexcept {
  refs_.fetch_and(~kUrgentBit, std::memory_order_relaxed);
  // Everything queued now: system messages are handled at once, in order;
  // the others keep their order behind the messages deferred already, which
  // NextMessage hands out first. An exclusive co_await's resumption is
  // handled at once too: in that state it is the next thing to run anyway.
  while (Message* m = inbox_.Pop()) {
    const Message::Kind kind = m->kind();
    if (kind == Message::Kind::kSystem ||
        (kind == Message::Kind::kExclusiveResume && (flags_ & kExclusive))) {
      Process(m);
      if (flags_ & kStopped) return;  // the inbox is closed and emptied
    } else {
      extras().deferred.PushBack(m);
    }
  }
}

void ActorCell::Process(Message* m) noexcept {
  bool orphaned = false;
  if (m->kind() == Message::Kind::kResume || m->kind() == Message::Kind::kExclusiveResume) {
    auto* c = static_cast<PendingContinuation*>(m);
    UnlistPending(c);
    orphaned = c->orphaned || (flags_ & kSuspended);
  }
  if (((flags_ & kStopping) && m->kind() != Message::Kind::kSystem) || orphaned) {
    // Stopping: user messages and continuations no longer run.
    BounceHere(m, BounceReason());
    return;
  }
  if (m->kind() == Message::Kind::kExclusiveResume) flags_ &= ~kExclusive;
  try {
    m->Deliver(this);
  } catch (...) {
    HandleFailure("a handler", std::current_exception());
  }
  ApplyPendingStop();
}

void ActorCell::BounceHere(Message* m, const absl::Status& reason) noexcept {
  if (m->holds_mailbox_place()) GiveMailboxPlace();
  const std::string_view type = m->type_name();
  if (m->Bounce(reason)) core_->ReportDeadLetter(this, type, reason);
}

void ActorCell::ApplyPendingStop() noexcept {
  if (flags_ & kStopPending) {
    flags_ &= ~kStopPending;
    BeginStop(exit_reason(), /*now=*/false);
  }
}

void ActorCell::HandleFailure(const char* where, std::exception_ptr error) noexcept {
  const std::string text = Describe(error);
  core_->CountFailure();
  core_->log().error("actor {} ({}) failed: {} threw: {}", id_, type_name(), where, text);
  BeginStop(absl::InternalError(absl::StrCat(std::string(type_name()), " threw in ", where, ": ", text)),
            /*now=*/false);
}

void ActorCell::FailFromCoroutine(std::exception_ptr error) noexcept {
  const std::string text = Describe(error);
  core_->CountFailure();
  core_->log().error("actor {} ({}) failed: a coroutine handler threw: {}", id_, type_name(), text);
  if (flags_ & kStopping) return;
  extras().exit_reason = absl::InternalError(absl::StrCat(std::string(type_name()), " threw in a coroutine handler: ", text));
  flags_ |= kStopPending;
}

void ActorCell::StopSelf(absl::Status reason) {
  if (flags_ & (kStopping | kStopPending)) return;
  set_exit_reason(std::move(reason));
  flags_ |= kStopPending;
}

absl::Status ActorCell::StoppedError() const {
  if (core_->shutting_down()) {
    return absl::CancelledError(absl::StrCat("actor ", id_, " stopped: the system is shutting down"));
  }
  return absl::UnavailableError(absl::StrCat("actor ", id_, " has stopped"));
}

absl::Status ActorCell::ExitReasonOnceClosed() const {
  // FinishStop sets the reason before it closes the inbox, and nothing
  // changes it afterwards; the acquire load orders this read after both.
  // The caller holds a reference, so the extras live on.
  if (!inbox_.IsClosedAcquire()) return StoppedError();  // cannot happen: closing is final
  return exit_reason();
}

absl::Status ActorCell::BounceReason() const {
  const absl::Status exit = exit_reason();
  if (core_->shutting_down() || exit.ok()) return StoppedError();
  return absl::UnavailableError(absl::StrCat("actor ", id_, " has stopped: ", exit.message()));
}

void ActorCell::BeginStop(absl::Status reason, bool now, bool for_good) noexcept {
  // A supervised actor's stop ends its instance unless its supervisor (or
  // parent) ends the actor.
  if (for_good || !(flags_ & kSupervised)) for_good = true;
  if (flags_ & kSuspended) {
    // Between instances: nothing runs to stop; only an end matters.
    if (!for_good) return;
    flags_ &= ~kSuspended;
    flags_ |= kStopping | kForGood;
    if (now) flags_ |= kStopNow;
    set_exit_reason(std::move(reason));
    FinishStop();
    return;
  }
  if (flags_ & kStopping) {
    if (for_good) flags_ |= kForGood;
    // Already stopping in order: an immediate stop hurries the children.
    if (now && !(flags_ & (kStopNow | kStopped))) {
      flags_ |= kStopNow;
      StopChildren(/*now=*/true);
    }
    return;
  }
  flags_ |= kStopping;
  if (now) flags_ |= kStopNow;
  if (for_good) flags_ |= kForGood;
  flags_ &= ~kExclusive;
  set_exit_reason(std::move(reason));
  if (extras_ == nullptr || extras_->children.empty()) {
    (flags_ & kForGood) ? FinishStop() : FinishInstance();
    return;
  }
  StopChildren(now);
}

void ActorCell::StopChildren(bool now) noexcept {
  if (extras_ == nullptr || StopChildrenInOrder(now)) return;
  for (ActorCell* child : extras_->children) {
    // A closed mailbox: the child has finished stopping, and its
    // child-stopped signal is on its way (a stale read only sends a stop
    // that bounces).
    if (child->inbox_.IsClosed()) continue;
    child->RequestStopForGood(absl::CancelledError(absl::StrCat("parent actor ", id_, " stopped")), now);
  }
}

void ActorCell::OnChildStopped(ActorCell* child, const absl::Status& reason) noexcept {
  HandleChildEvent(child, reason, /*ended=*/true);
  if (extras_ != nullptr && extras_->children.erase(child) > 0) child->Release();
  child->Release();  // the signal's reference
  if ((flags_ & kStopping) && !(flags_ & kStopped) && extras_->children.empty()) {
    (flags_ & kForGood) ? FinishStop() : FinishInstance();
  }
}

void ActorCell::EndInstance(const absl::Status& reason) noexcept {
  try {
    HandleStop(reason);
  } catch (...) {
    core_->CountFailure();
    core_->log().error("actor {} ({}) OnStop threw: {}", id_, type_name(), Describe(std::current_exception()));
  }
  // The user's object goes first; what it or OnStop started (timers,
  // continuations) is cleaned up after it.
  DestroyState();
  CancelTimers();
  WithdrawContinuations();
}

void ActorCell::FinishInstance() noexcept {
  const absl::Status reason = exit_reason();
  EndInstance(reason);
  if (extras_ != nullptr) {
    EndMonitors();
    // Continuations of this instance already queued are still listed until
    // they run: WithdrawContinuations marked them orphans.
    extras_->exit_reason = absl::OkStatus();
  }
  // Links, watchers, the mailbox and the Ref stay for the next instance.
  flags_ &= ~(kStopping | kStopNow | kForGood | kExclusive | kStopPending | kTrapExits);
  flags_ |= kSuspended;
  ReportTerminated(reason);
}

void ActorCell::ReportTerminated(const absl::Status& reason) noexcept {
  Retain();  // moves into the signal
  parent_->Enqueue(Signal::ChildEvent(Signal::What::kChildTerminated, this, reason));
}

void ActorCell::Restart() noexcept {
  if (!(flags_ & kSuspended)) return;  // stale: the actor has ended since
  try {
    extras_->rebuild(*this);
  } catch (...) {
    const std::string text = Describe(std::current_exception());
    core_->CountFailure();
    core_->log().error("actor {} ({}) failed to restart: its constructor threw: {}", id_, type_name(), text);
    ReportTerminated(
        absl::InternalError(absl::StrCat(std::string(type_name()), " threw in its constructor at a restart: ", text)));
    return;
  }
  flags_ &= ~kSuspended;
  try {
    HandleStart();
  } catch (...) {
    HandleFailure("OnStart", std::current_exception());
  }
}

void ActorCell::FinishStop() noexcept {
  flags_ |= kStopped;
  const absl::Status reason = exit_reason();
  EndInstance(reason);
  MessageList rest = inbox_.Close();
  if (extras_ != nullptr) rest.Append(std::move(extras_->deferred));
  if (!rest.empty()) {
    const absl::Status bounce = BounceReason();
    while (Message* m = rest.PopFront()) {
      if (m->kind() == Message::Kind::kResume || m->kind() == Message::Kind::kExclusiveResume) {
        UnlistPending(static_cast<PendingContinuation*>(m));
      }
      BounceHere(m, bounce);
    }
  }
  if (extras_ != nullptr) {
    for (auto& [key, make_down] : extras_->watchers) {
      key.first->Enqueue(make_down(this, reason));
      key.first->Release();
    }
    extras_->watchers.clear();
    EndMonitors();
    EndLinks(reason);
  }
  if (ActorCell* parent = parent_) {
    Retain();  // moves into the signal
    parent->Enqueue(Signal::ChildEvent(Signal::What::kChildStopped, this, reason));
  }
  // After the Close above; pairs with MarkRegistered (registry.h). A plain
  // load on x86: actors without names pay no atomic write as they stop.
  if (refs_.load(std::memory_order_seq_cst) & kRegisteredBit) core_->ForgetNames(this);
  core_->ActorStopped(this);
  // Run releases the alive count as this turn ends.
}

void ActorCell::CancelTimers() noexcept {
  if (extras_ == nullptr) return;
  for (TimerId id : extras_->timers) core_->timers().Cancel(id);
  extras_->timers.clear();
}

void ActorCell::WithdrawContinuations() noexcept {
  if (extras_ == nullptr) return;
  while (PendingContinuation* c = extras_->pending) {
    UnlistPending(c);
    // Either destroys it now, or it is on its way to the mailbox and will
    // be bounced there (below, by the thread that posts it, or as an orphan
    // if the cell lives on for a next instance).
    if (!c->Withdraw()) c->orphaned = true;
  }
}

void ActorCell::EndMonitors() noexcept {
  for (auto& [monitor, target] : extras_->monitors) {
    target->RequestUnwatch(this, monitor);
    target->Release();
  }
  extras_->monitors.clear();
}

bool ActorCell::Link(ActorCell* other) {
  if (other == this) return false;
  if (flags_ & kStopped) {
    // From OnStop or a destructor: the exit this link would carry is
    // already due.
    other->RequestExit(this, exit_reason());
    return false;
  }
  if (!extras().links.insert(other).second) return false;
  other->Retain();
  return true;
}

bool ActorCell::Unlink(ActorCell* other) {
  if (extras_ == nullptr || extras_->links.erase(other) == 0) return false;
  other->Release();
  return true;
}

void ActorCell::TrapExits(ExitFactory make_exit) {
  extras().make_exit = make_exit;
  if (make_exit != nullptr) {
    flags_ |= kTrapExits;
  } else {
    flags_ &= ~kTrapExits;
  }
}

void ActorCell::LinkAtSpawn(ActorCell* parent) {
  // Neither end runs yet (the child) or it runs this very call (the
  // parent): both halves are set directly.
  extras().links.insert(parent);
  parent->Retain();
  parent->Link(this);
}

void ActorCell::OnExit(ActorCell* from, absl::Status reason) noexcept {
  // An exit from an actor this one has unlinked since (or never linked) is
  // not for us.
  const bool linked = Unlink(from);
  if (linked && (flags_ & kTrapExits) && !(flags_ & kStopping)) {
    Enqueue(extras_->make_exit(from, reason));
  } else if (linked && !reason.ok()) {
    BeginStop(std::move(reason), /*now=*/true);
  }
  from->Release();  // the signal's reference
}

void ActorCell::EndLinks(const absl::Status& reason) noexcept {
  for (ActorCell* other : extras_->links) {
    other->RequestExit(this, reason);
    other->Release();
  }
  extras_->links.clear();
}

void ActorCell::AddPending(PendingContinuation* c) noexcept {
  Extras& x = extras();
  c->pending_prev = nullptr;
  c->pending_next = x.pending;
  if (x.pending != nullptr) x.pending->pending_prev = c;
  x.pending = c;
  c->listed = true;
}

void ActorCell::UnlistPending(PendingContinuation* c) noexcept {
  if (!c->listed) return;
  c->listed = false;
  if (c->pending_prev != nullptr) {
    c->pending_prev->pending_next = c->pending_next;
  } else {
    extras_->pending = c->pending_next;
  }
  if (c->pending_next != nullptr) c->pending_next->pending_prev = c->pending_prev;
  c->pending_prev = c->pending_next = nullptr;
}

void ActorCell::AdoptChild(ActorCell* child) {
  child->Retain();
  extras().children.insert(child);
  // Spawned while we stop: it must not outlive us.
  if (flags_ & kStopping) {
    absl::Status reason = absl::CancelledError(absl::StrCat("parent actor ", id_, " stopped"));
    if (flags_ & kStopNow) {
      child->RequestStopNow(std::move(reason));
    } else {
      child->RequestStop(std::move(reason));
    }
  }
}

void ActorCell::AddWatcher(ActorCell* watcher, DownFactory make_down) {
  if (flags_ & kStopped) {
    watcher->Enqueue(make_down(this, exit_reason()));
    watcher->Release();
    return;
  }
  auto [it, added] = extras().watchers.try_emplace({watcher, make_down.monitor}, make_down);
  if (!added) watcher->Release();  // the same monitor twice: one is enough
}

void ActorCell::RemoveWatcher(ActorCell* watcher, uint64_t monitor) {
  if (extras_ == nullptr) return;
  auto it = extras_->watchers.find(std::make_pair(watcher, monitor));
  if (it == extras_->watchers.end()) return;
  extras_->watchers.erase(it);
  watcher->Release();
}

size_t ActorCell::watchers_for_test() const noexcept { return extras_ != nullptr ? extras_->watchers.size() : 0; }
size_t ActorCell::links_for_test() const noexcept { return extras_ != nullptr ? extras_->links.size() : 0; }

uint64_t ActorCell::Monitor(ActorCell* target, DownFactory::Fn make_down, bool exit_reason_if_late) {
  Extras& x = extras();
  const uint64_t monitor = ++x.last_monitor;
  target->Retain();
  x.monitors.emplace(monitor, target);
  target->RequestWatch(this, DownFactory{make_down, monitor, /*urgent=*/false, exit_reason_if_late});
  return monitor;
}

bool ActorCell::Demonitor(uint64_t monitor) {
  if (extras_ == nullptr) return false;
  auto it = extras_->monitors.find(monitor);
  if (it == extras_->monitors.end()) return false;
  ActorCell* target = it->second;
  extras_->monitors.erase(it);
  target->RequestUnwatch(this, monitor);
  target->Release();
  return true;
}

bool ActorCell::TakeMonitor(uint64_t monitor) {
  if (extras_ == nullptr) return false;
  auto it = extras_->monitors.find(monitor);
  if (it == extras_->monitors.end()) return false;
  it->second->Release();
  extras_->monitors.erase(it);
  return true;
}

void ActorCell::AddTimer(TimerId id) {
  if (!id) return;
  Extras& x = extras();
  x.timers.insert(id);
  if (x.timers.size() < x.prune_timers_at) return;
  // Forget one-shot timers that have fired (amortised: the set doubles
  // between prunes).
  TimerService& timers = core_->timers();
  absl::erase_if(x.timers, [&](TimerId t) { return !timers.IsPending(t); });
  x.prune_timers_at = std::max<size_t>(16, 2 * x.timers.size());
}

bool ActorCell::CancelTimer(TimerId id) {
  if (extras_ != nullptr) extras_->timers.erase(id);
  return core_->timers().Cancel(id);
}

ScopedCurrentActor::ScopedCurrentActor(ActorCell* cell) noexcept : previous_context_(CurrentContext()) {
  CurrentContext() = cell;
}

ScopedCurrentActor::~ScopedCurrentActor() { CurrentContext() = previous_context_; }

// Every ContinuationContext is an ActorCell.
ActorCell* CurrentActor() noexcept { return static_cast<ActorCell*>(CurrentContext()); }

ActorCell*& ConstructingCell() noexcept {
  thread_local ActorCell* cell = nullptr;  // per thread: set around a constructor
  return cell;
}

}  // namespace troupe::internal
