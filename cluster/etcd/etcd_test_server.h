// EtcdServer: a real etcd (Debian's etcd-server) for tests: one member on
// loopback, with free ports and a data directory of its own under
// TEST_TMPDIR. Tests kill it and start it again on the same data to see
// what a client makes of an etcd that goes away and comes back.
//
//   EtcdServer etcd;
//   ASSERT_OK(etcd.Start());                  // returns once etcd serves a Get
//   EtcdClient client({.address = etcd.client_address()});
//   ...
//   etcd.Kill();                              // SIGKILL, as a crash would
//   ASSERT_OK(etcd.Start());                  // same data, same ports
//
// The etcd binary is $TROUPE_ETCD (the BUILD file points it at
// @etcd_server//:bin/etcd in the test's runfiles), else /usr/bin/etcd.
// Waits have deadlines and nothing sleeps: readiness is a Get that
// succeeds, and Stop waits for the process to exit. The destructor kills
// etcd if it is still running, reaps it and removes the data directory,
// also when the test failed; if the test process itself dies, etcd gets
// SIGTERM (ChildProcess sets PR_SET_PDEATHSIG).
//
// Who may call what: one thread, the test's.

#ifndef TROUPE_CLUSTER_ETCD_ETCD_TEST_SERVER_H_
#define TROUPE_CLUSTER_ETCD_ETCD_TEST_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "examples/local_cluster.h"

namespace troupe::cluster::etcd {

class EtcdServer {
 public:
  // How long Start waits for etcd to serve, and Stop for it to exit.
  // Generous for a busy 2-core machine; etcd usually starts in about 1 s.
  static constexpr absl::Duration kStartTimeout = absl::Seconds(60);
  static constexpr absl::Duration kStopTimeout = absl::Seconds(10);

  // Picks the ports and makes the data directory; starts nothing.
  EtcdServer();
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Starts etcd (on the data directory as it is: empty the first time) and
  // returns once a Get succeeds. On failure etcd is killed and the error
  // ends with the last lines it printed.
  absl::Status Start();
  // SIGTERM, then SIGKILL if it has not exited in kStopTimeout; reaped.
  // Describes how it ended ("exited 0", ...).
  std::string Stop();
  // SIGKILL now; reaped.
  void Kill();
  // Stop if running, then Start on the same data directory and ports.
  absl::Status Restart();

  bool running() const { return process_ != nullptr; }
  // "127.0.0.1:<port>", the same across restarts.
  const std::string& client_address() const { return client_address_; }
  const std::string& data_dir() const { return data_dir_; }

  // etcd's Compact (which EtcdClient leaves out): forgets every revision
  // before `revision`; returns once that is done on disk.
  absl::Status Compact(int64_t revision, absl::Time deadline);

  // The last lines etcd printed (kept across a stop), for diagnostics.
  std::vector<std::string> LogTail() const;

 private:
  absl::Status WaitUntilServing(absl::Time deadline);
  void Reap(const char* how);

  const std::string binary_;
  std::string data_dir_;
  std::string client_address_;
  std::string peer_url_;
  std::unique_ptr<examples::ChildProcess> process_;  // null while not running
  std::vector<std::string> last_tail_;               // of the last process that ended
};

}  // namespace troupe::cluster::etcd

#endif  // TROUPE_CLUSTER_ETCD_ETCD_TEST_SERVER_H_
