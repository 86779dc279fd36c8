// RawPeer: a TCP client (or, given RawTls, a TLS 1.3 client) that speaks
// the node protocol by hand, or fails to, for tests of what a node does
// with peers that misbehave (bad_input_test.cc, tls_node_test.cc). Blocking
// sockets; every read has a deadline.

#ifndef TROUPE_NET_RAW_PEER_TEST_UTIL_H_
#define TROUPE_NET_RAW_PEER_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "net/handshake.h"
#include "net/io/tls.h"
#include "net/io/tls_test_pki.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::nettest {

// The heartbeat settings a RawPeer's hello carries: a node under test must
// use the same (the handshake checks).
inline constexpr uint32_t kRawHeartbeatIntervalMs = 100;
inline constexpr uint32_t kRawHeartbeatTimeoutMs = 600;
inline const absl::Duration kRawWait = absl::Seconds(20);

// A TLS client's credentials, PEM.
struct RawTls {
  std::string certificate_pem;
  std::string key_pem;
  std::string ca_pem;
};

// The stretched key of `secret`, computed once per secret: PBKDF2 takes a
// good part of the node's 300 ms handshake deadline under the sanitizers,
// and the deadline runs from the connect.
inline const std::string& KeyOf(const std::string& secret) {
  static std::mutex mu;
  static std::map<std::string, std::string> keys;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, inserted] = keys.try_emplace(secret);
  if (inserted) it->second = net::ClusterKey(secret);
  return it->second;
}

// A TCP client speaking (or not speaking) the node protocol by hand.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address, const RawTls* tls = nullptr) {
    std::pair<std::string, std::string> hp = absl::StrSplit(address, absl::MaxSplits(':', 1));
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(hp.second, &port));
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, hp.first.c_str(), &sa.sin_addr);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (tls != nullptr) StartTls(*tls);
  }
  ~RawPeer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    close(fd_);
  }
  // With TLS: true if the TLS handshake completed (TLS 1.3: before the
  // node has checked this peer's certificate).
  bool tls_up() const { return tls_up_; }

  void SendBytes(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      if (ssl_ != nullptr) {
        size_t n = 0;
        if (SSL_write_ex(ssl_, bytes.data() + done, bytes.size() - done, &n) != 1) return;
        done += n;
        continue;
      }
      ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the node may already have closed: that is what tests check
      done += static_cast<size_t>(n);
    }
  }

  // Straight to the socket, past TLS if there is any.
  void SendRawBytes(std::string_view bytes) {
    (void)send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  void SendFrame(capnp::MessageBuilder& message) { SendPayload(Serialize(message)); }

  void SendPayload(const std::string& payload) {
    std::string frame(4, '\0');
    const uint32_t n = static_cast<uint32_t>(payload.size());
    for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    SendBytes(frame + payload);
  }

  // The next frame's payload, or nullopt on close or after `timeout`.
  std::optional<std::string> ReadPayload(absl::Duration timeout = kRawWait) {
    std::string prefix;
    if (!ReadExactly(4, timeout, prefix)) return std::nullopt;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(prefix[i])) << (8 * i);
    std::string payload;
    if (!ReadExactly(n, timeout, payload)) return std::nullopt;
    return payload;
  }

  // The next reply frame's payload, skipping heartbeats (bounded).
  std::optional<std::string> ReadReply() {
    for (int i = 0; i < 100; ++i) {
      std::optional<std::string> payload = ReadPayload();
      if (!payload) return payload;
      bool is_reply = false;
      Read(*payload, [&](wire::Frame::Reader f) { is_reply = f.which() == wire::Frame::REPLY; });
      if (is_reply) return payload;
    }
    return std::nullopt;
  }

  // Waits (bounded) for the node to close the connection; frames it sends
  // first are skipped.
  bool WaitClosed(absl::Duration timeout = kRawWait) {
    const absl::Time deadline = absl::Now() + timeout;
    char buf[4096];
    while (ssl_ != nullptr && absl::Now() < deadline) {
      size_t n = 0;
      if (SSL_read_ex(ssl_, buf, sizeof(buf), &n) == 1) continue;
      const bool timed_out = SSL_get_error(ssl_, 0) == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
      ERR_clear_error();
      if (!timed_out) return true;
    }
    while (absl::Now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
    }
    return false;
  }

  // True if the connection is still open after a round trip's worth of
  // waiting for anything.
  bool StillOpen(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) == 0) return true;
    char c;
    return recv(fd_, &c, 1, MSG_PEEK) > 0;
  }

  // The connector's side of the handshake (protocol 2), with the
  // heartbeat settings of the node under test. Returns the `refused` text
  // if the node refused, or "" once authenticated.
  // Over TLS the transcript covers the session's exporter value, unless
  // `bind` is false (a handshake relayed from another connection).
  std::string Handshake(const std::string& secret, const std::string& name = "raw", bool bind = true) {
    const std::string& key = KeyOf(secret);
    const std::string challenge = net::NewChallenge();
    std::string mine;
    {
      capnp::MallocMessageBuilder m;
      wire::Hello::Builder hello = m.initRoot<wire::Frame>().initHello();
      hello.setMinVersion(net::kMinProtocolVersion);
      hello.setMaxVersion(net::kMaxProtocolVersion);
      hello.setNode(name);
      hello.setIncarnation(1);
      hello.setChallenge(Bytes(challenge));
      hello.setHeartbeatIntervalMs(kRawHeartbeatIntervalMs);
      hello.setHeartbeatTimeoutMs(kRawHeartbeatTimeoutMs);
      hello.setMaxFrameBytes(1 << 20);
      mine = Serialize(m);
      SendPayload(mine);
    }
    std::optional<std::string> theirs = ReadPayload();
    if (!theirs) return "closed";
    std::string refused;
    Read(*theirs, [&](wire::Frame::Reader f) {
      if (f.which() == wire::Frame::REFUSED) refused = f.getRefused().cStr();
    });
    if (!refused.empty()) return refused;
    capnp::MallocMessageBuilder m;
    const std::string transcript = net::Transcript(mine, *theirs, bind ? Exporter() : "");
    m.initRoot<wire::Frame>().setProof(Bytes(net::HandshakeMac(key, net::Role::kConnect, transcript)));
    SendFrame(m);
    std::optional<std::string> next = ReadPayload(absl::Seconds(5));
    if (!next) return "closed";
    Read(*next, [&](wire::Frame::Reader f) {
      if (f.which() == wire::Frame::REFUSED) refused = f.getRefused().cStr();
      if (f.which() == wire::Frame::PROOF) {
        const std::string proof(reinterpret_cast<const char*>(f.getProof().begin()), f.getProof().size());
        if (!net::CheckProof(key, net::Role::kAccept, transcript, "node", proof).ok()) {
          refused = "the node's proof is wrong";
        }
      }
    });
    return refused;
  }

  static std::string Serialize(capnp::MessageBuilder& message) {
    kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
    return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * sizeof(capnp::word));
  }

  template <class Fn>
  static void Read(const std::string& payload, Fn&& fn) {
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), payload.data(), payload.size());
    capnp::FlatArrayMessageReader reader(words);
    fn(reader.getRoot<wire::Frame>());
  }

  static kj::ArrayPtr<const kj::byte> Bytes(const std::string& s) {
    return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
  }

 private:
  bool ReadExactly(size_t n, absl::Duration timeout, std::string& out) {
    const absl::Time deadline = absl::Now() + timeout;
    out.resize(n);
    size_t done = 0;
    while (ssl_ != nullptr && done < n) {
      // Blocking, bounded by the socket's receive timeout (StartTls).
      size_t got = 0;
      if (SSL_read_ex(ssl_, out.data() + done, n - done, &got) != 1 || absl::Now() >= deadline) {
        ERR_clear_error();
        return false;
      }
      done += got;
    }
    while (done < n) {
      if (absl::Now() >= deadline) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) continue;
      ssize_t got = recv(fd_, out.data() + done, n - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }

  void StartTls(const RawTls& tls) {
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ctx_ = net::testing::NewClientContext(
        tls.ca_pem, net::testing::PemCredentials{.certificate_chain = tls.certificate_pem, .private_key = tls.key_pem},
        TLS1_3_VERSION);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    tls_up_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }

  std::string Exporter() const {
    if (ssl_ == nullptr) return "";
    std::string out(net::kExporterBytes, '\0');
    SSL_export_keying_material(ssl_, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                               net::kExporterLabel.data(), net::kExporterLabel.size(), nullptr, 0, 0);
    return out;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool tls_up_ = false;
};

}  // namespace troupe::nettest

#endif  // TROUPE_NET_RAW_PEER_TEST_UTIL_H_
