// MessageCache: recycles message memory on the scheduler's worker threads.
//
// Every send allocates a Message and the receiver frees it, usually on
// another thread. With the system allocator that round trip goes through
// cross-thread frees and arena locks; in message-heavy workloads it was more
// than half of all CPU time (see docs/benchmarks.md). So each worker keeps
// free lists of message-sized blocks, by size class, and workers trade full
// batches through their pool's MessageDepot: a sender that runs dry takes a
// batch that a receiver gave back, under one mutex per batch of blocks.
//
// Who may call what: a MessageCache belongs to one thread (its worker), which
// installs it with ScopedMessageCache for its whole life. Message's operator
// new/delete use the calling thread's cache if it has one, and the system
// allocator otherwise (threads outside the pool). Every block is a
// system-allocator block of its class's full size, so a block may be freed
// by any thread, cached or not, and caches may be destroyed at any time.
// MessageDepot: any thread; it must outlive the caches that use it.
//
// Memory: a cache keeps at most 2 × kBatch blocks per class; a depot keeps
// at most kMaxDepotBytes and frees the rest, so recycled memory is bounded.
//
// Under AddressSanitizer caching is off, so use-after-free of a message is
// still caught.

#ifndef TROUPE_MAILBOX_MESSAGE_CACHE_H_
#define TROUPE_MAILBOX_MESSAGE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace troupe::internal {

class MessageDepot;

class MessageCache {
 public:
  // Block sizes follow the system allocator's chunks (16-byte steps, 8
  // bytes of header), so a cached block wastes nothing malloc would not:
  // 24, 40, 56, ..., 264 bytes.
  static constexpr size_t kClasses = 16;
  static constexpr size_t kLargestBlock = 16 * (kClasses - 1) + 24;
  static constexpr uint32_t kBatch = 256;

  static constexpr size_t BlockBytes(size_t c) noexcept { return 16 * c + 24; }
  // The class of a request of `bytes` (kClasses if too large).
  static constexpr size_t ClassOf(size_t bytes) noexcept {
    return bytes <= 24 ? 0 : bytes > kLargestBlock ? kClasses : (bytes - 24 + 15) / 16;
  }

  explicit MessageCache(MessageDepot* depot) noexcept : depot_(depot) {}
  MessageCache(const MessageCache&) = delete;
  MessageCache& operator=(const MessageCache&) = delete;
  ~MessageCache();  // gives every cached block back to the depot

  // A block of at least `bytes`, or nullptr if `bytes` is above the largest
  // class (the caller then uses the system allocator).
  void* Allocate(size_t bytes) noexcept;
  // Takes back a block of `bytes` (as passed to Allocate); false if `bytes`
  // is above the largest class.
  bool Free(void* block, size_t bytes) noexcept;

  // The calling thread's cache, or nullptr.
  static MessageCache* Current() noexcept;

 private:
  friend class ScopedMessageCache;

  struct Node {
    Node* next;
  };
  struct List {
    Node* head = nullptr;
    uint32_t count = 0;
  };

  MessageDepot* const depot_;
  List lists_[kClasses];
};

// Installs `cache` as the calling thread's cache for the scope's lifetime.
class ScopedMessageCache {
 public:
  explicit ScopedMessageCache(MessageCache* cache) noexcept;
  ~ScopedMessageCache();

 private:
  MessageCache* previous_;
};

// Allocation through the calling thread's cache, for the runtime's small,
// short-lived objects (messages, future states, actor cells): a block of
// `bytes` from the cache, or from the system allocator at its size class's
// full size, so that any cache may later reuse it.
void* CachedAllocate(size_t bytes);
// Frees a block from CachedAllocate, on any thread.
void CachedFree(void* block, size_t bytes) noexcept;

// Full batches of free blocks shared by the caches of one pool.
class MessageDepot {
 public:
  static constexpr size_t kMaxDepotBytes = size_t{64} << 20;

  MessageDepot() = default;
  MessageDepot(const MessageDepot&) = delete;
  MessageDepot& operator=(const MessageDepot&) = delete;
  ~MessageDepot();  // frees every block it holds

 private:
  friend class MessageCache;
  struct Batch {
    void* head;  // a chain of MessageCache::Node
    uint32_t count;
  };

  // Takes a batch of class `c`, or returns {nullptr, 0}.
  Batch Take(size_t c) noexcept;
  // Keeps a batch of class `c`, or frees it if the depot is full.
  void Give(size_t c, Batch batch) noexcept;

  std::mutex mu_;
  std::vector<Batch> batches_[MessageCache::kClasses];  // guarded by mu_
  size_t bytes_ = 0;                                     // guarded by mu_
};

}  // namespace troupe::internal

#endif  // TROUPE_MAILBOX_MESSAGE_CACHE_H_
