// Inbox: an actor's mailbox. Lock-free, many producers, one consumer.
//
// The shared part is a single atomic word, `head_`, that is either a tag or
// the top of a stack (LIFO) of pushed messages. Producers push with one CAS.
// The consumer takes the whole stack with one exchange and reverses it into a
// private FIFO list, so messages come out in push order; per producer this is
// send order. The same word carries the scheduling state, so a push learns in
// the same CAS whether it must schedule the actor:
//
//   kIdle     empty, and the actor is not scheduled. The next push returns
//             kScheduleNow: that producer, and only it, schedules the actor.
//   kRunning  empty (0), and the actor is scheduled or running; pushes return
//             kQueued and the consumer will find them.
//   <ptr>     messages waiting; the actor is scheduled or running.
//   kClosed   the actor has stopped; pushes return kClosed and keep their
//             message (the caller bounces it).
//
//   kIdle --push--> <ptr> --TakeAll--> kRunning --TryBlock--> kIdle
//   any state but kClosed --Close--> kClosed (final)
//
// So an actor is scheduled exactly once per transition from idle to non-empty,
// never twice at a time.
//
// Who may call what: Push from any thread. Everything else only from the
// consumer, the one thread that runs the actor at a time.
//
// Memory: 16 bytes (the shared word and the consumer's private list head).
//
// Memory ordering:
// - Push's successful CAS is a release: it publishes the message's payload and
//   next_ link. It pairs with the acquire exchange in Pop (TakeAll) and Close.
// - Push's successful CAS is also an acquire: when it replaces kIdle it
//   synchronizes with the release CAS in TryBlock, so everything the actor did
//   in its last turn happens-before the turn this producer schedules (the run
//   queue's own release/acquire carries it on to the worker).
// - A failed CAS in Push is relaxed: the value read is only compared with the
//   tags and stored as a link; nothing is read through it.

#ifndef TROUPE_MAILBOX_INBOX_H_
#define TROUPE_MAILBOX_INBOX_H_

#include <atomic>
#include <cstdint>

#include "mailbox/message.h"

namespace troupe {

class Inbox {
 public:
  enum class PushResult {
    kQueued,       // the actor is already scheduled or running
    kScheduleNow,  // the inbox was idle: the caller must schedule the actor
    kClosed,       // the actor has stopped; the caller still owns the message
  };

  // `scheduled` = true starts in kRunning (the creator schedules the actor
  // itself, e.g. to run a start hook); false starts idle.
  explicit Inbox(bool scheduled = false) noexcept : head_(scheduled ? kRunning : kIdle) {}
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Before the inbox is shared only: moves an idle inbox to kRunning, for a
  // creator that schedules the actor itself.
  void StartScheduled() noexcept { head_.store(kRunning, std::memory_order_relaxed); }

  // Any thread. On kQueued and kScheduleNow the inbox owns `m`.
  PushResult Push(Message* m) noexcept {
    uintptr_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      if (head == kClosed) return PushResult::kClosed;
      m->next_ = IsTag(head) ? nullptr : reinterpret_cast<Message*>(head);
      // Success: release publishes *m, acquire pairs with TryBlock's release.
      // Failure: relaxed, see the header comment.
      if (head_.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(m),
                                      std::memory_order_acq_rel, std::memory_order_relaxed)) {
        return head == kIdle ? PushResult::kScheduleNow : PushResult::kQueued;
      }
    }
  }

  // Consumer only. The next message in FIFO order, or nullptr if none is
  // waiting (the inbox then stays kRunning: call TryBlock to go idle).
  Message* Pop() noexcept {
    if (local_ == nullptr && !TakeAll()) return nullptr;
    Message* m = local_;
    local_ = m->next_;
    m->next_ = nullptr;
    return m;
  }

  // Consumer only. True if Pop would return a message.
  bool HasMessages() const noexcept {
    if (local_ != nullptr) return true;
    // Relaxed: a hint only; Pop's exchange does the synchronizing.
    const uintptr_t head = head_.load(std::memory_order_relaxed);
    return !IsTag(head);
  }

  // Consumer only, with nothing left to Pop. Marks the inbox idle so the next
  // push schedules the actor. False if a message arrived meanwhile: the
  // consumer is still responsible for it.
  bool TryBlock() noexcept {
    if (local_ != nullptr) return false;
    uintptr_t expected = kRunning;
    // Release: pairs with the acquire in Push that replaces kIdle.
    return head_.compare_exchange_strong(expected, kIdle, std::memory_order_release,
                                         std::memory_order_relaxed);
  }

  // Consumer only (or any thread once no consumer can run). Closes the inbox
  // for good and returns every message still in it, in FIFO order.
  MessageList Close() noexcept {
    MessageList rest;
    while (local_ != nullptr) {
      Message* m = local_;
      local_ = m->next_;
      rest.PushBack(m);
    }
    // Acquire: pairs with Push's release, so the messages are complete.
    // seq_cst (the same instruction on x86): one side of the registry's
    // Dekker pair with IsClosedSeqCst (actors/registry.h).
    const uintptr_t head = head_.exchange(kClosed, std::memory_order_seq_cst);
    if (!IsTag(head)) {
      Message* stack = reinterpret_cast<Message*>(head);
      Message* fifo = Reverse(stack);
      rest.Append(fifo, stack);  // after reversal the old top is the tail
    }
    return rest;
  }

  // Any thread; a snapshot that may be stale by the time it returns.
  bool IsClosed() const noexcept { return head_.load(std::memory_order_relaxed) == kClosed; }
  // The same, seq_cst: ordered with Close and with other seq_cst operations
  // in their single total order.
  bool IsClosedSeqCst() const noexcept { return head_.load(std::memory_order_seq_cst) == kClosed; }
  // The same, acquire: once true, what the consumer wrote before Close is
  // visible.
  bool IsClosedAcquire() const noexcept { return head_.load(std::memory_order_acquire) == kClosed; }

 private:
  static constexpr uintptr_t kRunning = 0;
  static constexpr uintptr_t kIdle = 1;
  static constexpr uintptr_t kClosed = 2;
  static_assert(alignof(Message) > kClosed, "tags must not be valid message addresses");

  static bool IsTag(uintptr_t head) noexcept { return head <= kClosed; }

  static Message* Reverse(Message* stack) noexcept {
    Message* fifo = nullptr;
    while (stack != nullptr) {
      Message* next = stack->next_;
      stack->next_ = fifo;
      fifo = stack;
      stack = next;
    }
    return fifo;
  }

  // Moves everything pushed so far into local_. Consumer only.
  bool TakeAll() noexcept {
    // Relaxed pre-check avoids an RMW on an empty inbox.
    if (IsTag(head_.load(std::memory_order_relaxed))) return false;
    // Acquire: pairs with Push's release CAS.
    const uintptr_t head = head_.exchange(kRunning, std::memory_order_acquire);
    if (IsTag(head)) return false;  // cannot happen for a running consumer
    local_ = Reverse(reinterpret_cast<Message*>(head));
    return true;
  }

  // The shared word: a tag or the top of the pushed stack. Written by
  // producers (Push) and the consumer (TakeAll, TryBlock, Close).
  std::atomic<uintptr_t> head_;
  // The consumer's FIFO of taken messages. Consumer only.
  Message* local_ = nullptr;
};

}  // namespace troupe

#endif  // TROUPE_MAILBOX_INBOX_H_
