// Task<T>: the return type of a coroutine handler.
//
//   troupe::Task<int64_t> On(const Sync& s) {
//     troupe::Result<int64_t> theirs = co_await s.peer.Ask(Get{});
//     co_return n + theirs.value_or(0);
//   }
//
// A handler returning Task<T> replies T to an ask (co_return a T, an
// absl::StatusOr<T>, or for Task<void> nothing or an absl::Status). Inside it,
// `co_await future` suspends until the future completes and yields its
// Result<U> (a StatusOr, never an exception).
//
// While a coroutine handler is suspended, its actor keeps processing other
// messages (they may change the actor's state across the co_await). To hold
// every other message back until the reply arrives instead, await
// `troupe::Exclusive(future)`: the actor then runs nothing but system
// messages until this coroutine resumes; held messages run afterwards, in
// their original order.
//
// Resumption always happens in the actor's context, through its mailbox. If
// the actor stops while a coroutine is suspended, the coroutine is destroyed
// without resuming as the actor stops — also when the awaited future never
// completes (its locals are destroyed; an ask it was answering fails with
// Cancelled). An exception escaping the coroutine fails the actor, as a
// throwing plain handler does, and fails the ask with Internal.
//
// Lifetime: the message a coroutine handler received stays alive until the
// coroutine finishes, so taking it by const reference is safe.
//
// Task is move-only and started by the runtime; user code does not resume
// or await Tasks directly (to compose, return a Future from a helper).
//
// GCC 12 caveat: a lambda with captures written inside a co_await
// expression has its captures destroyed twice (a compiler bug, reproduced
// without troupe). Bind such a lambda, or the future made from it, to a
// local first:
//
//   Future<int> job = Blocking([gate] { return Work(gate); });
//   Result<int> r = co_await std::move(job);

#ifndef TROUPE_ACTORS_TASK_H_
#define TROUPE_ACTORS_TASK_H_

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "actors/future.h"

namespace troupe {

template <class T>
class Task;

namespace internal {

// How the runtime learns a Task finished: its result, and the exception
// that escaped it (or null).
template <class T>
using TaskDone = absl::AnyInvocable<void(Result<T>&&, std::exception_ptr) &&>;

template <class T>
class TaskPromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      P& promise = h.promise();
      TaskDone<T> done = std::move(promise.done_);
      std::exception_ptr error = promise.error_;
      Result<T> result = error ? Result<T>(absl::InternalError("coroutine handler threw"))
                               : std::move(*promise.result_);
      h.destroy();
      std::move(done)(std::move(result), error);
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  TaskDone<T> done_;
  std::exception_ptr error_;
  std::optional<Result<T>> result_;
};

template <class T>
class TaskPromise : public TaskPromiseBase<T> {
 public:
  Task<T> get_return_object() noexcept;
  template <class V>
  void return_value(V&& value) {
    this->result_.emplace(Result<T>(std::forward<V>(value)));
  }
};

template <>
class TaskPromise<void> : public TaskPromiseBase<void> {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() { result_.emplace(absl::OkStatus()); }
};

// Suspends a coroutine on a future. In an actor, the resumption travels
// through the actor's mailbox as a message that lives inside the awaiter
// (so inside the coroutine frame): an await allocates nothing of its own.
// If the actor stops while the coroutine waits, the awaiter is withdrawn
// from the future and the frame destroyed then; if the result was already
// on its way, the message bounces, which destroys the frame.
template <class U>
class FutureAwaiter {
 public:
  FutureAwaiter(Future<U>&& future, bool exclusive)
      : future_(std::move(future)), resume_(this, exclusive) {}
  FutureAwaiter(const FutureAwaiter&) = delete;
  FutureAwaiter& operator=(const FutureAwaiter&) = delete;

  bool await_ready() const noexcept { return future_.ready(); }

  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    ContinuationContext* context = CurrentContext();
    if (context == nullptr) {
      // Not in an actor: resume on the completing thread, outside any
      // actor's context.
      std::move(future_).OnCompleteInline([this](Result<U>&& r) {
        result_.emplace(std::move(r));
        ScopedNoContext outside;
        handle_.resume();
      });
      return;
    }
    if (resume_.kind() == Message::Kind::kExclusiveResume) context->BeginExclusiveWait();
    context->RetainContext();
    context_ = context;
    context->AddPending(&resume_);
    future_.SetCallbackKeepingChannel([this](Result<U>&& r) {
      result_.emplace(std::move(r));
      // Posting may resume and finish the coroutine on another thread,
      // destroying this awaiter: read what we need first.
      ContinuationContext* target = context_;
      target->PostMessage(&resume_);
      target->ReleaseContext();
    });
  }

  Result<U> await_resume() {
    if (result_.has_value()) return std::move(*result_);
    return future_.Take();
  }

 private:
  class Resume final : public PendingContinuation {
   public:
    Resume(FutureAwaiter* awaiter, bool exclusive)
        : PendingContinuation(exclusive ? Kind::kExclusiveResume : Kind::kResume), awaiter_(awaiter) {}
    // The coroutine frame owns this message; resuming may finish the
    // coroutine and free it, so nothing touches `this` afterwards.
    void Deliver(void*) override { awaiter_->handle_.resume(); }
    bool Bounce(const absl::Status&) noexcept override {
      awaiter_->handle_.destroy();
      return false;
    }
    bool Withdraw() noexcept override {
      if (!awaiter_->future_.WithdrawCallback()) return false;
      ContinuationContext* context = awaiter_->context_;
      awaiter_->handle_.destroy();  // frees this message
      context->ReleaseContext();
      return true;
    }

   private:
    FutureAwaiter* const awaiter_;
  };

  Future<U> future_;
  Resume resume_;
  std::coroutine_handle<> handle_;
  ContinuationContext* context_ = nullptr;
  std::optional<Result<U>> result_;
};

template <class U>
struct ExclusiveFuture {
  Future<U> future;
};

}  // namespace internal

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::TaskPromise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  // Runtime only: runs the coroutine to its first suspension; `done` runs
  // when it finishes (possibly before Start returns).
  void Start(internal::TaskDone<T> done) && {
    std::coroutine_handle<promise_type> h = std::exchange(h_, nullptr);
    h.promise().done_ = std::move(done);
    h.resume();
  }

 private:
  friend class internal::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

  std::coroutine_handle<promise_type> h_;
};

namespace internal {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

template <class R>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};

}  // namespace internal

// `co_await future` in a coroutine handler: other messages keep running.
template <class U>
internal::FutureAwaiter<U> operator co_await(Future<U>&& future) {
  return internal::FutureAwaiter<U>(std::move(future), /*exclusive=*/false);
}

// `co_await troupe::Exclusive(future)`: nothing else runs until it resumes.
template <class U>
internal::ExclusiveFuture<U> Exclusive(Future<U> future) {
  return {std::move(future)};
}

template <class U>
internal::FutureAwaiter<U> operator co_await(internal::ExclusiveFuture<U>&& f) {
  return internal::FutureAwaiter<U>(std::move(f.future), /*exclusive=*/true);
}

}  // namespace troupe

#endif  // TROUPE_ACTORS_TASK_H_
