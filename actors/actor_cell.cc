#include "actors/actor_cell.h"

#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/system_core.h"
#include "actors/wire.h"

namespace troupe::internal {
namespace {

thread_local ActorCell* current_actor = nullptr;

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
  struct Watcher {
    ActorCell* cell;  // holds a reference until Down is sent
    DownFactory make_down;
  };
  std::vector<Watcher> watchers;
  // User messages that arrived during an exclusive co_await, in order.
  MessageList deferred;
  absl::Status exit_reason;
};

// Lifecycle signals between actors: system messages, never deferred.
class ActorCell::Signal final : public Message {
 public:
  enum class What { kStop, kChildStopped, kWatch };

  static Signal* Stop(absl::Status reason) {
    auto* s = new Signal(What::kStop);
    s->reason_ = std::move(reason);
    return s;
  }
  static Signal* ChildStopped(ActorCell* child) {
    auto* s = new Signal(What::kChildStopped);
    s->cell_ = child;  // the child's reference moves into the signal
    return s;
  }
  static Signal* Watch(ActorCell* watcher, DownFactory make_down, ActorCell* target) {
    auto* s = new Signal(What::kWatch);
    watcher->Retain();
    s->cell_ = watcher;
    s->make_down_ = make_down;
    s->target_ = target;
    return s;
  }

  void Deliver(void* receiver) override {
    std::unique_ptr<Signal> self(this);
    auto* cell = static_cast<ActorCell*>(receiver);
    switch (what_) {
      case What::kStop:
        cell->BeginStop(std::move(reason_));
        break;
      case What::kChildStopped:
        cell->OnChildStopped(std::exchange(cell_, nullptr));
        break;
      case What::kWatch:
        cell->AddWatcher(std::exchange(cell_, nullptr), make_down_);
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
    }
    return false;
  }

  ~Signal() override {
    if (cell_ != nullptr) cell_->Release();
  }

 private:
  explicit Signal(What what) : Message(Kind::kSystem), what_(what) {}

  What what_;
  absl::Status reason_;
  ActorCell* cell_ = nullptr;
  DownFactory make_down_ = nullptr;
  ActorCell* target_ = nullptr;  // kWatch: the actor watched
};

ActorCell::~ActorCell() {
  delete extras_;
  if (core_ != nullptr) core_->Release();
}

void ActorCell::Init(SystemCore* core, ActorId id, ActorCell* parent, bool has_start_hook) noexcept {
  core->Retain();
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
    case Inbox::PushResult::kClosed:
      if (m->Bounce(StoppedError())) core_->CountDeadLetter();
      return false;
  }
  return false;
}

void ActorCell::RequestStop(absl::Status reason) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->StopRemote(std::move(reason));
    return;
  }
  Enqueue(Signal::Stop(std::move(reason)));
}

void ActorCell::RequestWatch(ActorCell* watcher, DownFactory make_down) noexcept {
  if (is_remote()) {
    static_cast<RemoteCell*>(this)->WatchRemote(watcher, make_down);
    return;
  }
  Enqueue(Signal::Watch(watcher, make_down, this));
}

RemoteCell::RemoteCell(SystemCore* core) noexcept { InitProxy(core, core->NextProxyId()); }

void ActorCell::BeginExclusiveWait() noexcept { flags_ |= kExclusive; }

Message* ActorCell::NextMessage() noexcept {
  if (!(flags_ & kExclusive) && extras_ != nullptr && !extras_->deferred.empty()) {
    return extras_->deferred.PopFront();
  }
  while (Message* m = inbox_.Pop()) {
    if (!(flags_ & kExclusive) || m->kind() == Message::Kind::kSystem ||
        m->kind() == Message::Kind::kExclusiveResume) {
      return m;
    }
    extras().deferred.PushBack(m);  // wait until the exclusive co_await resumes
  }
  return nullptr;
}

bool ActorCell::HasRunnableMessages() const noexcept {
  if (!(flags_ & kExclusive) && extras_ != nullptr && !extras_->deferred.empty()) return true;
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

void ActorCell::Process(Message* m) noexcept {
  if ((flags_ & kStopping) && m->kind() != Message::Kind::kSystem) {
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
  if (m->Bounce(reason)) core_->CountDeadLetter();
}

void ActorCell::ApplyPendingStop() noexcept {
  if (flags_ & kStopPending) {
    flags_ &= ~kStopPending;
    BeginStop(exit_reason());
  }
}

void ActorCell::HandleFailure(const char* where, std::exception_ptr error) noexcept {
  const std::string text = Describe(error);
  core_->CountFailure();
  core_->log().error("actor {} ({}) failed: {} threw: {}", id_, type_name(), where, text);
  BeginStop(absl::InternalError(absl::StrCat(std::string(type_name()), " threw in ", where, ": ", text)));
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

absl::Status ActorCell::BounceReason() const {
  const absl::Status exit = exit_reason();
  if (core_->shutting_down() || exit.ok()) return StoppedError();
  return absl::UnavailableError(absl::StrCat("actor ", id_, " has stopped: ", exit.message()));
}

void ActorCell::BeginStop(absl::Status reason) noexcept {
  if (flags_ & kStopping) return;
  flags_ |= kStopping;
  flags_ &= ~kExclusive;
  set_exit_reason(std::move(reason));
  if (extras_ == nullptr || extras_->children.empty()) {
    FinishStop();
    return;
  }
  for (ActorCell* child : extras_->children) {
    child->RequestStop(absl::CancelledError(absl::StrCat("parent actor ", id_, " stopped")));
  }
}

void ActorCell::OnChildStopped(ActorCell* child) noexcept {
  if (extras_ != nullptr && extras_->children.erase(child) > 0) child->Release();
  child->Release();  // the signal's reference
  if ((flags_ & kStopping) && !(flags_ & kStopped) && extras_->children.empty()) FinishStop();
}

void ActorCell::FinishStop() noexcept {
  flags_ |= kStopped;
  const absl::Status reason = exit_reason();
  try {
    HandleStop(reason);
  } catch (...) {
    core_->CountFailure();
    core_->log().error("actor {} ({}) OnStop threw: {}", id_, type_name(), Describe(std::current_exception()));
  }
  MessageList rest = inbox_.Close();
  if (extras_ != nullptr) rest.Append(std::move(extras_->deferred));
  if (!rest.empty()) {
    const absl::Status bounce = BounceReason();
    while (Message* m = rest.PopFront()) BounceHere(m, bounce);
  }
  DestroyState();
  if (extras_ != nullptr) {
    for (Extras::Watcher& w : extras_->watchers) {
      w.cell->Enqueue(w.make_down(this, reason));
      w.cell->Release();
    }
    extras_->watchers.clear();
  }
  if (ActorCell* parent = parent_) {
    Retain();  // moves into the signal
    parent->Enqueue(Signal::ChildStopped(this));
  }
  core_->ActorStopped(this);
  // Run releases the alive count as this turn ends.
}

void ActorCell::AdoptChild(ActorCell* child) {
  child->Retain();
  extras().children.insert(child);
  // Spawned while we stop: it must not outlive us.
  if (flags_ & kStopping) child->RequestStop(absl::CancelledError(absl::StrCat("parent actor ", id_, " stopped")));
}

void ActorCell::AddWatcher(ActorCell* watcher, DownFactory make_down) {
  if (flags_ & kStopped) {
    watcher->Enqueue(make_down(this, exit_reason()));
    watcher->Release();
    return;
  }
  extras().watchers.push_back({watcher, make_down});
}

ScopedCurrentActor::ScopedCurrentActor(ActorCell* cell) noexcept
    : previous_context_(CurrentContext()), previous_cell_(current_actor) {
  CurrentContext() = cell;
  current_actor = cell;
}

ScopedCurrentActor::~ScopedCurrentActor() {
  CurrentContext() = previous_context_;
  current_actor = previous_cell_;
}

ActorCell* CurrentActor() noexcept { return current_actor; }

ActorCell*& ConstructingCell() noexcept {
  thread_local ActorCell* cell = nullptr;  // per thread: set around a constructor
  return cell;
}

}  // namespace troupe::internal
