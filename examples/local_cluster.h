// ChildProcess: a node process this one started (fork + exec of a binary,
// usually itself), for a small local cluster (examples/counter_service.cc).
//
// The child's stdout and stderr go to one pipe, which a thread of ours
// reads line by line: WaitForLine finds a line (the address the child
// listens on) with a deadline instead of sleeping; the last lines are kept
// to show when the child fails; with `echo` each line is printed here too,
// prefixed with the child's name. The child gets SIGTERM if this process
// dies (PR_SET_PDEATHSIG), so no node outlives its cluster's driver.
//
// The child's exit shows as the end of its output (it holds the pipe's only
// write end), so waiting for it needs no polling.
//
// Who may call what: one thread (the driver's main thread) calls the
// methods; the reader thread only appends lines. The destructor kills
// (SIGKILL, by pid) a child still running and reaps it.

#ifndef TROUPE_EXAMPLES_LOCAL_CLUSTER_H_
#define TROUPE_EXAMPLES_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace troupe::examples {

// `count` loopback ports free now and distinct: the kernel's picks, each
// held until all are picked, then released, for node processes that must
// know each other's address before any of them starts (another process
// may take one in between: a node that cannot listen says so).
absl::StatusOr<std::vector<int>> FreeLoopbackPorts(int count);

class ChildProcess {
 public:
  // Starts `argv`: argv[0] is the path of the program (not searched in
  // PATH). The child's stdin is /dev/null.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(std::string name, const std::vector<std::string>& argv,
                                                             bool echo);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The first line (since the child started) that contains `needle`.
  // DeadlineExceeded at `deadline`; Unavailable if the child's output ends
  // (it exited) first.
  // With `from`: the first among the lines from number `from` on (lines
  // count from 0; LinesSoFar() numbers the next one).
  absl::StatusOr<std::string> WaitForLine(const std::string& needle, absl::Time deadline, size_t from = 0);

  // How many lines the child has printed so far.
  size_t LinesSoFar() const;

  // Whether the child's output has ended: it exited (or closed its
  // stdout and stderr), whether or not it has been reaped.
  bool OutputEnded() const;

  // Waits for the child to exit until `deadline`, then kills it (SIGKILL)
  // and reaps it. Describes how it ended: "exited 0", "killed by signal 9
  // after the deadline", ... `clean` is set if it exited 0 by itself.
  std::string WaitOrKill(absl::Time deadline, bool* clean);

  // Sends `sig` to the child if it has not been reaped.
  void Signal(int sig);

  // The last lines the child printed (at most 40), for diagnostics.
  std::vector<std::string> Tail() const;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }

 private:
  ChildProcess(std::string name, pid_t pid, int out, bool echo);
  void ReadLines();

  const std::string name_;
  const pid_t pid_;
  const int out_;    // read end of the child's stdout+stderr
  const bool echo_;
  bool reaped_ = false;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::string> lines_;  // guarded by mu_; the last kKeptLines
  size_t dropped_ = 0;             // guarded by mu_; lines dropped from the front
  bool eof_ = false;               // guarded by mu_
  std::thread reader_;
};

}  // namespace troupe::examples

#endif  // TROUPE_EXAMPLES_LOCAL_CLUSTER_H_
