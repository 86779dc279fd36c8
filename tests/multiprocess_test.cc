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

// b runs the workload over a, b and c: tells and asks from a client on
// each node to keys all over the cluster. Killed without leaving, a is
// reported down by the others, and its keys are served by them.
TEST_F(Processes, AKilledMemberIsReportedDownAndItsKeysAreServedByTheOthers) {
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  std::vector<ChildProcess*> n = StartCluster({"a", "b", "c"}, at, StaticCluster(at), {{}, {"--increments=2000", "--keys=100"}});
  ASSERT_TRUE(n[0] && n[1] && n[2]);
  ChildProcess *a = n[0], *b = n[1], *c = n[2];
  EXPECT_NE(Line(b, "workload: 3 clients (1 on each of 3 nodes)"), "");
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "c/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (60..60); they sum to 6000 = 6000 sent"), "");
  EXPECT_NE(Line(b, "b: workload done"), "");

  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: member a up -> down"), "");
  EXPECT_NE(Line(c, "c: member a up -> down"), "");
  // Two of three: b and c host a's shards too.
  ExpectWorkloadVerifies("client", at[1], 2);

  for (ChildProcess* p : {b, c}) p->Signal(SIGTERM);
  EXPECT_NE(Line(b, "b: stopped"), "");
  for (ChildProcess* p : {b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

TEST_F(Processes, ANodeThatLeavesIsReportedAsLeavingThenRemovedNeverDown) {
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  std::vector<ChildProcess*> n = StartCluster({"a", "b", "c"}, at, StaticCluster(at), {});
  ASSERT_TRUE(n[0] && n[1] && n[2]);
  ChildProcess *a = n[0], *b = n[1], *c = n[2];
  EXPECT_NE(Line(a, "a: member b joining -> up"), "");

  b->Signal(SIGTERM);
  EXPECT_NE(Line(b, "b: signal 15: leaving the cluster"), "");
  EXPECT_NE(Line(a, "a: member b up -> leaving"), "");
  EXPECT_NE(Line(a, "a: member b leaving -> removed"), "");
  EXPECT_TRUE(ExitsCleanly(b));
  for (ChildProcess* p : {a, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, c}) EXPECT_TRUE(ExitsCleanly(p));
  for (const std::string& line : a->Tail()) EXPECT_EQ(line.find("-> down"), std::string::npos) << line;
}

TEST_F(Processes, AClientThatIsNoMemberFindsEveryNodeFromOneAndChecksTheTotals) {
  const std::vector<std::string> at = FreeAddresses(2);
  ASSERT_EQ(at.size(), 2u);
  std::vector<ChildProcess*> n = StartCluster({"a", "b"}, at, StaticCluster(at), {});
  ASSERT_TRUE(n[0] && n[1]);

  // Given only a, the client learns b from a's view of the cluster.
  ChildProcess* client = StartCounterClient("client", at[0], {"--increments=500", "--keys=50", "--clients=2"});
  EXPECT_NE(Line(client, "workload: 4 clients (2 on each of 2 nodes)"), "");
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (40..40); they sum to 2000 = 2000 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));

  for (ChildProcess* p : n) p->Signal(SIGTERM);
  for (ChildProcess* p : n) EXPECT_TRUE(ExitsCleanly(p));
}

// The stranger is listed, but its secret is not the cluster's: it never
// reaches a majority, gives up at --join_timeout, and nobody sees it up.
TEST_F(Processes, ANodeWithAnotherSecretCannotJoin) {
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  // Three listed; a and b are a majority without the stranger.
  std::vector<ChildProcess*> n = StartCluster({"a", "b"}, {at[0], at[1]}, StaticCluster(at), {});
  ASSERT_TRUE(n[0] && n[1]);
  ChildProcess* stranger = Start("stranger", {Runfile("examples/counter_service"), "--listen=" + at[2],
                                              "--name=stranger", "--secret=not-the-secret",
                                              "--cluster=" + StaticCluster(at), "--join_timeout=1s"});
  EXPECT_NE(Line(stranger, "stranger: could not join the cluster within 1s: 1 of 3 listed members up"), "");
  EXPECT_NE(Ended(stranger).find("exited 1"), std::string::npos);
  for (ChildProcess* p : n) EXPECT_FALSE(p->WaitForLine("member stranger", absl::Now()).ok()) << "the stranger joined";
  for (ChildProcess* p : n) p->Signal(SIGTERM);
  for (ChildProcess* p : n) EXPECT_TRUE(ExitsCleanly(p));
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

TEST_F(TlsProcesses, CounterNodesServeTellsAndAsksAndReportALoss) {
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  std::vector<ChildProcess*> n =
      StartCluster({"a", "b", "c"}, at, StaticCluster(at),
                   {Tls("a"), With({"--increments=2000", "--keys=100"}, Tls("b")), Tls("c")});
  ASSERT_TRUE(n[0] && n[1] && n[2]);
  ChildProcess *a = n[0], *b = n[1], *c = n[2];
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (60..60); they sum to 6000 = 6000 sent"), "");

  // Given only a, the client reaches b and c at the addresses in a's view,
  // over TLS connections of its own.
  ChildProcess* client = StartCounterClient("client", at[0], With({"--increments=500", "--keys=50", "--clients=2"},
                                                                  Tls("client")));
  EXPECT_NE(Line(client, "workload: 6 clients (2 on each of 3 nodes)"), "");
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (60..60); they sum to 3000 = 3000 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));

  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: member a up -> down"), "");
  EXPECT_NE(Line(c, "c: member a up -> down"), "");
  for (ChildProcess* p : {b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

TEST_F(TlsProcesses, ANodeWithACertificateOfAnotherCaCannotJoin) {
  const std::string other = MakeCa("other");
  ASSERT_FALSE(other.empty());
  ASSERT_TRUE(MakeNodeCerts(other, {"stranger"}));
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  std::vector<ChildProcess*> n = StartCluster({"a", "b"}, {at[0], at[1]}, StaticCluster(at), {Tls("a"), Tls("b")});
  ASSERT_TRUE(n[0] && n[1]);
  // It trusts the cluster's CA: the refusal is a's (and b's).
  ChildProcess* stranger =
      Start("stranger", With({Runfile("examples/counter_service"), "--listen=" + at[2], "--workers=1",
                              "--cluster=" + StaticCluster(at), "--join_timeout=1s"},
                             TlsFlags(other, "stranger", certs_)));
  EXPECT_NE(Line(n[0], "closed: UNAUTHENTICATED: TLS handshake: the peer's certificate is refused"), "");
  EXPECT_NE(Line(stranger, "stranger: could not join the cluster within 1s"), "");
  EXPECT_NE(Ended(stranger).find("exited 1"), std::string::npos);
  for (ChildProcess* p : n) EXPECT_FALSE(p->WaitForLine("member stranger", absl::Now()).ok()) << "the stranger joined";
  for (ChildProcess* p : n) p->Signal(SIGTERM);
  for (ChildProcess* p : n) EXPECT_TRUE(ExitsCleanly(p));
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
  const std::vector<std::string> at = FreeAddresses(3);
  ASSERT_EQ(at.size(), 3u);
  const std::string& a_address = at[0];
  std::vector<ChildProcess*> n = StartCluster(
      {"a", "b"}, {at[0], at[1]}, StaticCluster(at), {With({"--log_level=info", "--tls_reload=200ms"}, Tls("a")), Tls("b")});
  ASSERT_TRUE(n[0] && n[1]);
  ChildProcess *a = n[0], *b = n[1];

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

  // c, listed with a and b, starts now and finds them through the new
  // certificate; its workload runs over all three.
  ChildProcess* c = StartCounterNode("c", at[2], StaticCluster(at), With({"--increments=300", "--keys=30"}, Tls("c")));
  ASSERT_TRUE(Ready(c));
  EXPECT_NE(Line(c, "verified: 30 keys read back, each as expected (30..30); they sum to 900 = 900 sent"), "");
  EXPECT_FALSE(b->WaitForLine("member a up -> down", absl::Now()).ok()) << "the link between a and b was lost";

  for (ChildProcess* p : {a, b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

// With --tls_reload=0 only SIGHUP reloads: the rotated certificate is
// served after it, not before; a SIGHUP with files that do not load keeps
// the certificate in use.
TEST_F(TlsProcesses, SighupMakesANodeServeItsRotatedCertificate) {
  const std::vector<std::string> at = FreeAddresses(2);
  ASSERT_EQ(at.size(), 2u);
  const std::string& a_address = at[0];
  // a alone may not host (an even split goes to the lower address): it waits for b.
  ChildProcess* a =
      StartCounterNode("a", at[0], StaticCluster(at), With({"--tls_reload=0", "--join_timeout=0"}, Tls("a")));
  ASSERT_NE(a, nullptr);

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

  ChildProcess* b = StartCounterNode("b", at[1], StaticCluster(at), With({"--increments=300", "--keys=30"}, Tls("b")));
  ASSERT_TRUE(Ready(b));
  EXPECT_NE(Line(b, "verified: 30 keys read back, each as expected (20..20); they sum to 600 = 600 sent"), "");
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  EXPECT_TRUE(ExitsCleanly(b));
}

}  // namespace
}  // namespace troupe::tests
