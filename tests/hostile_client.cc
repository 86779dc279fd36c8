// hostile_client: a stranger to a troupe cluster that costs a node what it
// can without knowing the secret. It opens --connections TCP connections to
// --target, sends on each the 4-byte little-endian length of a --length
// frame (16 MiB: the largest a node takes by default), and then trickles
// --chunk bytes of that frame per connection every --tick, at most
// --most_per_connection in all, until --duration has passed. Used by //tests:fault_test, which watches the node's resident
// memory meanwhile.
//
// Bounded: at most --connections connections (fewer if RLIMIT_NOFILE, raised
// as far as its hard limit allows, is lower), at most --duration of
// trickling; it never reconnects. Loopback only: --target must be
// 127.0.0.0/8.
//
// Output lines (the test waits for them):
//   hostile: RLIMIT_NOFILE <n>: <k> connections at most
//   hostile: <k> connections open, each sent a <length>-byte length (<f> connects failed)
//   hostile: done: <k> opened, <c> closed by the node, <b> bytes trickled

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, target, "", "host:port of the node to attack (127.0.0.0/8 only)");
ABSL_FLAG(int, connections, 1000, "connections to open (at most 100000)");
ABSL_FLAG(uint32_t, length, uint32_t{16} << 20, "the frame length each connection announces");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(8), "how long to trickle bytes (at most 60 s)");
ABSL_FLAG(absl::Duration, tick, absl::Milliseconds(100), "a chunk per connection this often");
ABSL_FLAG(int, chunk, 1, "bytes of the frame each connection sends per tick (1 to 65536)");
ABSL_FLAG(int64_t, most_per_connection, 1 << 20, "bytes of the frame each connection sends at most");

namespace {

// The soft limit raised to the hard one; returns the soft limit in force.
rlim_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string target = absl::GetFlag(FLAGS_target);
  const size_t colon = target.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, target.substr(0, colon).c_str(), &addr.sin_addr) != 1 ||
      (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "hostile: --target must be 127.x.y.z:port, not '%s'\n", target.c_str());
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
  const absl::Duration duration = std::min(absl::GetFlag(FLAGS_duration), absl::Seconds(60));
  const absl::Duration tick = std::max(absl::GetFlag(FLAGS_tick), absl::Milliseconds(1));

  const rlim_t files = RaiseFileLimit();
  // Room for stdin/out/err and the odd descriptor of the runtime.
  const size_t most = std::min<size_t>(std::min(absl::GetFlag(FLAGS_connections), 100000),
                                       files > 16 ? static_cast<size_t>(files - 16) : 0);
  std::printf("hostile: RLIMIT_NOFILE %llu: %zu connections at most\n", static_cast<unsigned long long>(files), most);

  const uint32_t length = absl::GetFlag(FLAGS_length);
  const unsigned char prefix[4] = {static_cast<unsigned char>(length), static_cast<unsigned char>(length >> 8),
                                   static_cast<unsigned char>(length >> 16), static_cast<unsigned char>(length >> 24)};
  std::vector<int> open;
  size_t connect_failed = 0;
  for (size_t i = 0; i < most; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ++connect_failed;
      continue;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
        send(fd, prefix, sizeof(prefix), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(prefix))) {
      ++connect_failed;
      close(fd);
      continue;
    }
    open.push_back(fd);
  }
  std::printf("hostile: %zu connections open, each sent a %u-byte length (%zu connects failed)\n", open.size(), length,
              connect_failed);

  // A chunk of the frame per connection per tick, up to a total per
  // connection; a connection the node closed is dropped. Bounded by the
  // duration, so by duration / tick rounds.
  const absl::Time end = absl::Now() + duration;
  const size_t opened = open.size();
  uint64_t trickled = 0;
  const size_t chunk = static_cast<size_t>(std::clamp(absl::GetFlag(FLAGS_chunk), 1, 65536));
  const int64_t most_per_connection = std::max<int64_t>(absl::GetFlag(FLAGS_most_per_connection), 1);
  const std::vector<unsigned char> bytes(chunk, 0);
  std::vector<int64_t> sent(open.size(), 0);
  while (absl::Now() < end && !open.empty()) {
    for (size_t i = 0; i < open.size();) {
      if (sent[i] >= most_per_connection) {
        ++i;
        continue;
      }
      const ssize_t n = send(open[i], bytes.data(), chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        trickled += static_cast<uint64_t>(n);
        sent[i] += n;
        ++i;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++i;
      } else {
        close(open[i]);
        open[i] = open.back();
        open.pop_back();
        sent[i] = sent.back();
        sent.pop_back();
      }
    }
    absl::SleepFor(std::min(tick, std::max(end - absl::Now(), absl::ZeroDuration())));
  }
  std::printf("hostile: done: %zu opened, %zu closed by the node, %llu bytes trickled\n", opened,
              opened - open.size(), static_cast<unsigned long long>(trickled));
  for (int fd : open) close(fd);
  return 0;
}
