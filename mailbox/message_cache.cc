#include "mailbox/message_cache.h"

#include <cstdlib>
#include <new>
#include <utility>

namespace troupe::internal {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCachingEnabled = false;  // let ASan see every free
#else
constexpr bool kCachingEnabled = true;
#endif

// Per thread, set by ScopedMessageCache on the pool's workers only.
thread_local MessageCache* current_cache = nullptr;

void FreeChain(void* head) noexcept {
  struct Node {
    Node* next;
  };
  for (Node* n = static_cast<Node*>(head); n != nullptr;) {
    Node* next = n->next;
    ::operator delete(n);
    n = next;
  }
}

}  // namespace

MessageCache* MessageCache::Current() noexcept { return current_cache; }

ScopedMessageCache::ScopedMessageCache(MessageCache* cache) noexcept : previous_(current_cache) {
  if (kCachingEnabled) current_cache = cache;
}

ScopedMessageCache::~ScopedMessageCache() { current_cache = previous_; }

MessageCache::~MessageCache() {
  for (size_t c = 0; c < kClasses; ++c) {
    if (lists_[c].head != nullptr) depot_->Give(c, {lists_[c].head, lists_[c].count});
  }
}

void* MessageCache::Allocate(size_t bytes) noexcept {
  const size_t c = ClassOf(bytes);
  if (c >= kClasses) return nullptr;
  List& list = lists_[c];
  if (list.head == nullptr) {
    MessageDepot::Batch batch = depot_->Take(c);
    if (batch.head == nullptr) return ::operator new(BlockBytes(c), std::nothrow);
    list.head = static_cast<Node*>(batch.head);
    list.count = batch.count;
  }
  Node* n = list.head;
  list.head = n->next;
  --list.count;
  return n;
}

bool MessageCache::Free(void* block, size_t bytes) noexcept {
  const size_t c = ClassOf(bytes);
  if (c >= kClasses) return false;
  List& list = lists_[c];
  if (list.count == 2 * kBatch) {
    // Full: hand the older half to the depot as one batch.
    Node* cut = list.head;
    for (uint32_t i = 1; i < kBatch; ++i) cut = cut->next;
    depot_->Give(c, {cut->next, kBatch});
    cut->next = nullptr;
    list.count = kBatch;
  }
  Node* n = static_cast<Node*>(block);
  n->next = list.head;
  list.head = n;
  ++list.count;
  return true;
}

void* CachedAllocate(size_t bytes) {
  if (MessageCache* cache = current_cache) {
    if (void* block = cache->Allocate(bytes)) return block;
  }
  // Full class size, so that a cache may reuse the block for any size of
  // its class.
  const size_t c = MessageCache::ClassOf(bytes);
  return ::operator new(c < MessageCache::kClasses ? MessageCache::BlockBytes(c) : bytes);
}

void CachedFree(void* block, size_t bytes) noexcept {
  if (MessageCache* cache = current_cache) {
    if (cache->Free(block, bytes)) return;
  }
  ::operator delete(block);
}

MessageDepot::~MessageDepot() {
  for (std::vector<Batch>& batches : batches_) {
    for (Batch& b : batches) FreeChain(b.head);
  }
}

MessageDepot::Batch MessageDepot::Take(size_t c) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  if (batches_[c].empty()) return {nullptr, 0};
  Batch b = batches_[c].back();
  batches_[c].pop_back();
  bytes_ -= b.count * MessageCache::BlockBytes(c);
  return b;
}

void MessageDepot::Give(size_t c, Batch batch) noexcept {
  const size_t bytes = batch.count * MessageCache::BlockBytes(c);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes_ + bytes <= kMaxDepotBytes) {
      batches_[c].push_back(batch);
      bytes_ += bytes;
      return;
    }
  }
  FreeChain(batch.head);  // over the bound: back to the system allocator
}

}  // namespace troupe::internal
