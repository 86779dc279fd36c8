#include "net/io/internal/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace troupe::net::internal {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.Release();
  }
  return *this;
}

void UniqueFd::Reset() {
  if (fd_ >= 0) {
    // Linux frees the descriptor even when close reports EINTR: never retry.
    ::close(fd_);
    fd_ = -1;
  }
}

namespace {

absl::Status BadAddress(std::string_view address, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad address \"", std::string(address), "\": ", std::string(why),
                                                 " (expected a.b.c.d:port or [v6]:port)"));
}

}  // namespace

absl::StatusOr<SocketAddress> ParseAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return BadAddress(address, "no port");
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  uint32_t port = 0;
  if (port_text.empty() || !absl::SimpleAtoi(absl::string_view(port_text.data(), port_text.size()), &port) || port > 65535 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return BadAddress(address, "the port is not a number from 0 to 65535");
  }
  SocketAddress out;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string text(host.substr(1, host.size() - 2));
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) != 1) return BadAddress(address, "not an IPv6 address");
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
    return out;
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.find(':') != std::string_view::npos) return BadAddress(address, "an IPv6 address needs brackets");
  const std::string text(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) != 1) return BadAddress(address, "not an IPv4 address");
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  out.length = sizeof(sockaddr_in);
  return out;
}

std::string FormatAddress(const sockaddr* address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(v4->sin_port));
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(v6->sin6_port));
  }
  return absl::StrCat("<address family ", address->sa_family, ">");
}

absl::StatusOr<std::string> LocalAddress(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", ErrnoMessage(errno)));
  }
  return FormatAddress(reinterpret_cast<const sockaddr*>(&storage), length);
}

void SetSocketOptions(int fd, int send_buffer_bytes, int receive_buffer_bytes) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (send_buffer_bytes > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes, sizeof(send_buffer_bytes));
  if (receive_buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
}

std::string ErrnoMessage(int error) {
  char buffer[256];
  // The GNU strerror_r returns the message, which may or may not be `buffer`.
  return strerror_r(error, buffer, sizeof(buffer));
}

}  // namespace troupe::net::internal
