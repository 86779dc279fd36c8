// Message: the envelope every message travels in inside a node.
//
// A Message is an intrusive node: the payload lives in a subclass together
// with what to do with it, so a send costs one allocation and no copy beyond
// moving the payload in, and nothing is serialized locally. The actor layer
// defines the subclasses (a tell, an ask carrying its reply promise, a
// continuation, a system signal).
//
// Ownership: whoever holds a Message* owns it. Push hands it to the mailbox;
// the mailbox's consumer gets it back from Pop and must either Deliver it or
// Bounce it. Both consume the message: it deletes itself when done, which for
// a coroutine handler is when the coroutine finishes, since the coroutine may
// still refer to the message.

#ifndef TROUPE_MAILBOX_MESSAGE_H_
#define TROUPE_MAILBOX_MESSAGE_H_

// troupe needs C++20 (concepts, coroutines). Every troupe header a program
// includes reaches this one through its includes before any code of its
// own, so for a translation unit of an older standard the first error is
// this one line, ahead of the pages about `requires` and <coroutine>
// (//actors:cxx17_test checks it).
#if __cplusplus < 202002L
#error "troupe needs C++20: compile with -std=c++20 (Bazel: build --cxxopt=-std=c++20 in .bazelrc)"
#endif

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace troupe {

class Message {
 public:
  enum class Kind : uint8_t {
    kUser,             // a tell or an ask from user code
    kResume,           // a continuation (Then, co_await) of the receiving actor
    kExclusiveResume,  // the continuation an exclusive co_await waits for
    kSystem,           // stop, child or monitor signals: never deferred
  };

  explicit Message(Kind kind) noexcept : kind_(kind) {}
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  virtual ~Message() = default;

  // Runs the message in the receiver's context and consumes it. `receiver`
  // is the actor the mailbox belongs to (type-erased; the subclass knows the
  // type). Called by the mailbox's consumer only. May throw (the message is
  // still consumed): the actor layer catches.
  virtual void Deliver(void* receiver) = 0;

  // The receiver cannot run this message (stopped, or never will): an ask
  // fails with `reason`, a tell becomes a dead letter. Consumes the message.
  // Returns true if it was a dead letter (a tell or an ask), false for
  // internal messages such as continuations.
  virtual bool Bounce(const absl::Status& reason) noexcept = 0;

  // The name of the message's type, for dead letter reports. A string with
  // static storage: still valid after Bounce destroyed the message.
  virtual std::string_view type_name() const noexcept { return "a runtime message"; }

  Kind kind() const noexcept { return kind_; }

  // Set by the sender when the message took a place in a bounded mailbox;
  // the delivery gives the place back (see Actor::kMailboxCapacity).
  bool holds_mailbox_place() const noexcept { return holds_place_; }
  void set_holds_mailbox_place() noexcept { holds_place_ = true; }

  // Message memory is recycled by the worker threads' caches
  // (mailbox/message_cache.h); blocks are always full size-class blocks of
  // the system allocator, so any thread may free any message.
  static void* operator new(size_t bytes);
  static void operator delete(void* block, size_t bytes) noexcept;

 private:
  friend class Inbox;
  friend class MessageList;

  // Link to the next message. Written by the producer before the message is
  // published by Inbox::Push (release), then only by the consumer.
  Message* next_ = nullptr;
  const Kind kind_;
  bool holds_place_ = false;  // written before Push, read by the consumer
};

// A FIFO list of messages owned by one thread (not thread-safe).
class MessageList {
 public:
  MessageList() = default;
  MessageList(MessageList&& other) noexcept : head_(other.head_), tail_(other.tail_) {
    other.head_ = other.tail_ = nullptr;
  }
  MessageList& operator=(MessageList&& other) noexcept {
    head_ = other.head_;
    tail_ = other.tail_;
    other.head_ = other.tail_ = nullptr;
    return *this;
  }

  bool empty() const noexcept { return head_ == nullptr; }

  void PushBack(Message* m) noexcept {
    m->next_ = nullptr;
    if (tail_ == nullptr) {
      head_ = tail_ = m;
    } else {
      tail_->next_ = m;
      tail_ = m;
    }
  }

  // Appends a chain already linked through next_, ending in nullptr.
  void Append(Message* first, Message* last) noexcept {
    if (first == nullptr) return;
    if (tail_ == nullptr) {
      head_ = first;
    } else {
      tail_->next_ = first;
    }
    tail_ = last;
  }

  void Append(MessageList&& other) noexcept {
    Append(other.head_, other.tail_);
    other.head_ = other.tail_ = nullptr;
  }

  Message* PopFront() noexcept {
    Message* m = head_;
    if (m != nullptr) {
      head_ = m->next_;
      if (head_ == nullptr) tail_ = nullptr;
      m->next_ = nullptr;
    }
    return m;
  }

 private:
  Message* head_ = nullptr;
  Message* tail_ = nullptr;
};

}  // namespace troupe

#endif  // TROUPE_MAILBOX_MESSAGE_H_
