// Future<T> and Promise<T>: a one-shot reply channel.
//
// A Promise is the writing end, a Future the reading end, of a channel that
// carries exactly one Result<T>: a value or an absl::Status error. The pair
// costs one allocation (a shared state both ends point to). The first of the
// completions wins — a reply, an error, a deadline, the promise being dropped
// — and every later one is ignored, so an ask ends exactly once.
//
// Result<T> is absl::StatusOr<T>, or absl::Status for Future<void>.
//
// Who may call what:
// - Promise: any thread, once (later completions return false). Dropping an
//   uncompleted promise completes the future with Cancelled.
// - Future: one consumer, and one way to consume it:
//     Wait(timeout)  blocks; for threads outside actors. Called inside an
//                    actor it returns FailedPrecondition at once rather than
//                    deadlock the worker.
//     Then(fn)       inside an actor, fn runs later in that actor's context,
//                    delivered through its mailbox, never on a foreign
//                    thread; if the actor stops first, fn is destroyed
//                    unrun. Outside actors fn runs on the thread that
//                    completes the promise (or at once if already
//                    complete), outside any actor's context even when that
//                    thread is a worker running an actor: a Then, Wait or
//                    remote send in fn behaves as on a plain thread. Keep
//                    such fn short. An exception escaping fn fails the
//                    future Then returned with Internal; inside an actor it
//                    also fails the actor, as a throwing handler does.
//     co_await       inside a coroutine handler (see actors/task.h).
//     Take()         non-blocking: the result if ready, else
//                    FailedPrecondition. For the deterministic testkit.
//
// Error codes used across troupe: DeadlineExceeded (deadline passed),
// Unavailable or NotFound (target gone), Cancelled (shutdown, or the promise
// was dropped), Internal (the handler threw; the message carries its text).
//
// Memory ordering (SharedState::state_, one word of flag bits):
// - kClaimed: set by the one completer that wins (fetch_or, acq_rel). Its
//   result_ write happens after the claim, then kDone is set with a release
//   RMW that publishes result_.
// - kCallback: set by the consumer after writing callback_ (release RMW,
//   publishes callback_). Whichever of {completer's kDone, consumer's
//   kCallback} RMW comes second in the word's modification order sees the
//   other's bit and runs the callback; its RMW is an acquire, so it sees
//   both result_ and callback_.
// - kArmed: the same handshake for a deadline canceller between its owner
//   (SetCanceller) and the completer's claim.
// - kWaiter: a blocked Wait; the completer wakes the futex only when set.

#ifndef TROUPE_ACTORS_FUTURE_H_
#define TROUPE_ACTORS_FUTURE_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "mailbox/message.h"
#include "mailbox/message_cache.h"
#include "scheduler/futex.h"

namespace troupe {

template <class T>
using Result = std::conditional_t<std::is_void_v<T>, absl::Status, absl::StatusOr<T>>;

template <class T>
class Future;
template <class T>
class Promise;

namespace internal {

class PendingContinuation;

// Where continuations of the current thread's actor go. The actor layer
// implements it and sets the thread's current context while an actor runs.
class ContinuationContext {
 public:
  // Actor context only: lists `c`, a continuation waiting for a future, so
  // that if the actor stops first it withdraws `c` from its future (see
  // PendingContinuation). The actor unlists it when `c` is delivered.
  virtual void AddPending(PendingContinuation* c) noexcept = 0;
  // Queues `m` (a continuation: Message::Kind::kResume or
  // kExclusiveResume) to run later in this actor's context. Any thread. If
  // the actor has stopped, `m` is bounced instead.
  virtual void PostMessage(Message* m) noexcept = 0;
  // Actor context only: until the next exclusive continuation runs, the
  // actor runs nothing else but system messages; other messages wait in order.
  virtual void BeginExclusiveWait() noexcept = 0;
  // Keeps the context alive while a continuation is outstanding.
  virtual void RetainContext() noexcept = 0;
  virtual void ReleaseContext() noexcept = 0;

 protected:
  ~ContinuationContext() = default;
};

// The context of the actor running on this thread, or nullptr.
ContinuationContext*& CurrentContext() noexcept;

// RAII: runs the enclosed code outside any actor's context. For callbacks
// registered outside actors that run on a thread that may be in an actor's
// turn (the thread completing a promise).
class ScopedNoContext {
 public:
  ScopedNoContext() noexcept : saved_(std::exchange(CurrentContext(), nullptr)) {}
  ScopedNoContext(const ScopedNoContext&) = delete;
  ScopedNoContext& operator=(const ScopedNoContext&) = delete;
  ~ScopedNoContext() { CurrentContext() = saved_; }

 private:
  ContinuationContext* const saved_;
};

// A continuation (Then, co_await) of an actor, waiting for a future: a
// message of kind kResume or kExclusiveResume that the future's completion
// posts to the actor. The actor keeps a list of them (intrusive, actor
// context only) so that a future that never completes does not keep a
// stopped actor's continuations, coroutine frames and cell alive.
class PendingContinuation : public Message {
 public:
  // Actor context, as the actor stops; the actor has already unlisted this.
  // Withdraws the continuation from its future. True: the future will never
  // run it, and this call destroyed it. False: the future has completed and
  // posts (or has posted) it to the actor, whose closed mailbox bounces it.
  virtual bool Withdraw() noexcept = 0;

  // The actor's list.
  PendingContinuation* pending_prev = nullptr;
  PendingContinuation* pending_next = nullptr;
  bool listed = false;
  // Set by the actor when Withdraw failed as the instance it belongs to
  // ended: when it arrives it is bounced, never run (a supervised actor's
  // next instance must not resume its predecessor's coroutines).
  bool orphaned = false;

 protected:
  explicit PendingContinuation(Kind kind) noexcept : Message(kind) {}
};

// The status of an exception caught at a boundary: Internal with its text.
// `where` names what threw ("the handler", "a Then callback").
absl::Status ExceptionStatus(std::exception_ptr error, std::string_view where = "the handler");

// Returns FailedPrecondition if the calling thread runs an actor, which must
// never block. `what` names the blocking call.
absl::Status CheckMayBlock(const char* what);

template <class T>
class SharedState {
 public:
  using Callback = absl::AnyInvocable<void(Result<T>&&) &&>;

  SharedState() = default;
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  // Recycled through the worker's cache like messages (message_cache.h).
  static void* operator new(size_t bytes) { return CachedAllocate(bytes); }
  static void operator delete(void* block, size_t bytes) noexcept { CachedFree(block, bytes); }

  void Ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }  // count only
  void Unref() noexcept {
    // acq_rel: the last owner must see every other owner's writes.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Any thread. True if this call completed the channel.
  bool TryComplete(Result<T>&& result) noexcept {
    uint32_t prev = state_.fetch_or(kClaimed, std::memory_order_acq_rel);
    if (prev & kClaimed) return false;
    if (prev & kArmed) std::move(canceller_)();
    result_.emplace(std::move(result));
    // Release publishes result_; acquire pairs with SetCallback's release.
    prev = state_.fetch_or(kDone, std::memory_order_acq_rel);
    if (prev & kCallback) std::move(callback_)(TakeResult());
    if (prev & kWaiter) internal::FutexWake(&state_);
    return true;
  }

  // Consumer only, once. Runs `callback` with the result on the completing
  // thread, or at once if already complete.
  void SetCallback(Callback callback) noexcept {
    callback_ = std::move(callback);
    // Release publishes callback_; acquire pairs with TryComplete's kDone.
    const uint32_t prev = state_.fetch_or(kCallback, std::memory_order_acq_rel);
    if (prev & kDone) std::move(callback_)(TakeResult());
  }

  // Consumer only, after SetCallback. Takes the callback back unless the
  // channel has completed: true if it will never run (it is destroyed
  // here), false if it has run or is running on the completing thread.
  bool TryWithdrawCallback() noexcept {
    uint32_t s = state_.load(std::memory_order_acquire);
    while (!(s & kDone)) {
      // Acquire-release pairs with TryComplete's kDone RMW: whichever comes
      // second in the word's order decides; a completer that comes second
      // sees no kCallback and leaves callback_ alone.
      if (state_.compare_exchange_weak(s, s & ~kCallback, std::memory_order_acq_rel, std::memory_order_acquire)) {
        callback_ = nullptr;
        return true;
      }
    }
    return false;
  }

  // Owner of a deadline, once: `cancel` runs exactly once if the channel
  // completes by other means — here if it already has, else in the completer.
  void SetCanceller(absl::AnyInvocable<void() &&> cancel) noexcept {
    canceller_ = std::move(cancel);
    const uint32_t prev = state_.fetch_or(kArmed, std::memory_order_acq_rel);
    if (prev & kClaimed) std::move(canceller_)();
  }

  bool ready() const noexcept { return state_.load(std::memory_order_acquire) & kDone; }

  // Consumer only. Blocks until complete or `deadline`; true if complete.
  bool WaitUntil(absl::Time deadline) noexcept {
    uint32_t s = state_.fetch_or(kWaiter, std::memory_order_acq_rel);
    while (!(s & kDone)) {
      const absl::Duration left =
          deadline == absl::InfiniteFuture() ? absl::InfiniteDuration() : deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      internal::FutexWait(&state_, s | kWaiter, left);
      s = state_.load(std::memory_order_acquire);  // pairs with kDone's release
    }
    return true;
  }

  // Consumer only, after ready().
  Result<T> TakeResult() noexcept {
    Result<T> r = std::move(*result_);
    result_.reset();
    return r;
  }

 private:
  static constexpr uint32_t kClaimed = 1;
  static constexpr uint32_t kDone = 2;
  static constexpr uint32_t kCallback = 4;
  static constexpr uint32_t kWaiter = 8;
  static constexpr uint32_t kArmed = 16;

  ~SharedState() = default;

  // Promise, Future and any deadline timer each hold one.
  std::atomic<uint32_t> refs_{1};
  // Flag bits above; see the header comment for who sets which.
  std::atomic<uint32_t> state_{0};
  // Written by the winning completer between kClaimed and kDone.
  std::optional<Result<T>> result_;
  // Written by the consumer before kCallback.
  Callback callback_;
  // Written by the deadline's owner before kArmed.
  absl::AnyInvocable<void() &&> canceller_;
};

// A continuation that runs `fn(result)` in an actor's context: one
// allocation holding both, posted to the actor's mailbox once the result is
// in. Dropped unrun (destroying `fn`) if the actor stops first: withdrawn
// from the future as it stops, or bounced if the result was already on its
// way.
template <class T, class Fn>
class ThenMessage final : public PendingContinuation {
 public:
  ThenMessage(Fn fn, SharedState<T>* state, ContinuationContext* context)
      : PendingContinuation(Kind::kResume), fn_(std::move(fn)), state_(state), context_(context) {
    state_->Ref();
    context_->RetainContext();
  }
  ~ThenMessage() override { state_->Unref(); }

  // Actor context: registers with the actor, then with the future (which may
  // post at once if it is complete).
  void Arm() noexcept {
    context_->AddPending(this);
    // Two pointers: fits AnyInvocable's inline storage, no allocation.
    state_->SetCallback([this](Result<T>&& result) { Post(std::move(result)); });
  }

  void Deliver(void*) override {
    std::unique_ptr<ThenMessage> self(this);
    std::move(fn_)(std::move(*result_));
  }
  bool Bounce(const absl::Status&) noexcept override {
    delete this;
    return false;
  }
  bool Withdraw() noexcept override {
    if (!state_->TryWithdrawCallback()) return false;
    ContinuationContext* context = context_;
    delete this;
    context->ReleaseContext();
    return true;
  }

 private:
  // Called on the completing thread: stores the result and posts. Posting
  // may run and free this message at once: read the context first.
  void Post(Result<T>&& result) noexcept {
    result_.emplace(std::move(result));
    ContinuationContext* context = context_;
    context->PostMessage(this);
    context->ReleaseContext();
  }

  Fn fn_;
  SharedState<T>* const state_;  // holds a reference
  ContinuationContext* const context_;
  std::optional<Result<T>> result_;
};

// Runs `fn(result)` in the current actor's context if there is one, else
// inline on the completing thread, outside any actor's context.
template <class T, class Fn>
void OnComplete(SharedState<T>* state, Fn&& fn) {
  ContinuationContext* context = CurrentContext();
  if (context == nullptr) {
    state->SetCallback([fn = std::forward<Fn>(fn)](Result<T>&& result) mutable {
      ScopedNoContext outside;
      std::move(fn)(std::move(result));
    });
    return;
  }
  (new ThenMessage<T, std::decay_t<Fn>>(std::forward<Fn>(fn), state, context))->Arm();
}

template <class T>
struct FutureValueOf {
  using type = T;
};
template <class T>
struct FutureValueOf<absl::StatusOr<T>> {
  using type = T;
};
template <>
struct FutureValueOf<absl::Status> {
  using type = void;
};

// Completes `promise` with `fn(args...)`, flattening Status/StatusOr returns.
template <class T, class Fn, class... Args>
void CompleteWith(Promise<T>& promise, Fn&& fn, Args&&... args);

}  // namespace internal

template <class T>
class Future {
 public:
  using value_type = T;

  Future() = default;
  Future(Future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      Reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  ~Future() { Reset(); }

  // A future already complete with `result`.
  static Future Ready(Result<T> result) {
    Promise<T> promise;
    Future future = promise.GetFuture();
    promise.Complete(std::move(result));
    return future;
  }

  bool valid() const noexcept { return state_ != nullptr; }
  bool ready() const noexcept { return state_ != nullptr && state_->ready(); }

  // Blocks the calling thread (never an actor) until the result or
  // `timeout`. Consumes the future unless it returns DeadlineExceeded for the
  // timeout, in which case it may be waited on again.
  Result<T> Wait(absl::Duration timeout = absl::InfiniteDuration()) {
    if (state_ == nullptr) return absl::FailedPreconditionError("Wait on an empty future");
    if (absl::Status s = internal::CheckMayBlock("Future::Wait"); !s.ok()) return s;
    const absl::Time deadline =
        timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
    if (!state_->WaitUntil(deadline)) {
      return absl::DeadlineExceededError("Future::Wait timed out");
    }
    return TakeReady();
  }

  // The result if ready (consuming the future), else FailedPrecondition.
  Result<T> Take() {
    if (!ready()) return absl::FailedPreconditionError("future is not complete yet");
    return TakeReady();
  }

  // Consumes the future. See the header comment for where `fn` runs. `fn`
  // takes Result<T>; Then returns a Future of what `fn` returns (a returned
  // Status or StatusOr<U> becomes Future<void> or Future<U>).
  template <class Fn>
  auto Then(Fn&& fn) && {
    using R = std::invoke_result_t<Fn, Result<T>&&>;
    using U = typename internal::FutureValueOf<R>::type;
    Promise<U> promise;
    Future<U> next = promise.GetFuture();
    internal::SharedState<T>* state = std::exchange(state_, nullptr);
    internal::OnComplete(state, [promise = std::move(promise), fn = std::forward<Fn>(fn)](
                                    Result<T>&& result) mutable {
      try {
        internal::CompleteWith(promise, fn, std::move(result));
      } catch (...) {
        promise.SetError(internal::ExceptionStatus(std::current_exception(), "a Then callback"));
        // In an actor the exception goes on to fail it, as from a handler.
        if (internal::CurrentContext() != nullptr) throw;
      }
    });
    state->Unref();
    return next;
  }

  // For awaiters: as OnCompleteInline, but the future keeps its hold on the
  // channel, so that WithdrawCallback can take the callback back.
  void SetCallbackKeepingChannel(absl::AnyInvocable<void(Result<T>&&) &&> callback) & {
    state_->SetCallback(std::move(callback));
  }
  // After SetCallbackKeepingChannel: true if the callback will never run.
  bool WithdrawCallback() & { return state_->TryWithdrawCallback(); }

  // For awaiters and combinators: runs `callback` on the completing thread.
  void OnCompleteInline(absl::AnyInvocable<void(Result<T>&&) &&> callback) && {
    internal::SharedState<T>* state = std::exchange(state_, nullptr);
    state->SetCallback(std::move(callback));
    state->Unref();
  }

 private:
  friend class Promise<T>;
  explicit Future(internal::SharedState<T>* state) noexcept : state_(state) {}

  Result<T> TakeReady() {
    Result<T> r = state_->TakeResult();
    Reset();
    return r;
  }

  void Reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->Unref();
  }

  internal::SharedState<T>* state_ = nullptr;
};

template <class T>
class Promise {
 public:
  Promise() : state_(new internal::SharedState<T>()) {}
  Promise(Promise&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      Drop();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  // An uncompleted promise completes its future with Cancelled.
  ~Promise() { Drop(); }

  // Once per promise.
  Future<T> GetFuture() {
    state_->Ref();
    return Future<T>(state_);
  }

  // Each returns false if the channel was already complete.
  bool Complete(Result<T> result) noexcept { return state_ != nullptr && state_->TryComplete(std::move(result)); }
  template <class U = T, class V, std::enable_if_t<!std::is_void_v<U>, int> = 0>
  bool SetValue(V&& value) noexcept {
    return Complete(Result<T>(std::forward<V>(value)));
  }
  template <class U = T, std::enable_if_t<std::is_void_v<U>, int> = 0>
  bool SetValue() noexcept {
    return Complete(absl::OkStatus());
  }
  bool SetError(absl::Status status) noexcept { return Complete(Result<T>(std::move(status))); }

  bool valid() const noexcept { return state_ != nullptr; }

  // Arms a deadline: `cancel` runs once if the channel completes another way.
  // Used by ask deadlines to cancel their timer.
  void SetCanceller(absl::AnyInvocable<void() &&> cancel) { state_->SetCanceller(std::move(cancel)); }

  // A second handle on the same channel, for a deadline timer racing the
  // reply. Either may complete it; the first wins.
  Promise Share() const {
    state_->Ref();
    return Promise(state_);
  }

 private:
  explicit Promise(internal::SharedState<T>* state) noexcept : state_(state) {}

  void Drop() noexcept {
    if (state_ == nullptr) return;
    state_->TryComplete(Result<T>(absl::CancelledError("the promise was dropped before it was completed")));
    std::exchange(state_, nullptr)->Unref();
  }

  internal::SharedState<T>* state_ = nullptr;
};

namespace internal {

template <class T, class Fn, class... Args>
void CompleteWith(Promise<T>& promise, Fn&& fn, Args&&... args) {
  using R = std::invoke_result_t<Fn, Args&&...>;
  if constexpr (std::is_void_v<R>) {
    std::forward<Fn>(fn)(std::forward<Args>(args)...);
    promise.SetValue();
  } else {
    promise.Complete(Result<T>(std::forward<Fn>(fn)(std::forward<Args>(args)...)));
  }
}

}  // namespace internal

// Completes when every input has: with each input's result, in input order.
template <class T>
Future<std::vector<Result<T>>> WhenAll(std::vector<Future<T>> futures) {
  struct Join {
    explicit Join(size_t n) : results(n), pending(n) {}
    std::vector<std::optional<Result<T>>> results;
    std::atomic<size_t> pending;
    Promise<std::vector<Result<T>>> promise;
  };
  auto join = std::make_shared<Join>(futures.size());
  Future<std::vector<Result<T>>> all = join->promise.GetFuture();
  if (futures.empty()) {
    join->promise.SetValue(std::vector<Result<T>>());
    return all;
  }
  for (size_t i = 0; i < futures.size(); ++i) {
    std::move(futures[i]).OnCompleteInline([join, i](Result<T>&& r) {
      join->results[i].emplace(std::move(r));
      // acq_rel: the last one sees every slot written by the others.
      if (join->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::vector<Result<T>> out;
        out.reserve(join->results.size());
        for (auto& slot : join->results) out.push_back(std::move(*slot));
        join->promise.SetValue(std::move(out));
      }
    });
  }
  return all;
}

// Completes with the first input to complete: its index and its result.
// Fails with InvalidArgument for no inputs.
template <class T>
Future<std::pair<size_t, Result<T>>> WhenAny(std::vector<Future<T>> futures) {
  using Out = std::pair<size_t, Result<T>>;
  Promise<Out> promise;
  Future<Out> any = promise.GetFuture();
  if (futures.empty()) {
    promise.SetError(absl::InvalidArgumentError("WhenAny of no futures"));
    return any;
  }
  auto shared = std::make_shared<Promise<Out>>(std::move(promise));
  for (size_t i = 0; i < futures.size(); ++i) {
    std::move(futures[i]).OnCompleteInline(
        [shared, i](Result<T>&& r) { shared->Complete(Out(i, std::move(r))); });
  }
  return any;
}

}  // namespace troupe

#endif  // TROUPE_ACTORS_FUTURE_H_
