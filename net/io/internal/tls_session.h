// TlsSession: OpenSSL's TLS state of one connection, driven by the
// connection's I/O thread without blocking. Used by ConnectionImpl only.
//
// The session reads and writes the socket itself, through a BIO of
// troupe's own (NewSocketBioMethod): writes are send(MSG_NOSIGNAL), so a
// vanished peer is EPIPE rather than SIGPIPE, and reads look at the first
// bytes the peer sends: bytes that cannot begin a TLS record (troupe's
// plaintext framing, say) end the handshake with an error that says so,
// instead of OpenSSL's "wrong version number".
//
// Calls and their outcome:
//   Handshake()  OK once the handshake is done (then peer() is set), or
//                OK with want() kRead / kWrite: call again when the socket
//                is readable / writable; an error ends the connection.
//   Read()       plaintext bytes (> 0), or 0 with want() set; an error
//                ends the connection (a closed peer is Unavailable).
//   Write()      bytes taken (> 0: whole records), or 0 with want() set.
//   Shutdown()   sends close_notify, best effort.
// Errors are classified (Failure): a certificate the peer's CA does not
// vouch for, an alert from the peer, an old TLS version, a record that
// fails its integrity check, a plaintext peer — each with its own code and
// a message naming it.
//
// Thread: the connection's I/O thread only. OpenSSL's error queue is per
// thread; every call clears it first.

#ifndef TROUPE_NET_IO_INTERNAL_TLS_SESSION_H_
#define TROUPE_NET_IO_INTERNAL_TLS_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/io/tls.h"

typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace troupe::net::internal {

// The BIO method sessions use (one per TlsContext).
BIO_METHOD* NewSocketBioMethod();
// The oldest error on this thread's OpenSSL error queue (0: none); empties
// the queue.
unsigned long TakeFirstError();
// The DNS names of `certificate`'s subjectAltName, and its subject.
std::vector<std::string> DnsNames(X509* certificate);
std::string SubjectOf(X509* certificate);

class TlsSession {
 public:
  enum class Want : uint8_t { kNothing, kRead, kWrite };

  // `accept`: the server end (an accepted connection).
  static absl::StatusOr<std::unique_ptr<TlsSession>> Create(std::shared_ptr<const TlsContext> context, int fd,
                                                            bool accept);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  absl::Status Handshake();
  absl::StatusOr<size_t> Read(uint8_t* buffer, size_t size);
  absl::StatusOr<size_t> Write(const uint8_t* bytes, size_t size);
  void Shutdown();

  Want want() const { return want_; }
  bool handshake_done() const { return handshake_done_; }
  // Plaintext that OpenSSL decrypted but Read has not returned yet.
  bool HasBufferedInput() const;
  // Set once the handshake is done.
  const TlsPeer& peer() const { return peer_; }
  // True once a record of application data arrived: a failure after that
  // is the stream's, before it the handshake's (a TLS 1.3 client finishes
  // its handshake before the server has checked its certificate, and hears
  // of a refusal as an alert on its first read).
  bool received_data() const { return received_data_; }
  // True if the last read of the socket emptied it: with nothing buffered
  // either, another Read would only find EAGAIN.
  bool socket_drained() const { return socket_.drained; }
  // True if the peer's first bytes could not begin a TLS record.
  bool plaintext_peer() const { return socket_.plaintext; }

  // The socket's first bytes and what the BIO saw (see NewSocketBioMethod).
  struct SocketState {
    int fd = -1;
    int error = 0;  // errno of the last failed read or write
    uint8_t first[3] = {0, 0, 0};
    size_t seen = 0;         // of first
    bool plaintext = false;  // the first bytes cannot begin a TLS record
    bool drained = false;    // the last read found the socket empty, or took less than it asked for
  };

 private:
  TlsSession() = default;
  // The error for a failed call that returned `ret`; `during` names it.
  absl::Status Failure(int ret, std::string_view during);
  // For Handshake / Read / Write: sets want_ for a call that would block;
  // false if it failed instead.
  bool WouldBlock(int ret);
  void CollectPeer();

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  SocketState socket_;
  Want want_ = Want::kNothing;
  bool handshake_done_ = false;
  bool received_data_ = false;
  TlsPeer peer_;
};

}  // namespace troupe::net::internal

#endif  // TROUPE_NET_IO_INTERNAL_TLS_SESSION_H_
