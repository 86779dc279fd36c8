#include "actors/supervisor.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace troupe {

Supervisor::Supervisor(SupervisorOptions options) : options_(std::move(options)) {}

void Supervisor::OnStart() {
  for (ChildSpec& spec : options_.children) {
    children_.emplace_back();
    children_.back().spec = spec;
    if (absl::Status s = StartOne(children_.back()); !s.ok()) {
      // As OTP: a child that cannot start fails its supervisor's start.
      children_.pop_back();
      Stop(absl::InternalError(absl::StrCat("supervisor: child '", spec.name, "' failed to start: ", s.message())));
      return;
    }
  }
}

absl::Status Supervisor::StartOne(Child& child) {
  try {
    child.ref = child.spec.start(Self().cell());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("its constructor threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("its constructor threw an exception not derived from std::exception");
  }
  child.state = State::kRunning;
  child.started = Now();
  return absl::OkStatus();
}

Supervisor::Child* Supervisor::Find(internal::ActorCell* cell) {
  for (Child& c : children_) {
    if (c.ref.cell() == cell) return &c;
  }
  return nullptr;
}

Supervisor::Child* Supervisor::FindByName(const std::string& name) {
  for (Child& c : children_) {
    if (c.spec.name == name) return &c;
  }
  return nullptr;
}

absl::StatusOr<ActorRef> Supervisor::On(const GetChild& m) {
  Child* c = FindByName(m.name);
  if (c == nullptr || !c->ref) return absl::NotFoundError(absl::StrCat("supervisor has no child '", m.name, "'"));
  return c->ref;
}

absl::StatusOr<ActorRef> Supervisor::On(const StartChild& m) {
  if (FindByName(m.spec.name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("supervisor already has a child '", m.spec.name, "'"));
  }
  children_.emplace_back();
  children_.back().spec = m.spec;
  if (absl::Status s = StartOne(children_.back()); !s.ok()) {
    children_.pop_back();
    return absl::Status(s.code(), absl::StrCat("child '", m.spec.name, "' failed to start: ", s.message()));
  }
  return children_.back().ref;
}

absl::Status Supervisor::On(const TerminateChild& m) {
  Child* c = FindByName(m.name);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("supervisor has no child '", m.name, "'"));
  c->forget_when_gone = true;
  std::erase(group_, c);
  StopForGood(*c, absl::CancelledError("terminated by its supervisor"), /*now=*/false);
  return absl::OkStatus();
}

void Supervisor::HandleChildEvent(internal::ActorCell* cell, const absl::Status& reason, bool ended) noexcept {
  Child* child = Find(cell);
  if (child == nullptr) return;
  if (ended) {
    if (child->shutdown_timer) CancelTimer(child->shutdown_timer);
    std::erase(group_, child);
    child->ref = ActorRef();
    if (child->forget_when_gone || stopping_) {
      for (auto it = children_.begin(); it != children_.end(); ++it) {
        if (&*it == child) {
          children_.erase(it);
          break;
        }
      }
    }
    if (stopping_) StopNextInOrder();
    return;
  }
  // An instance ended.
  if (stopping_ || child->state == State::kStopping) return;  // our stop for good is on its way
  if (child->state == State::kRecycling) {
    child->state = State::kWaiting;
    RestartGroup();
    return;
  }
  OnInstanceEnded(*child, reason);
}

void Supervisor::OnInstanceEnded(Child& child, const absl::Status& reason) {
  child.state = State::kWaiting;
  const bool restart = child.spec.restart == Restart::kPermanent ||
                       (child.spec.restart == Restart::kTransient && !reason.ok());
  if (!restart) {
    child.forget_when_gone = true;
    StopForGood(child, reason, /*now=*/true);
    return;
  }
  // Intensity: more than max_restarts within `within` and we give up.
  const absl::Time now = Now();
  restarts_.push_back(now);
  while (!restarts_.empty() && restarts_.front() <= now - options_.within) restarts_.pop_front();
  if (static_cast<int>(restarts_.size()) > options_.max_restarts) {
    GiveUp(child, reason);
    return;
  }
  log().info("supervisor: restarting child '{}' ({}): {}", child.spec.name, child.spec.type_name, reason.ToString());
  // Who restarts with it.
  group_.clear();
  bool after = false;
  for (Child& c : children_) {
    const bool self = &c == &child;
    after = after || self;
    const bool joins = self || options_.strategy == Strategy::kOneForAll ||
                       (options_.strategy == Strategy::kRestForOne && after);
    if (!joins || !c.ref) continue;
    group_.push_back(&c);
    if (!self && c.state == State::kRunning) {
      c.state = State::kRecycling;
      c.ref.cell()->RequestStopNow(
          absl::CancelledError(absl::StrCat("restarting with its sibling '", child.spec.name, "'")));
    }
  }
  const absl::Duration delay = NextDelay(child);
  ++round_;
  restart_due_ = delay <= absl::ZeroDuration();
  if (!restart_due_) SendAfter(delay, Self(), internal::RestartDue{round_});
  RestartGroup();
}

absl::Duration Supervisor::NextDelay(Child& child) {
  if (!options_.backoff.has_value()) return absl::ZeroDuration();
  const Backoff& b = *options_.backoff;
  const absl::Duration reset = b.reset_after > absl::ZeroDuration() ? b.reset_after : (b.min + b.max) / 2;
  if (Now() - child.started >= reset) child.consecutive = 0;
  absl::Duration delay = b.min;
  for (int i = 0; i < child.consecutive && delay < b.max; ++i) delay *= 2;
  delay = std::min(delay, b.max);
  ++child.consecutive;
  if (b.random_factor > 0) delay *= 1.0 + absl::Uniform(random_, 0.0, b.random_factor);
  return delay;
}

void Supervisor::On(const internal::RestartDue& m) {
  if (m.round != round_) return;
  restart_due_ = true;
  RestartGroup();
}

void Supervisor::RestartGroup() {
  if (group_.empty() || !restart_due_) return;
  for (Child* c : group_) {
    if (c->state != State::kWaiting) return;  // a sibling is still ending its instance
  }
  // In start order (group_ is).
  for (Child* c : group_) {
    c->state = State::kRunning;
    c->started = Now();
    c->ref.cell()->RequestRestart();
  }
  group_.clear();
}

void Supervisor::GiveUp(const Child& child, const absl::Status& reason) {
  const absl::Status escalated = absl::InternalError(
      absl::StrCat("supervisor gave up: child '", child.spec.name, "' needed more than ", options_.max_restarts,
                   " restarts within ", absl::FormatDuration(options_.within), "; last: ", reason.ToString()));
  log().error("{}", std::string(escalated.message()));
  group_.clear();
  Stop(escalated);  // StopChildrenInOrder stops the children first
}

void Supervisor::StopForGood(Child& child, const absl::Status& reason, bool now) {
  if (!child.ref || child.state == State::kStopping) {
    if (now && child.ref) child.ref.cell()->RequestStopForGood(reason, /*now=*/true);
    return;
  }
  child.state = State::kStopping;
  if (now || child.spec.shutdown <= absl::ZeroDuration()) {
    child.ref.cell()->RequestStopForGood(reason, /*now=*/true);
    return;
  }
  child.ref.cell()->RequestStopForGood(reason, /*now=*/false);
  if (child.spec.shutdown == absl::InfiniteDuration()) return;
  // Past its shutdown time the child is stopped immediately. Straight from
  // the timer thread: this supervisor may itself be stopping, when its own
  // messages no longer run.
  TimerService& timers = Self().cell()->core().timers();
  child.shutdown_timer = timers.Schedule(timers.Now() + child.spec.shutdown, [ref = child.ref, reason] {
    ref.cell()->RequestStopForGood(reason, /*now=*/true);
  });
}

bool Supervisor::StopChildrenInOrder(bool now) noexcept {
  stopping_ = true;
  stop_now_ = stop_now_ || now;
  group_.clear();
  StopNextInOrder();
  return true;
}

void Supervisor::StopNextInOrder() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (!it->ref) continue;
    // One at a time: the last one still there.
    StopForGood(*it, absl::CancelledError("its supervisor stopped"), stop_now_);
    return;
  }
}

}  // namespace troupe
