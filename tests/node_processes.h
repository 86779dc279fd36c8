// NodeProcesses: a test fixture that runs node processes of the examples
// (//examples:counter_service, //examples:remote_pingpong), waits for the
// lines they print (each wait has a deadline; nothing sleeps), and ends
// them by pid. A process still running when the test ends is killed
// (SIGKILL, by pid) and reaped.
//
// Every process may run behind a prefix, such as "ip netns exec <ns>" to
// start it in a network namespace.
//
// TLS: MakeCa and MakeNodeCerts run tools/make-certs (which the test then
// needs in its data) into directories under TEST_TMPDIR, and TlsFlags
// gives a node the flags of its files.

#ifndef TROUPE_TESTS_NODE_PROCESSES_H_
#define TROUPE_TESTS_NODE_PROCESSES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "examples/local_cluster.h"
#include "gtest/gtest.h"

namespace troupe::tests {

// Generous for sanitizer builds on a busy machine; a passing run takes
// well under a second per wait.
inline constexpr absl::Duration kWait = absl::Seconds(60);

// The absolute path of a file of the test's runfiles, such as
// "examples/counter_service".
std::string Runfile(const std::string& path);

// The address in a "... listening on <address> ..." line.
std::string AddressIn(const std::string& line);

// `count` loopback addresses ("127.0.0.1:<port>") whose ports are free now
// and distinct: for nodes that must know each other's address before any
// starts.
std::vector<std::string> FreeAddresses(int count);

// The --cluster value of a static cluster of `addresses`.
std::string StaticCluster(const std::vector<std::string>& addresses);

class NodeProcesses : public ::testing::Test {
 protected:
  using ChildProcess = examples::ChildProcess;

  // Runs `prefix` + `argv`; its output is echoed to the test's, prefixed
  // with `name`. Null (and a test failure) if it cannot start.
  ChildProcess* Start(const std::string& name, const std::vector<std::string>& argv,
                      const std::vector<std::string>& prefix = {});

  // Waits for the line containing `needle` and returns it; "" and a test
  // failure if it does not come (or the process exits first).
  static std::string Line(ChildProcess* p, const std::string& needle);

  // A counter_service node named `name` listening on `listen`, a member of
  // the cluster `cluster` (a --cluster value: StaticCluster(...), or
  // etcd://...), with one worker. Returns the process once it prints where
  // it listens (null, and a test failure, if it does not); Ready waits for
  // it to host entities. It authenticates with kSecret, or, if `extra` has
  // TLS flags (TlsFlags), with those alone.
  ChildProcess* StartCounterNode(const std::string& name, const std::string& listen, const std::string& cluster,
                                 const std::vector<std::string>& extra, const std::vector<std::string>& prefix = {});

  // Counter nodes `names` at `addresses` (one each), members of the
  // cluster `cluster` (a --cluster value, as StartCounterNode's); node i
  // gets `extra[i]` and runs behind `prefixes[i]`, if given. Each is ready
  // (hosts entities) when this returns, or the test has failed.
  std::vector<ChildProcess*> StartCluster(const std::vector<std::string>& names,
                                          const std::vector<std::string>& addresses, const std::string& cluster,
                                          const std::vector<std::vector<std::string>>& extra,
                                          const std::vector<std::vector<std::string>>& prefixes = {});

  // A counter_service client through `peer` (behind `prefix`) whose
  // workload, a client on each of `nodes` nodes sending 300 increments
  // over 30 keys, must verify; and it exits cleanly.
  void ExpectWorkloadVerifies(const std::string& name, const std::string& peer, int nodes,
                              const std::vector<std::string>& prefix = {});

  // True if `p` prints a line containing `needle` (from line `from` on)
  // before `deadline`; no test failure either way.
  static bool Prints(ChildProcess* p, const std::string& needle, absl::Time deadline, size_t from = 0);

  // Waits for `p`'s "<name>: ready" line: true if it comes.
  static bool Ready(ChildProcess* p);

  // A counter_service client (no --listen) named `name`, through `peer`.
  ChildProcess* StartCounterClient(const std::string& name, const std::string& peer,
                                   const std::vector<std::string>& flags, const std::vector<std::string>& prefix = {});

  // Waits for `p` to exit by itself (killing it past kWait): true if it
  // exited 0.
  static bool ExitsCleanly(ChildProcess* p);

  // Waits for `p` to exit (killing it past kWait) and describes how.
  static std::string Ended(ChildProcess* p);

  // A new CA (tools/make-certs ca) in a directory of this test under
  // TEST_TMPDIR; returns the directory ("" and a test failure if make-certs
  // fails).
  std::string MakeCa(const std::string& name);

  // Makes the key and certificate of each of `names` in `dir`, signed by
  // its CA (tools/make-certs node; run again for a name, it rotates them).
  // `extra`: more arguments, such as {"--days", "30"}. True if make-certs
  // exits 0 (else a test failure).
  bool MakeNodeCerts(const std::string& dir, const std::vector<std::string>& names,
                     const std::vector<std::string>& extra = {});

  // --tls_cert and --tls_key of node `name` in `dir`, and --tls_ca of the
  // CA in `ca_dir` (default: `dir`).
  static std::vector<std::string> TlsFlags(const std::string& dir, const std::string& name,
                                           const std::string& ca_dir = "");

  static constexpr char kSecret[] = "--secret=troupe-tests";

 private:
  std::vector<std::unique_ptr<ChildProcess>> children_;
};

}  // namespace troupe::tests

#endif  // TROUPE_TESTS_NODE_PROCESSES_H_
