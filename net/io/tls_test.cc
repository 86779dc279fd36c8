// TLS on the reactor's connections: frames both ways over TLS 1.3 with
// certificates checked at both ends, and each refusal — a certificate from
// another CA, expired or not yet valid, a TLS 1.2-only client, a plaintext
// peer and the reverse, bytes that are not TLS after the handshake, a
// stalled handshake — closing only its connection, with its reason and a
// counter. Certificates are made in memory (tls_test_pki.h).

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "net/io/reactor.h"
#include "net/io/reactor_test_util.h"
#include "net/io/tls.h"
#include "net/io/tls_test_pki.h"

namespace troupe::net {
namespace {

using testing::Bytes;
using testing::ConnectAndWait;
using testing::Eventually;
using testing::EchoHandler;
using testing::LoggedReactorOptions;
using testing::NumberedFrame;
using testing::Pattern;
using testing::PemCredentials;
using testing::RawClient;
using testing::RecordingHandler;
using testing::TestCa;
using testing::TestLog;
using testing::TestServer;
using testing::Wire;

TlsCredentials Credentials(const TestCa& ca, const PemCredentials& pem) {
  TlsCredentials c;
  c.certificate_chain_pem = pem.certificate_chain;
  c.private_key_pem = pem.private_key;
  c.trusted_ca_pem = ca.certificate_pem();
  return c;
}

ConnectionOptions TlsOptions(const TestCa& ca, const PemCredentials& pem) {
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(Credentials(ca, pem));
  EXPECT_TRUE(config.ok()) << config.status();
  ConnectionOptions o;
  o.tls = config.ok() ? *config : nullptr;
  return o;
}

// The server's side of its n-th connection closes with `code`, its reason
// naming `text`.
void ExpectServerClosed(TestServer& server, size_t n, absl::StatusCode code, const std::string& text) {
  ASSERT_TRUE(server.WaitForAccepted(n));
  const absl::Status reason = server.handler(n)->WaitForClose();
  EXPECT_EQ(reason.code(), code) << reason;
  EXPECT_TRUE(absl::StrContains(reason.message(), text)) << reason;
}

// A blocking TLS client of the test's own, for peers a Reactor would not be:
// one that speaks only TLS 1.2, or writes raw bytes after its handshake.
class RawTlsClient {
 public:
  RawTlsClient(const std::string& address, const TestCa& ca, const PemCredentials& pem, int max_version)
      : raw_(address) {
    timeval timeout{10, 0};
    setsockopt(raw_.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ctx_ = testing::NewClientContext(ca.certificate_pem(), pem, max_version);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, raw_.fd());
  }
  ~RawTlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  // True if the handshake completed (TLS 1.3: before the server has checked
  // this client's certificate).
  bool Handshake() { return SSL_connect(ssl_) == 1; }
  bool WriteTls(absl::Span<const uint8_t> bytes) {
    size_t n = 0;
    return SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) == 1 && n == bytes.size();
  }
  bool ReadTls(size_t want, Bytes& out) {
    out.resize(want);
    size_t have = 0;
    while (have < want) {
      size_t n = 0;
      if (SSL_read_ex(ssl_, out.data() + have, want - have, &n) != 1) return false;
      have += n;
    }
    return true;
  }
  RawClient& raw() { return raw_; }

 private:
  RawClient raw_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

TEST(Tls, FramesCrossBothWaysAndEachEndKnowsTheOthersCertificate) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log, 2));
  TestCa ca;
  TestServer server(reactor, TlsOptions(ca, ca.IssueFor("server")), [] { return EchoHandler(); });
  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c =
      ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("client")), client);
  ASSERT_TRUE(c.ok()) << c.status();

  // Small frames, then ones larger than a TLS record and than the gather
  // buffer: each comes back whole and in order.
  constexpr int kFrames = 2000;
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE((*c)->Send(NumberedFrame(i, i % 100 == 0 ? 200000 : 64)).ok());
  ASSERT_TRUE(client->WaitForFrames(kFrames));
  std::vector<Bytes> frames = client->frames();
  for (int i = 0; i < kFrames; ++i) {
    const OutFrame expected = NumberedFrame(i, i % 100 == 0 ? 200000 : 64);
    ASSERT_EQ(frames[i], Bytes(expected.payload(), expected.payload() + expected.payload_size())) << i;
  }
  ASSERT_TRUE(server.WaitForAccepted(0));
  const TlsPeer* seen_by_client = (*c)->tls_peer();
  const TlsPeer* seen_by_server = server.connection(0)->tls_peer();
  ASSERT_NE(seen_by_client, nullptr);
  ASSERT_NE(seen_by_server, nullptr);
  EXPECT_EQ(seen_by_client->names, std::vector<std::string>{"server"});
  EXPECT_EQ(seen_by_server->names, std::vector<std::string>{"client"});
  // One TLS connection, one exporter value at both ends.
  EXPECT_EQ(seen_by_client->exporter.size(), kExporterBytes);
  EXPECT_EQ(seen_by_client->exporter, seen_by_server->exporter);
  EXPECT_TRUE(absl::StartsWith(seen_by_client->cipher, "TLS_")) << seen_by_client->cipher;
  EXPECT_EQ(reactor.stats().tls_refused, 0u);
  EXPECT_EQ(reactor.stats().tls_errors, 0u);
}

TEST(Tls, TwoConnectionsExportDifferentValues) {
  Reactor reactor(ReactorOptions{});
  TestCa ca;
  TestServer server(reactor, TlsOptions(ca, ca.IssueFor("server")), [] { return EchoHandler(); });
  std::vector<std::string> exporters;
  for (int i = 0; i < 2; ++i) {
    auto client = std::make_shared<RecordingHandler>();
    absl::StatusOr<std::shared_ptr<Connection>> c =
        ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("client")), client);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Send(NumberedFrame(1)).ok());
    ASSERT_TRUE(client->WaitForFrames(1));
    exporters.push_back((*c)->tls_peer()->exporter);
  }
  EXPECT_NE(exporters[0], exporters[1]);
}

// A client whose certificate the server refuses: the server closes with the
// verification error, counted; the client hears the alert.
void ExpectClientCertificateRefused(const TestCa& server_ca, const TestCa& client_ca, const PemCredentials& client_pem,
                                    const std::string& server_reason) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestServer server(reactor, TlsOptions(server_ca, server_ca.IssueFor("server")), [] { return EchoHandler(); });
  // The client trusts the server's CA, so only the server refuses.
  ConnectionOptions options;
  TlsCredentials creds = Credentials(client_ca, client_pem);
  creds.trusted_ca_pem = server_ca.certificate_pem();
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(creds);
  if (!config.ok()) {
    // An expired or not yet valid certificate does not load at all: this
    // end refuses to use it. Give it to a raw client instead.
    RawTlsClient raw(server.address(), server_ca, client_pem, TLS1_3_VERSION);
    (void)raw.Handshake();
    Bytes ignored;
    (void)raw.ReadTls(1, ignored);  // the server's alert
  } else {
    options.tls = *config;
    auto client = std::make_shared<RecordingHandler>();
    absl::StatusOr<std::shared_ptr<Connection>> c = ConnectAndWait(reactor, server.address(), options, client);
    ASSERT_TRUE(c.ok());
    (void)(*c)->Send(NumberedFrame(1));
    const absl::Status heard = client->WaitForClose();
    EXPECT_EQ(heard.code(), absl::StatusCode::kUnauthenticated) << heard;
    EXPECT_TRUE(absl::StrContains(heard.message(), "refused this node's certificate")) << heard;
    EXPECT_EQ(client->frame_count(), 0u);
  }
  ExpectServerClosed(server, 0, absl::StatusCode::kUnauthenticated, server_reason);
  EXPECT_EQ(server.handler(0)->frame_count(), 0u);
  EXPECT_TRUE(Eventually([&] { return reactor.stats().tls_refused >= 1; }));
  EXPECT_EQ(log.CountLines({"closed", server_reason}), 1) << log.All();
}

TEST(Tls, CertificateFromAnotherCaIsRefused) {
  TestCa ca("cluster CA"), other("another CA");
  ExpectClientCertificateRefused(ca, other, other.IssueFor("client"), "unable to get local issuer certificate");
}

TEST(Tls, ExpiredCertificateIsRefused) {
  TestCa ca;
  testing::CertificateSpec spec;
  spec.dns_names = {"client"};
  spec.valid_from = -absl::Hours(48);
  spec.valid_until = -absl::Hours(24);
  ExpectClientCertificateRefused(ca, ca, ca.Issue(spec), "certificate has expired");
}

TEST(Tls, NotYetValidCertificateIsRefused) {
  TestCa ca;
  testing::CertificateSpec spec;
  spec.dns_names = {"client"};
  spec.valid_from = absl::Hours(24);
  spec.valid_until = absl::Hours(48);
  ExpectClientCertificateRefused(ca, ca, ca.Issue(spec), "certificate is not yet valid");
}

TEST(Tls, ExpiredOwnCertificateDoesNotLoad) {
  TestCa ca;
  testing::CertificateSpec spec;
  spec.dns_names = {"me"};
  spec.valid_from = -absl::Hours(48);
  spec.valid_until = -absl::Hours(24);
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(Credentials(ca, ca.Issue(spec)));
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StrContains(config.status().message(), "expired")) << config.status();
}

TEST(Tls, OwnCertificateMustNameTheNode) {
  TestCa ca;
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(Credentials(ca, ca.IssueFor("b")), "a");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StrContains(config.status().message(), "not for this node, 'a'")) << config.status();
  EXPECT_TRUE(TlsConfig::Create(Credentials(ca, ca.IssueFor("a")), "a").ok());
}

TEST(Tls, KeyOfAnotherCertificateDoesNotLoad) {
  TestCa ca;
  TlsCredentials creds = Credentials(ca, ca.IssueFor("a"));
  creds.private_key_pem = ca.IssueFor("a").private_key;
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(creds);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StrContains(config.status().message(), "does not belong to the certificate")) << config.status();
}

TEST(Tls, Tls12OnlyClientIsRefused) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestCa ca;
  TestServer server(reactor, TlsOptions(ca, ca.IssueFor("server")), [] { return EchoHandler(); });
  RawTlsClient old(server.address(), ca, ca.IssueFor("client"), TLS1_2_VERSION);
  EXPECT_FALSE(old.Handshake());
  ERR_clear_error();
  ExpectServerClosed(server, 0, absl::StatusCode::kFailedPrecondition, "no TLS 1.3");
  EXPECT_EQ(reactor.stats().tls_refused, 1u);
}

TEST(Tls, PlaintextPeerOfATlsServerIsToldWhy) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestCa ca;
  ConnectionOptions tls = TlsOptions(ca, ca.IssueFor("server"));
  tls.mode_mismatch_reply = "this end requires TLS";
  TestServer server(reactor, tls, [] { return EchoHandler(); });
  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c = ConnectAndWait(reactor, server.address(), ConnectionOptions{}, client);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Send(NumberedFrame(7)).ok());
  // The plaintext end reads the server's reply as a frame, then the close.
  ASSERT_TRUE(client->WaitForFrames(1));
  const Bytes reply = client->frames()[0];
  EXPECT_EQ(std::string(reply.begin(), reply.end()), "this end requires TLS");
  EXPECT_EQ(client->WaitForClose().code(), absl::StatusCode::kUnavailable);
  ExpectServerClosed(server, 0, absl::StatusCode::kFailedPrecondition, "does not speak TLS");
  EXPECT_EQ(server.handler(0)->frame_count(), 0u);
  EXPECT_EQ(reactor.stats().tls_refused, 1u);
}

TEST(Tls, TlsPeerOfAPlaintextServerIsToldWhy) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestCa ca;
  ConnectionOptions plain;
  plain.refuse_tls_peers = true;
  plain.mode_mismatch_reply = "this end runs without TLS";
  TestServer server(reactor, plain, [] { return EchoHandler(); });
  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c =
      ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("client")), client);
  ASSERT_TRUE(c.ok());
  const absl::Status heard = client->WaitForClose();
  EXPECT_EQ(heard.code(), absl::StatusCode::kFailedPrecondition) << heard;
  EXPECT_TRUE(absl::StrContains(heard.message(), "does not speak TLS")) << heard;
  ExpectServerClosed(server, 0, absl::StatusCode::kFailedPrecondition, "the peer speaks TLS");
  EXPECT_EQ(server.handler(0)->frame_count(), 0u);
  // Each end counts its refusal.
  EXPECT_TRUE(Eventually([&] { return reactor.stats().tls_refused == 2; })) << reactor.stats().tls_refused;
}

TEST(Tls, BytesThatAreNotTlsAfterTheHandshakeCloseOnlyThatConnection) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestCa ca;
  TestServer server(reactor, TlsOptions(ca, ca.IssueFor("server")), [] { return EchoHandler(); });
  // A well-behaved connection, which must not notice.
  auto good = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> g =
      ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("good")), good);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE((*g)->Send(NumberedFrame(1)).ok());
  ASSERT_TRUE(good->WaitForFrames(1));

  RawTlsClient bad(server.address(), ca, ca.IssueFor("bad"), TLS1_3_VERSION);
  ASSERT_TRUE(bad.Handshake());
  const Bytes frame = Wire(Pattern(16, 3));
  ASSERT_TRUE(bad.WriteTls(frame));
  Bytes echoed;
  ASSERT_TRUE(bad.ReadTls(frame.size(), echoed));  // TLS works for it
  EXPECT_EQ(echoed, frame);
  ASSERT_TRUE(bad.raw().Write(std::string(64, 'x')));  // then bytes outside TLS
  ExpectServerClosed(server, 1, absl::StatusCode::kDataLoss, "");
  EXPECT_EQ(server.handler(1)->frame_count(), 1u);
  EXPECT_EQ(reactor.stats().tls_errors, 1u);

  ASSERT_TRUE((*g)->Send(NumberedFrame(2)).ok());
  ASSERT_TRUE(good->WaitForFrames(2));
  EXPECT_FALSE(good->closed());
}

TEST(Tls, StalledHandshakeIsClosedAtItsDeadline) {
  TestLog log;
  Reactor reactor(LoggedReactorOptions(log));
  TestCa ca;
  ConnectionOptions options = TlsOptions(ca, ca.IssueFor("server"));
  options.tls_handshake_timeout = absl::Milliseconds(300);
  TestServer server(reactor, options, [] { return EchoHandler(); });
  RawClient stalled(server.address());
  // The start of a ClientHello record, and nothing more.
  ASSERT_TRUE(stalled.Write(Bytes{0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00}));
  ExpectServerClosed(server, 0, absl::StatusCode::kDeadlineExceeded, "TLS handshake did not complete");
  EXPECT_TRUE(stalled.WaitForPeerClose());
  EXPECT_EQ(reactor.stats().tls_refused, 1u);
}

TEST(Tls, ReloadedCredentialsServeNewConnections) {
  Reactor reactor(ReactorOptions{});
  TestCa ca;
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(Credentials(ca, ca.IssueFor("old-name")));
  ASSERT_TRUE(config.ok());
  ConnectionOptions options;
  options.tls = *config;
  TestServer server(reactor, options, [] { return EchoHandler(); });
  auto first = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> a =
      ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("client")), first);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Send(NumberedFrame(1)).ok());
  ASSERT_TRUE(first->WaitForFrames(1));
  EXPECT_EQ((*a)->tls_peer()->names, std::vector<std::string>{"old-name"});
  EXPECT_EQ((*config)->generation(), 1u);
  // Files are what reloads; PEM text does not change. Rotate by files.
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/reload");
  auto [cert, key] = testing::WriteCredentials(dir, "n", ca.IssueFor("old-name"));
  testing::WriteFile(dir + "/ca.pem", ca.certificate_pem());
  TlsCredentials files;
  files.certificate_chain_file = cert;
  files.private_key_file = key;
  files.trusted_ca_file = dir + "/ca.pem";
  absl::StatusOr<std::shared_ptr<TlsConfig>> from_files = TlsConfig::Create(files);
  ASSERT_TRUE(from_files.ok()) << from_files.status();
  absl::StatusOr<bool> unchanged = (*from_files)->ReloadIfChanged();
  ASSERT_TRUE(unchanged.ok());
  EXPECT_FALSE(*unchanged);
  testing::WriteCredentials(dir, "n", ca.IssueFor("new-name"));
  absl::StatusOr<bool> changed = (*from_files)->ReloadIfChanged();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ((*from_files)->Current()->names(), std::vector<std::string>{"new-name"});
  // A broken key: the reload fails, the loaded context stays.
  testing::WriteFile(key, "not a key");
  EXPECT_FALSE((*from_files)->ReloadIfChanged().ok());
  EXPECT_EQ((*from_files)->Current()->names(), std::vector<std::string>{"new-name"});
  absl::StatusOr<bool> again = (*from_files)->ReloadIfChanged();  // the same broken state is not retried
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}


// Each reload makes a context (with its BIO method); hundreds of them in
// one process leave new connections working.
TEST(Tls, ThreeHundredReloadsLeaveNewConnectionsWorking) {
  Reactor reactor(ReactorOptions{});
  TestCa ca;
  absl::StatusOr<std::shared_ptr<TlsConfig>> config = TlsConfig::Create(Credentials(ca, ca.IssueFor("server")));
  ASSERT_TRUE(config.ok());
  for (int i = 0; i < 300; ++i) ASSERT_TRUE((*config)->Reload().ok()) << i;
  EXPECT_EQ((*config)->generation(), 301u);
  ConnectionOptions options;
  options.tls = *config;
  TestServer server(reactor, options, [] { return EchoHandler(); });
  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c =
      ConnectAndWait(reactor, server.address(), TlsOptions(ca, ca.IssueFor("client")), client);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Send(NumberedFrame(1)).ok());
  EXPECT_TRUE(client->WaitForFrames(1));
}


// A plaintext connection that does not refuse TLS peers reads a first frame
// whose length prefix happens to look like a TLS record (66,326 bytes:
// 16 03 01 00) as the frame it is.
TEST(Tls, AFirstFrameThatLooksLikeTlsIsAFrameUnlessTlsPeersAreRefused) {
  Reactor reactor(ReactorOptions{});
  TestServer server(reactor, ConnectionOptions{}, [] { return EchoHandler(); });
  auto client = std::make_shared<RecordingHandler>();
  absl::StatusOr<std::shared_ptr<Connection>> c = ConnectAndWait(reactor, server.address(), ConnectionOptions{}, client);
  ASSERT_TRUE(c.ok());
  constexpr size_t kLength = 0x010316;
  const OutFrame frame = NumberedFrame(5, kLength);
  ASSERT_TRUE(LooksLikeTls(frame.bytes().subspan(0, 3)));
  ASSERT_TRUE((*c)->Send(NumberedFrame(5, kLength)).ok());
  ASSERT_TRUE(client->WaitForFrames(1));
  EXPECT_EQ(client->frames()[0].size(), kLength);
  EXPECT_FALSE(client->closed());
}

}  // namespace
}  // namespace troupe::net
