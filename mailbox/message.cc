#include "mailbox/message.h"

#include "mailbox/message_cache.h"

namespace troupe {

void* Message::operator new(size_t bytes) { return internal::CachedAllocate(bytes); }

void Message::operator delete(void* block, size_t bytes) noexcept { internal::CachedFree(block, bytes); }

}  // namespace troupe
