// The listener out of file descriptors (EMFILE): it sheds pending
// connections through its reserve descriptor instead of pausing. The test
// lowers RLIMIT_NOFILE's soft limit and fills the descriptor table, and
// restores both before it ends; it is a binary of its own so no other test
// runs in the process meanwhile.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/io/reactor.h"
#include "net/io/reactor_test_util.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::EchoHandler;
using testing::Eventually;
using testing::kWait;
using testing::LoggedReactorOptions;
using testing::Pattern;
using testing::RawClient;
using testing::TestLog;
using testing::TestServer;
using testing::Wire;

// Lowers the soft RLIMIT_NOFILE to `limit` (never raises it) and opens
// /dev/null until the table is full. Release() closes those; the destructor
// also restores the limit.
class FullDescriptorTable {
 public:
  explicit FullDescriptorTable(rlim_t limit) {
    if (getrlimit(RLIMIT_NOFILE, &saved_) != 0) return;
    rlimit lowered = saved_;
    lowered.rlim_cur = std::min(limit, saved_.rlim_cur);
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0) return;
    lowered_ = true;
    for (rlim_t i = 0; i < lowered.rlim_cur; ++i) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        full_ = errno == EMFILE;
        return;
      }
      fds_.push_back(fd);
    }
  }
  ~FullDescriptorTable() {
    Release();
    if (lowered_) setrlimit(RLIMIT_NOFILE, &saved_);
  }
  bool full() const { return full_; }
  void Release() {
    for (int fd : fds_) close(fd);
    fds_.clear();
  }

 private:
  rlimit saved_{};
  bool lowered_ = false;
  bool full_ = false;
  std::vector<int> fds_;
};

// True once `fd` reads EOF or a reset, within the deadline.
bool SeesPeerClose(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, ms);
    if (ready == 0) return false;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return false;
    char byte;
    const ssize_t n = recv(fd, &byte, 1, 0);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) return false;  // the server sent something: not shed
  }
}

// The connections the log lines say were shed ("shed N connections"), summed.
uint64_t ShedInLog(const TestLog& log) {
  const std::string all = log.All();
  const std::string_view word = "shed ";
  uint64_t total = 0;
  for (size_t at = all.find(word); at != std::string::npos; at = all.find(word, at + 1)) {
    const size_t digits = at + word.size();
    const size_t end = all.find(' ', digits);
    uint64_t n = 0;
    if (end != std::string::npos && absl::SimpleAtoi(absl::string_view(all.data() + digits, end - digits), &n)) {
      total += n;
    }
  }
  return total;
}

TEST(ReactorFdLimit, ListenerOutOfDescriptorsShedsConnectionsAndKeepsAccepting) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, {}, EchoHandler);
  ASSERT_TRUE(server.listen_status().ok()) << server.listen_status();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(server.address().substr(server.address().rfind(':') + 1))));

  // Client sockets made before the table fills; they connect after.
  constexpr int kClients = 8;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
  }
  {
    FullDescriptorTable table(512);
    ASSERT_TRUE(table.full()) << "the descriptor table did not fill";
    for (int fd : clients) {
      ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0) << errno;
    }
    // One deadline for all: a listener that does not shed leaves them all
    // hanging, and the test should fail in kWait, not kClients times it.
    const absl::Time deadline = absl::Now() + kWait;
    for (int i = 0; i < kClients; ++i) {
      EXPECT_TRUE(SeesPeerClose(clients[i], std::max(deadline - absl::Now(), absl::ZeroDuration()))) << "client " << i;
    }
    EXPECT_TRUE(Eventually([&] { return reactor.stats().shed_connections == kClients; }))
        << reactor.stats().shed_connections;
    EXPECT_EQ(reactor.stats().accepted, 0u);

    // Room again: the next client is served, the listener never paused.
    table.Release();
    RawClient raw(server.address());
    ASSERT_TRUE(raw.connected());
    ASSERT_TRUE(raw.Write(Wire(Pattern(32, 1))));
    Bytes echoed;
    ASSERT_TRUE(raw.ReadFrame(echoed));
    EXPECT_EQ(echoed, Pattern(32, 1));
  }
  for (int fd : clients) close(fd);
  EXPECT_EQ(reactor.stats().accepted, 1u);
  EXPECT_EQ(log.CountLines({"pausing"}), 0) << log.All();
  // One line at once, the rest of the burst a second later: all counted,
  // never more than a line a second.
  EXPECT_TRUE(Eventually([&] { return ShedInLog(log) == kClients; })) << log.All();
  EXPECT_LE(log.CountLines({"shed", "connections since the last report", "Too many open files"}), 2) << log.All();
}

}  // namespace
}  // namespace troupe::net
