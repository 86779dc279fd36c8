// Node processes of the examples on loopback: each test starts them (ports
// the kernel picks, read from their "listening on" lines), checks what
// they print, and ends them by pid. Nothing sleeps: every wait is for a
// line of output or an exit, with a deadline (tests/node_processes.h).
// The TLS tests run the same over TLS with certificates from
// tools/make-certs, and rotate a running node's certificate.

#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {
namespace {

using Processes = NodeProcesses;

// `argv` followed by `more`.
std::vector<std::string> With(std::vector<std::string> argv, const std::vector<std::string>& more) {
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

// The last base64 line of the first certificate in PEM file `path`: part
// of its signature, so it differs between any two certificates. "" if the
// file has no certificate.
std::string SignatureLine(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string last;
  bool inside = false;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (line == "-----BEGIN CERTIFICATE-----") {
      inside = true;
    } else if (line == "-----END CERTIFICATE-----") {
      return last;
    } else if (inside) {
      last = std::string(line);
    }
  }
  return "";
}

TEST_F(Processes, APingerAsksAndTellsAPongerInAnotherProcess) {
  const std::string pingpong = Runfile("examples/remote_pingpong");
  ChildProcess* ponger = Start("ponger", {pingpong, "--listen=127.0.0.1:0", "--name=ponger", kSecret});
  ASSERT_NE(ponger, nullptr);
  const std::string address = AddressIn(Line(ponger, "listening on "));
  ASSERT_FALSE(address.empty());

  ChildProcess* pinger =
      Start("pinger", {pingpong, "--peer=" + address, "--name=pinger", kSecret, "--round_trips=300", "--tells=500"});
  EXPECT_NE(Line(pinger, "remote_pingpong: 300 round trips"), "");
  EXPECT_NE(Line(pinger, "the ponger received 500, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(pinger));

  // A second pinger's tells are counted apart from the first's.
  ChildProcess* again =
      Start("pinger-2", {pingpong, "--peer=" + address, "--name=pinger-2", kSecret, "--round_trips=10", "--tells=20"});
  EXPECT_NE(Line(again, "the ponger received 20, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(again));

  ponger->Signal(SIGTERM);
  EXPECT_NE(Line(ponger, "ponger: signal 15, shutting down"), "");
  EXPECT_TRUE(ExitsCleanly(ponger));
}

TEST_F(Processes, ALostNodeIsReportedByTheOtherWhosePendingAsksFailAtOnce) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  // b joins a, then runs the workload with a client on each node: tells
  // from each client to the shards of both nodes, asks from b to both.
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=2000", "--keys=100"}, &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined (2 shards)"), "");
  EXPECT_NE(Line(b, "b: ready: joined a cluster of 2 nodes, 4 shards"), "");
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "b/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (40..40); they sum to 4000 = 4000 sent"), "");
  EXPECT_NE(Line(b, "b: workload done"), "");

  // Killing a (no chance to leave) is a NodeDown at b, not a NodeLeft, and
  // a new ask to a shard of a fails at once.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: node a is down (UNAVAILABLE"), "");
  EXPECT_NE(Line(b, "shards unavailable: a/shard-0, a/shard-1"), "");
  EXPECT_NE(Line(b, "b: an ask to a/shard-0 after the loss: UNAVAILABLE"), "");

  // b carries on, and leaves cleanly.
  b->Signal(SIGTERM);
  EXPECT_NE(Line(b, "b: stopped"), "");
  EXPECT_TRUE(ExitsCleanly(b));
}

TEST_F(Processes, ANodeThatLeavesIsReportedAsLeftNotDown) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=0"}, &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined"), "");

  b->Signal(SIGTERM);
  EXPECT_NE(Line(a, "a: node b left the cluster; its shards went with it: b/shard-0, b/shard-1"), "");
  EXPECT_TRUE(ExitsCleanly(b));
  a->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  for (const std::string& line : a->Tail()) EXPECT_EQ(line.find("is down"), std::string::npos) << line;
}

TEST_F(Processes, AClientThatDoesNotListenFindsEveryNodeFromOneAndChecksTheTotals) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=0"}, &b);
  ASSERT_NE(b, nullptr);

  // Given only a, the client learns b from a's directory.
  ChildProcess* client = Start("client", {Runfile("examples/counter_service"), "--peer=" + a_address,
                                          "--name=client", kSecret, "--increments=500", "--keys=50", "--clients=2"});
  EXPECT_NE(Line(client, "workload: 4 clients (2 on each of 2 nodes)"), "");
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (40..40); they sum to 2000 = 2000 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));

  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  EXPECT_TRUE(ExitsCleanly(b));
}

TEST_F(Processes, ANodeWithAnotherSecretCannotJoin) {
  ChildProcess* a;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  ChildProcess* stranger = Start("stranger", {Runfile("examples/counter_service"), "--listen=127.0.0.1:0",
                                              "--name=stranger", "--secret=not-the-secret", "--peer=" + a_address,
                                              "--join_timeout=1s"});
  // It retries (one line each) until --join_timeout, then gives up.
  EXPECT_NE(Line(stranger, "stranger: join attempt 1 failed ("), "");
  EXPECT_NE(Line(stranger, "stranger: could not join any node of --peer"), "");
  EXPECT_NE(Ended(stranger).find("exited 1"), std::string::npos);
  a->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
}

// Over TLS: a CA and the nodes' certificates from tools/make-certs, no
// shared secret.
class TlsProcesses : public NodeProcesses {
 protected:
  void SetUp() override {
    certs_ = MakeCa("cluster");
    ASSERT_FALSE(certs_.empty());
    ASSERT_TRUE(MakeNodeCerts(certs_, {"a", "b", "c", "client", "probe"}));
  }

  std::vector<std::string> Tls(const std::string& name) const { return TlsFlags(certs_, name); }
  std::string Pem(const std::string& name) const { return certs_ + "/" + name + ".pem"; }

  // Whether a new TLS connection to `address` (openssl s_client, with the
  // probe's certificate) is served the certificate whose SignatureLine is
  // `signature`.
  bool Serves(const std::string& address, const std::string& signature) {
    ChildProcess* probe = Start("s_client", {"/usr/bin/env", "openssl", "s_client", "-connect", address, "-tls1_3",
                                             "-verify_return_error", "-cert", Pem("probe"), "-key",
                                             certs_ + "/probe.key", "-CAfile", certs_ + "/ca.pem"});
    // The server's certificate is printed whole before this line.
    if (Line(probe, "-----END CERTIFICATE-----").empty()) return false;
    const bool served = probe->WaitForLine(signature, absl::Now()).ok();
    Ended(probe);
    return served;
  }

  std::string certs_;
};

TEST_F(TlsProcesses, APingerAsksAndTellsAPongerInAnotherProcess) {
  const std::string pingpong = Runfile("examples/remote_pingpong");
  // No --name: each node is named as its certificate.
  ChildProcess* ponger = Start("ponger", With({pingpong, "--listen=127.0.0.1:0"}, Tls("a")));
  ASSERT_NE(ponger, nullptr);
  EXPECT_NE(Line(ponger, "TLS on: certificate " + Pem("a")), "");
  const std::string address = AddressIn(Line(ponger, "ponger: node a listening on "));
  ASSERT_FALSE(address.empty());

  ChildProcess* pinger =
      Start("pinger", With({pingpong, "--peer=" + address, "--round_trips=300", "--tells=500"}, Tls("b")));
  EXPECT_NE(Line(pinger, "remote_pingpong: 300 round trips"), "");
  EXPECT_NE(Line(pinger, "the ponger received 500, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(pinger));

  ponger->Signal(SIGTERM);
  EXPECT_NE(Line(ponger, "ponger: signal 15, shutting down"), "");
  EXPECT_TRUE(ExitsCleanly(ponger));
}

TEST_F(TlsProcesses, CounterNodesTellAskPassRefsInMessagesAndReportALoss) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", Tls("a"), &a);
  ASSERT_FALSE(a_address.empty());
  // b joins a: the Join carries a Ref to b's directory, a's reply Refs to
  // a's shards. The workload's clients tell both nodes' shards; b asks both.
  StartCounterNode("b", "127.0.0.1:0", With({"--peer=" + a_address, "--increments=2000", "--keys=100"}, Tls("b")),
                   &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined (2 shards)"), "");
  EXPECT_NE(Line(b, "b: ready: joined a cluster of 2 nodes, 4 shards"), "");
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "b/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (40..40); they sum to 4000 = 4000 sent"), "");

  // Given only a, the client reaches b through the Ref to b's directory
  // in a's reply, over a TLS connection of its own to b.
  ChildProcess* client =
      Start("client", With({Runfile("examples/counter_service"), "--peer=" + a_address, "--workers=1",
                            "--increments=500", "--keys=50", "--clients=2"},
                           Tls("client")));
  EXPECT_NE(Line(client, "workload: 4 clients (2 on each of 2 nodes)"), "");
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (40..40); they sum to 2000 = 2000 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));

  // Killing a is a NodeDown at b, and a new ask to a's shard fails at once.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: node a is down (UNAVAILABLE"), "");
  EXPECT_NE(Line(b, "b: an ask to a/shard-0 after the loss: UNAVAILABLE"), "");
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(b));
}

TEST_F(TlsProcesses, ANodeWithACertificateOfAnotherCaCannotJoin) {
  const std::string other = MakeCa("other");
  ASSERT_FALSE(other.empty());
  ASSERT_TRUE(MakeNodeCerts(other, {"stranger"}));
  ChildProcess* a;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", Tls("a"), &a);
  ASSERT_FALSE(a_address.empty());
  // It trusts the cluster's CA: the refusal is a's.
  ChildProcess* stranger =
      Start("stranger", With({Runfile("examples/counter_service"), "--listen=127.0.0.1:0", "--workers=1",
                              "--peer=" + a_address, "--join_timeout=1s"},
                             TlsFlags(other, "stranger", certs_)));
  EXPECT_NE(Line(a, "closed: UNAUTHENTICATED: TLS handshake: the peer's certificate is refused"), "");
  EXPECT_NE(Line(stranger, "stranger: could not join any node of --peer"), "");
  EXPECT_NE(Ended(stranger).find("exited 1"), std::string::npos);
  EXPECT_FALSE(a->WaitForLine("member stranger", absl::Now()).ok()) << "the stranger joined";
  a->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
}

TEST_F(TlsProcesses, ANodeWithIncompleteOrWrongTlsFlagsDoesNotStart) {
  const std::string counter = Runfile("examples/counter_service");
  ChildProcess* partial = Start("partial", {counter, "--listen=127.0.0.1:0", "--tls_cert=" + Pem("a")});
  EXPECT_NE(Line(partial, "--tls_cert, --tls_key and --tls_ca go together: missing --tls_key and --tls_ca"), "");
  EXPECT_NE(Ended(partial).find("exited 2"), std::string::npos);
  // Node::ready: b's certificate does not name a node called a.
  ChildProcess* misnamed = Start("misnamed", With({counter, "--listen=127.0.0.1:0", "--name=a"}, Tls("b")));
  EXPECT_NE(Line(misnamed, "node a cannot run: FAILED_PRECONDITION: "), "");
  EXPECT_NE(Ended(misnamed).find("exited 1"), std::string::npos);
}

// The node checks its files every --tls_reload: re-running make-certs for
// it is enough. Its link to b stays up; new connections get the new
// certificate, and a new node joins through it.
TEST_F(TlsProcesses, ARotatedCertificateIsServedOnNewConnectionsWithoutARestart) {
  ChildProcess *a, *b, *c;
  const std::string a_address =
      StartCounterNode("a", "127.0.0.1:0", With({"--log_level=info", "--tls_reload=200ms"}, Tls("a")), &a);
  ASSERT_FALSE(a_address.empty());
  StartCounterNode("b", "127.0.0.1:0", With({"--peer=" + a_address, "--increments=0"}, Tls("b")), &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined"), "");

  const std::string old_signature = SignatureLine(Pem("a"));
  ASSERT_TRUE(MakeNodeCerts(certs_, {"a"}, {"--days", "30"}));
  const std::string new_signature = SignatureLine(Pem("a"));
  ASSERT_FALSE(new_signature.empty());
  ASSERT_NE(new_signature, old_signature);

  const std::string changed = Line(a, "node a: TLS files changed: new connections use certificate CN=a (valid until ");
  const std::string marker = "valid until ";
  const size_t from = changed.find(marker) + marker.size();
  absl::Time until;
  std::string error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, changed.substr(from, changed.find(')', from) - from), &until, &error))
      << changed << ": " << error;
  EXPECT_GT(until, absl::Now() + absl::Hours(29 * 24)) << changed;  // the new one's 30 days, not the old 397
  EXPECT_LT(until, absl::Now() + absl::Hours(31 * 24)) << changed;
  EXPECT_TRUE(Serves(a_address, new_signature));

  StartCounterNode("c", "127.0.0.1:0", With({"--peer=" + a_address, "--increments=300", "--keys=30"}, Tls("c")), &c);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(Line(c, "c: ready: joined a cluster of 3 nodes, 6 shards"), "");
  EXPECT_NE(Line(c, "verified: 30 keys read back, each as expected (30..30); they sum to 900 = 900 sent"), "");
  EXPECT_FALSE(b->WaitForLine("node a is down", absl::Now()).ok()) << "the link between a and b was lost";

  for (ChildProcess* p : {a, b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

// With --tls_reload=0 only SIGHUP reloads: the rotated certificate is
// served after it, not before; a SIGHUP with files that do not load keeps
// the certificate in use.
TEST_F(TlsProcesses, SighupMakesANodeServeItsRotatedCertificate) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", With({"--tls_reload=0"}, Tls("a")), &a);
  ASSERT_FALSE(a_address.empty());

  const std::string old_signature = SignatureLine(Pem("a"));
  ASSERT_TRUE(MakeNodeCerts(certs_, {"a"}));
  const std::string new_signature = SignatureLine(Pem("a"));
  ASSERT_NE(new_signature, old_signature);
  EXPECT_TRUE(Serves(a_address, old_signature));

  a->Signal(SIGHUP);
  EXPECT_NE(Line(a, "a: SIGHUP: TLS files reloaded; new connections use them"), "");
  EXPECT_TRUE(Serves(a_address, new_signature));

  // b's certificate in a's place: it does not name a, so nothing changes.
  {
    std::ifstream in(Pem("b"));
    std::ofstream out(Pem("a"), std::ios::trunc);
    out << in.rdbuf();
  }
  a->Signal(SIGHUP);
  EXPECT_NE(Line(a, "a: SIGHUP: TLS files not reloaded: "), "");
  EXPECT_TRUE(Serves(a_address, new_signature));

  StartCounterNode("b", "127.0.0.1:0", With({"--peer=" + a_address, "--increments=300", "--keys=30"}, Tls("b")), &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(b, "verified: 30 keys read back, each as expected (20..20); they sum to 600 = 600 sent"), "");
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  EXPECT_TRUE(ExitsCleanly(b));
}

}  // namespace
}  // namespace troupe::tests
