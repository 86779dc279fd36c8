#include "mailbox/message.h"

#include <new>

#include "mailbox/message_cache.h"

namespace troupe {
namespace {

// Blocks up to the largest cache class are allocated at their class's full
// size, wherever they are allocated, so a cache may reuse any of them.
size_t BlockBytes(size_t bytes) {
  using internal::MessageCache;
  if (bytes > MessageCache::kClasses * MessageCache::kClassBytes) return bytes;
  return (bytes + MessageCache::kClassBytes - 1) / MessageCache::kClassBytes * MessageCache::kClassBytes;
}

}  // namespace

void* Message::operator new(size_t bytes) {
  if (internal::MessageCache* cache = internal::MessageCache::Current()) {
    if (void* block = cache->Allocate(bytes)) return block;
  }
  return ::operator new(BlockBytes(bytes));
}

void Message::operator delete(void* block, size_t bytes) noexcept {
  if (internal::MessageCache* cache = internal::MessageCache::Current()) {
    if (cache->Free(block, bytes)) return;
  }
  ::operator delete(block);
}

}  // namespace troupe
