// ReactorShared: what a reactor's threads, listeners and connections share,
// and what outlives the Reactor object while a Connection is still held.

#ifndef TROUPE_NET_IO_INTERNAL_REACTOR_SHARED_H_
#define TROUPE_NET_IO_INTERNAL_REACTOR_SHARED_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "spdlog/logger.h"

namespace troupe::net::internal {

struct ReactorShared {
  std::string name;
  std::shared_ptr<spdlog::logger> logger;

  // Counters behind ReactorStats. Incremented by I/O threads with relaxed
  // fetch_add, read by Reactor::stats() with relaxed loads: they are
  // statistics, nothing is published through them.
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> oversized_frames{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> rejected_sends{0};
  std::atomic<uint64_t> shed_connections{0};
  std::atomic<uint64_t> tls_refused{0};
  std::atomic<uint64_t> tls_errors{0};
};

}  // namespace troupe::net::internal

#endif  // TROUPE_NET_IO_INTERNAL_REACTOR_SHARED_H_
