// Nodes over TLS, in one process on loopback: tells, asks, Refs inside
// messages, monitors and remote spawn among three nodes; the refusals a
// node makes at the node layer (a peer of the other mode, a certificate of
// another CA, a certificate that does not name the node); an on-path byte
// flip; certificate rotation. Certificates are made in memory
// (net/io/tls_test_pki.h) and, for rotation, written to files.

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "gtest/gtest.h"
#include "net/io/tls_test_pki.h"
#include "net/node.h"
#include "net/node_test_util.h"
#include "net/raw_peer_test_util.h"
#include "net/testdata/node_test_messages.troupe.h"

namespace troupe::nettest {
namespace {

using net::testing::PemCredentials;
using net::testing::TestCa;

NodeOptions TlsOptions(const std::string& name, const TestCa& ca, const PemCredentials& pem) {
  NodeOptions o;
  o.name = name;
  o.tls.certificate_chain_pem = pem.certificate_chain;
  o.tls.private_key_pem = pem.private_key;
  o.tls.trusted_ca_pem = ca.certificate_pem();
  return o;
}

NodeOptions TlsOptions(const std::string& name, const TestCa& ca) { return TlsOptions(name, ca, ca.IssueFor(name)); }

TEST(TlsNodes, ThreeNodesTellAskPassRefsMonitorAndSpawnOverTls) {
  TestCa ca;
  LoggedSystem a_sys("a"), b_sys("b"), c_sys("c");
  Node a(a_sys.system, TlsOptions("a", ca));
  Node b(b_sys.system, TlsOptions("b", ca));
  Node c(c_sys.system, TlsOptions("c", ca));
  ASSERT_TRUE(a.ready().ok()) << a.ready();
  const std::string a_address = a.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(c.Listen("127.0.0.1:0").ok());
  Ref<Counter> counter = a_sys.system.Spawn<Counter>();
  ASSERT_TRUE(a.Publish("counter", counter).ok());
  a.AllowSpawn<Counter, CounterArgs>();

  // b: tells and asks.
  Ref<Counter> from_b = b.Lookup<Counter>(a_address, "counter").Wait(kWait).value();
  for (int i = 1; i <= 100; ++i) from_b.Tell(Add{.by = i});
  EXPECT_EQ(from_b.Ask(Get{}, kWait).Wait(kWait).value(), 5050);

  // c: a Ref to its own Collector inside a message; a's counter tells it.
  Promise<std::string> note;
  Future<std::string> note_f = note.GetFuture();
  Ref<Collector> collector = c_sys.system.Spawn<Collector>(std::move(note));
  Ref<Counter> from_c = c.Lookup<Counter>(a_address, "counter").Wait(kWait).value();
  from_c.Tell(Register{.who = collector});
  EXPECT_EQ(note_f.Wait(kWait).value(), "hello from the counter");

  // c passes its Ref to a's counter on to b, which uses it.
  Ref<Counter> spawned = b.SpawnOn<Counter>(a_address, CounterArgs{.start = 10}).Wait(kWait).value();
  EXPECT_EQ(spawned.Ask(Get{}, kWait).Wait(kWait).value(), 10);

  // b monitors the spawned actor on a.
  Promise<std::string> down;
  Future<std::string> down_f = down.GetFuture();
  Ref<Watcher> watcher = b_sys.system.Spawn<Watcher>(std::move(down));
  ASSERT_TRUE(watcher.Ask(Watch{.target = ActorRef(spawned)}, kWait).Wait(kWait).ok());
  ASSERT_EQ(spawned.Ask(Get{}, kWait).Wait(kWait).value(), 10);  // after the watch frame, on the same link
  spawned.Tell(Quit{});
  EXPECT_EQ(down_f.Wait(kWait).value(), "OK");

  for (Node* n : {&a, &b, &c}) {
    EXPECT_EQ(n->stats().tls_refused, 0u);
    EXPECT_EQ(n->stats().tls_errors, 0u);
    EXPECT_EQ(n->stats().handshakes_failed, 0u);
  }
  EXPECT_EQ(a_sys.CountLines({"TLS with certificate", "CN=a"}), 1) << a_sys.All();
}

TEST(TlsNodes, TlsNodeAndPlaintextNodeRefuseEachOtherAndBothSayWhy) {
  TestCa ca;
  LoggedSystem t_sys("t"), p_sys("p");
  Node tls(t_sys.system, TlsOptions("t", ca));
  Node plain(p_sys.system, Options("p"));
  const std::string tls_address = tls.Listen("127.0.0.1:0").value();
  const std::string plain_address = plain.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(tls.Publish("counter", t_sys.system.Spawn<Counter>()).ok());
  ASSERT_TRUE(plain.Publish("counter", p_sys.system.Spawn<Counter>()).ok());

  // Plaintext dials TLS: the TLS node says the peer does not speak TLS; the
  // plaintext node hears, in its own framing, that TLS is required.
  absl::StatusOr<Ref<Counter>> r1 = plain.Lookup<Counter>(tls_address, "counter", absl::Seconds(5)).Wait(kWait);
  ASSERT_FALSE(r1.ok());
  EXPECT_TRUE(Eventually([&] { return p_sys.CountLines({"refused the connection", "requires TLS"}) == 1; }))
      << p_sys.All();
  EXPECT_TRUE(Eventually([&] { return t_sys.CountLines({"does not speak TLS"}) == 1; })) << t_sys.All();
  EXPECT_EQ(tls.stats().tls_refused, 1u);

  // TLS dials plaintext: each end names the other's mode.
  absl::StatusOr<Ref<Counter>> r2 = tls.Lookup<Counter>(plain_address, "counter", absl::Seconds(5)).Wait(kWait);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(Eventually([&] { return p_sys.CountLines({"the peer speaks TLS"}) == 1; })) << p_sys.All();
  EXPECT_TRUE(Eventually([&] { return tls.stats().tls_refused == 2; }));
  EXPECT_GE(plain.stats().tls_refused, 1u);
}

TEST(TlsNodes, ANodeWithACertificateOfAnotherCaCannotJoin) {
  TestCa ca("cluster CA"), other("another CA");
  LoggedSystem a_sys("a"), x_sys("x");
  Node a(a_sys.system, TlsOptions("a", ca));
  // x trusts the cluster's CA but its own certificate comes from another.
  Node x(x_sys.system, TlsOptions("x", ca, other.IssueFor("x")));
  const std::string address = a.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(a.Publish("counter", a_sys.system.Spawn<Counter>()).ok());
  absl::StatusOr<Ref<Counter>> r = x.Lookup<Counter>(address, "counter", absl::Seconds(5)).Wait(kWait);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Eventually([&] { return a.stats().tls_refused == 1; }));
  EXPECT_TRUE(Eventually([&] { return a_sys.CountLines({"unable to get local issuer certificate"}) == 1; }))
      << a_sys.All();
  EXPECT_TRUE(Eventually([&] { return x_sys.CountLines({"refused this node's certificate"}) >= 1; })) << x_sys.All();
  EXPECT_EQ(a.stats().connections, 0u);
}

TEST(TlsNodes, ANodeWhoseCertificateNamesAnotherNodeDoesNotStart) {
  TestCa ca;
  ActorSystem sys({.workers = 1, .name = "b"});
  Node b(sys, TlsOptions("b", ca, ca.IssueFor("c")));
  EXPECT_EQ(b.ready().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(b.ready().message(), "not for this node, 'b'")) << b.ready();
  EXPECT_EQ(b.Listen("127.0.0.1:0").status(), b.ready());
}

TEST(TlsNodes, AByteFlippedOnThePathClosesTheLinkAndNothingOfTheTamperedRecordArrives) {
  TestCa ca;
  LoggedSystem a_sys("a"), b_sys("b");
  NodeOptions ao = TlsOptions("a", ca);
  Node a(a_sys.system, ao);
  Node b(b_sys.system, TlsOptions("b", ca));
  const std::string address = a.Listen("127.0.0.1:0").value();
  Ref<Sequencer> sequencer = a_sys.system.Spawn<Sequencer>();
  ASSERT_TRUE(a.Publish("sequencer", sequencer).ok());
  TcpRelay relay;
  relay.SetTarget(address);
  Ref<Sequencer> remote = b.Lookup<Sequencer>(relay.address(), "sequencer").Wait(kWait).value();
  for (int64_t n = 1; n <= 100; ++n) remote.Tell(Seq{.sender = 1, .n = n});
  ASSERT_EQ(remote.Ask(Tally{}, kWait).Wait(kWait).value().total, 100);

  // The next record b sends has one byte flipped: inside its ciphertext,
  // past the 5-byte record header.
  relay.FlipByteAt(relay.forwarded() + 12);
  for (int64_t n = 101; n <= 200; ++n) remote.Tell(Seq{.sender = 1, .n = n});
  ASSERT_TRUE(Eventually([&] { return a.stats().tls_errors == 1; })) << a.stats().tls_errors;
  // One warning names the cause; the node's line on the lost link repeats it.
  EXPECT_TRUE(Eventually([&] { return a_sys.CountLines({"[warning]", "integrity check"}) == 1; })) << a_sys.All();
  // What arrived is a run from 1 without a gap or an altered number: the
  // tampered record, and every record after it on that connection, were
  // dropped whole.
  TallyResult tally = sequencer.Ask(Tally{}, kWait).Wait(kWait).value();
  EXPECT_EQ(tally.out_of_order, 0);
  EXPECT_GE(tally.total, 100);
  EXPECT_LT(tally.total, 200);
  EXPECT_EQ(a.stats().undecodable, 0u);
  EXPECT_EQ(a.stats().bad_frames, 0u);
}

TEST(TlsNodes, RotatedCertificateFilesServeNewConnectionsAndLinksUpKeepTheirs) {
  TestCa old_ca("old CA"), new_ca("new CA");
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/rotation");
  auto [cert, key] = net::testing::WriteCredentials(dir, "a", old_ca.IssueFor("a"));
  const std::string bundle = dir + "/ca.pem";
  net::testing::WriteFile(bundle, old_ca.certificate_pem() + new_ca.certificate_pem());
  NodeOptions ao;
  ao.name = "a";
  ao.tls.certificate_chain_file = cert;
  ao.tls.private_key_file = key;
  ao.tls.trusted_ca_file = bundle;
  ao.tls_reload_interval = absl::Milliseconds(50);
  LoggedSystem a_sys("a"), b_sys("b"), c_sys("c");
  Node a(a_sys.system, ao);
  ASSERT_TRUE(a.ready().ok()) << a.ready();
  const std::string address = a.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(a.Publish("counter", a_sys.system.Spawn<Counter>()).ok());
  // b trusts only the old CA, and links up before the rotation.
  Node b(b_sys.system, TlsOptions("b", old_ca));
  Ref<Counter> from_b = b.Lookup<Counter>(address, "counter").Wait(kWait).value();
  from_b.Tell(Add{.by = 1});
  ASSERT_EQ(from_b.Ask(Get{}, kWait).Wait(kWait).value(), 1);

  net::testing::WriteCredentials(dir, "a", new_ca.IssueFor("a"));
  ASSERT_TRUE(Eventually([&] { return a_sys.CountLines({"TLS files changed", "new connections use"}) == 1; }))
      << a_sys.All();
  // c trusts only the new CA: it can connect now.
  Node c(c_sys.system, TlsOptions("c", new_ca));
  Ref<Counter> from_c = c.Lookup<Counter>(address, "counter").Wait(kWait).value();
  from_c.Tell(Add{.by = 1});
  EXPECT_EQ(from_c.Ask(Get{}, kWait).Wait(kWait).value(), 2);
  // b's link, made with the old certificate, still carries its messages.
  from_b.Tell(Add{.by = 1});
  EXPECT_EQ(from_b.Ask(Get{}, kWait).Wait(kWait).value(), 3);
  EXPECT_EQ(b.stats().tls_refused, 0u);
  // And ReloadTls, with the files unchanged, loads them again.
  EXPECT_TRUE(a.ReloadTls().ok());
}


// A node over TLS and a raw TLS peer speaking the node handshake by hand:
// the name it claims must be in its certificate, and its proof must cover
// this TLS connection's exporter value. A TLS node b is linked throughout
// and must not notice.
class TlsRawPeer : public ::testing::Test {
 protected:
  TlsRawPeer() : a_sys_("a"), b_sys_("b") {
    (void)KeyOf("");  // the proofs' key without a cluster secret, stretched before the deadline runs
    NodeOptions o = TlsOptions("a", ca_);
    o.heartbeat_interval = absl::Milliseconds(kRawHeartbeatIntervalMs);
    o.heartbeat_timeout = absl::Milliseconds(kRawHeartbeatTimeoutMs);
    a_ = std::make_unique<Node>(a_sys_.system, o);
    address_ = a_->Listen("127.0.0.1:0").value();
    EXPECT_TRUE(a_->Publish("counter", a_sys_.system.Spawn<Counter>()).ok());
    NodeOptions ob = TlsOptions("b", ca_);
    ob.heartbeat_interval = o.heartbeat_interval;
    ob.heartbeat_timeout = o.heartbeat_timeout;
    b_ = std::make_unique<Node>(b_sys_.system, ob);
    healthy_ = b_->Lookup<Counter>(address_, "counter").Wait(kWait).value();
    healthy_.Tell(Add{.by = 1});
  }

  RawTls Credentials(const std::string& certificate_name) {
    PemCredentials pem = ca_.IssueFor(certificate_name);
    return RawTls{.certificate_pem = pem.certificate_chain, .key_pem = pem.private_key, .ca_pem = ca_.certificate_pem()};
  }

  void ExpectHealthyUndisturbed() {
    EXPECT_EQ(healthy_.Ask(Get{}, kWait).Wait(kWait).value(), 1);
    EXPECT_EQ(b_->stats().connections, 1u);
  }

  TestCa ca_;
  LoggedSystem a_sys_, b_sys_;
  std::unique_ptr<Node> a_, b_;
  std::string address_;
  Ref<Counter> healthy_;
};

TEST_F(TlsRawPeer, APeerThatClaimsTheNameOfItsCertificateIsAccepted) {
  const RawTls tls = Credentials("r");
  RawPeer raw(address_, &tls);
  ASSERT_TRUE(raw.tls_up());
  EXPECT_EQ(raw.Handshake("", "r"), "");
  EXPECT_EQ(a_->stats().tls_refused, 0u);
  ExpectHealthyUndisturbed();
}

TEST_F(TlsRawPeer, APeerThatClaimsAnotherNameThanItsCertificatesIsRefused) {
  const RawTls tls = Credentials("c");
  RawPeer raw(address_, &tls);
  ASSERT_TRUE(raw.tls_up());
  const std::string refused = raw.Handshake("", "b");
  EXPECT_TRUE(absl::StrContains(refused, "calls itself 'b' but its certificate is for [c]")) << refused;
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_EQ(a_->stats().tls_refused, 1u);
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
  EXPECT_EQ(a_sys_.CountLines({"calls itself 'b'", "[warning]"}), 1) << a_sys_.All();
  ExpectHealthyUndisturbed();
}

TEST_F(TlsRawPeer, AHandshakeNotBoundToThisTlsConnectionIsRefused) {
  const RawTls tls = Credentials("r");
  RawPeer raw(address_, &tls);
  ASSERT_TRUE(raw.tls_up());
  // The proof a relay would forward: made over the hellos alone, as on
  // another connection, without this one's exporter value.
  const std::string refused = raw.Handshake("", "r", /*bind=*/false);
  EXPECT_TRUE(absl::StrContains(refused, "relayed from another TLS connection")) << refused;
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
  ExpectHealthyUndisturbed();
}

TEST_F(TlsRawPeer, GarbageAfterTheTlsHandshakeClosesOnlyThatConnection) {
  const RawTls tls = Credentials("r");
  RawPeer raw(address_, &tls);
  ASSERT_TRUE(raw.tls_up());
  ASSERT_EQ(raw.Handshake("", "r"), "");
  raw.SendRawBytes(std::string(100, 'x'));  // outside TLS, on the same socket
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_TRUE(Eventually([&] { return a_->stats().tls_errors == 1; }));
  ExpectHealthyUndisturbed();
}

TEST_F(TlsRawPeer, APeerThatStallsInTheTlsHandshakeIsClosedByItsDeadlinesAndCounted) {
  RawPeer raw(address_);  // TCP only
  raw.SendRawBytes(std::string("\x16\x03\x01\x00\xc8\x01\x00", 7));  // a ClientHello begun, never finished
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_TRUE(Eventually([&] { return a_->stats().handshakes_failed >= 1; }));
  ExpectHealthyUndisturbed();
}

}  // namespace
}  // namespace troupe::nettest
