// Socket helpers for the reactor: an owning file descriptor, "host:port"
// parsing and formatting, and errno messages. I/O-thread and caller code
// alike; nothing here keeps state between calls.

#ifndef TROUPE_NET_IO_INTERNAL_SOCKET_H_
#define TROUPE_NET_IO_INTERNAL_SOCKET_H_

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace troupe::net::internal {

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset();

 private:
  int fd_ = -1;
};

// An IPv4 or IPv6 socket address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" (= 127.0.0.1);
// numeric addresses only, so parsing never blocks on a name lookup.
// InvalidArgument naming `address` otherwise.
absl::StatusOr<SocketAddress> ParseAddress(std::string_view address);

// "a.b.c.d:port" or "[v6]:port".
std::string FormatAddress(const sockaddr* address, socklen_t length);

// The local address a socket is bound to, formatted.
absl::StatusOr<std::string> LocalAddress(int fd);

// TCP_NODELAY, and SO_SNDBUF / SO_RCVBUF when positive. Best effort: a
// socket that refuses an option still works.
void SetSocketOptions(int fd, int send_buffer_bytes, int receive_buffer_bytes);

// strerror for `error`, thread-safe.
std::string ErrnoMessage(int error);

}  // namespace troupe::net::internal

#endif  // TROUPE_NET_IO_INTERNAL_SOCKET_H_
