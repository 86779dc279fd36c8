#include "examples/local_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace troupe::examples {

absl::StatusOr<std::vector<int>> FreeLoopbackPorts(int count) {
  std::vector<int> fds, ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError("socket() failed while picking loopback ports");
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError("cannot bind a free loopback port");
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}
namespace {

constexpr size_t kKeptLines = 1000;
constexpr size_t kTailLines = 40;

absl::Status Errno(const char* what) { return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno))); }

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::string name,
                                                                   const std::vector<std::string>& argv, bool echo) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to start");
  // Everything the child needs is prepared before fork: between fork and
  // exec only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe2");
  const int null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_in < 0) {
    close(fds[0]);
    close(fds[1]);
    return Errno("open /dev/null");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    close(null_in);
    return Errno("fork");
  }
  if (pid == 0) {
    // The child. dup2 clears close-on-exec on the copies.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the driver died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(null_in, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0) _exit(126);
    execv(args[0], args.data());
    static const char kFailed[] = "exec failed\n";
    (void)!write(2, kFailed, sizeof(kFailed) - 1);
    _exit(127);
  }
  close(fds[1]);
  close(null_in);
  return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(name), pid, fds[0], echo));
}

ChildProcess::ChildProcess(std::string name, pid_t pid, int out, bool echo)
    : name_(std::move(name)), pid_(pid), out_(out), echo_(echo) {
  reader_ = std::thread([this] { ReadLines(); });
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    bool clean = false;
    WaitOrKill(absl::Now(), &clean);
  }
  reader_.join();  // the output ended: the child is gone
  close(out_);
}

void ChildProcess::ReadLines() {
  std::string partial;
  char buffer[4096];
  // Ends at EOF (the child exited: read returns 0) or on a read error.
  for (;;) {
    const ssize_t n = read(out_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, newline);
      partial.erase(0, newline + 1);
      if (echo_) std::printf("[%s] %s\n", name_.c_str(), line.c_str());
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(std::move(line));
      if (lines_.size() > kKeptLines) {
        lines_.pop_front();
        ++dropped_;
      }
      changed_.notify_all();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!partial.empty()) lines_.push_back(std::move(partial));
  eof_ = true;
  changed_.notify_all();
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(const std::string& needle, absl::Time deadline,
                                                       size_t from) {
  std::unique_lock<std::mutex> lock(mu_);
  // Each pass scans the lines kept; a pass runs per line read or at the
  // deadline.
  for (;;) {
    for (size_t i = from > dropped_ ? from - dropped_ : 0; i < lines_.size(); ++i) {
      if (lines_[i].find(needle) != std::string::npos) return lines_[i];
    }
    if (eof_) return absl::UnavailableError(absl::StrCat(name_, " ended its output (exited) before printing \"", needle, "\""));
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(name_, " did not print \"", needle, "\" in time"));
    }
    changed_.wait_for(lock, absl::ToChronoNanoseconds(left));
  }
}

std::string ChildProcess::WaitOrKill(absl::Time deadline, bool* clean) {
  *clean = false;
  if (reaped_) return "already reaped";
  bool ended;
  {
    std::unique_lock<std::mutex> lock(mu_);
    ended = changed_.wait_for(lock, absl::ToChronoNanoseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())),
                              [this] { return eof_; });
  }
  if (!ended) kill(pid_, SIGKILL);  // ours, by pid
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);  // returns at once after the exit or the SIGKILL
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r < 0) return absl::StrCat("waitpid failed: ", std::strerror(errno));
  std::string how;
  if (WIFEXITED(status)) {
    how = absl::StrCat("exited ", WEXITSTATUS(status));
    *clean = ended && WEXITSTATUS(status) == 0;
  } else if (WIFSIGNALED(status)) {
    how = absl::StrCat("killed by signal ", WTERMSIG(status));
  } else {
    how = absl::StrCat("ended with status ", status);
  }
  if (!ended) absl::StrAppend(&how, " (it had not exited by the deadline: killed)");
  return how;
}

size_t ChildProcess::LinesSoFar() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_ + lines_.size();
}

bool ChildProcess::OutputEnded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return eof_;
}

void ChildProcess::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

std::vector<std::string> ChildProcess::Tail() const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t from = lines_.size() > kTailLines ? lines_.size() - kTailLines : 0;
  return std::vector<std::string>(lines_.begin() + static_cast<std::ptrdiff_t>(from), lines_.end());
}

}  // namespace troupe::examples
