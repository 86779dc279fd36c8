#include "net/io/internal/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/io/internal/socket.h"

namespace troupe::net::internal {
namespace {

TlsSession::SocketState& StateOf(BIO* bio) { return *static_cast<TlsSession::SocketState*>(BIO_get_data(bio)); }

int BioWrite(BIO* bio, const char* data, int size) {
  TlsSession::SocketState& s = StateOf(bio);
  BIO_clear_retry_flags(bio);
  for (;;) {
    const ssize_t n = send(s.fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(bio);
    } else {
      s.error = errno;
    }
    return -1;
  }
}

// Watches the first three bytes: if they cannot begin a TLS record the
// peer speaks something else, and the read fails (see the header).
int BioRead(BIO* bio, char* data, int size) {
  TlsSession::SocketState& s = StateOf(bio);
  BIO_clear_retry_flags(bio);
  if (s.plaintext) return -1;
  for (;;) {
    const ssize_t n = read(s.fd, data, static_cast<size_t>(size));
    s.drained = n < size;
    if (n > 0) {
      for (ssize_t i = 0; i < n && s.seen < sizeof(s.first); ++i) s.first[s.seen++] = static_cast<uint8_t>(data[i]);
      if (s.seen == sizeof(s.first) && !LooksLikeTls(absl::MakeConstSpan(s.first, sizeof(s.first)))) {
        s.plaintext = true;
        return -1;
      }
      return static_cast<int>(n);
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_read(bio);
    } else {
      s.error = errno;
    }
    return -1;
  }
}

long BioControl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// TLS alerts that mean "your certificate is refused".
bool IsCertificateAlert(int alert) {
  switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

}  // namespace

BIO_METHOD* NewSocketBioMethod() {
  // A fixed type in the range OpenSSL leaves to applications, not
  // BIO_get_new_index(): that hands out one of some 128 process-wide
  // indices per call, and every TlsContext (each reload) makes a method.
  constexpr int kType = (BIO_TYPE_START + 42) | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
  BIO_METHOD* method = BIO_meth_new(kType, "troupe socket");
  if (method == nullptr) return nullptr;
  BIO_meth_set_write(method, BioWrite);
  BIO_meth_set_read(method, BioRead);
  BIO_meth_set_ctrl(method, BioControl);
  BIO_meth_set_create(method, BioCreate);
  return method;
}

unsigned long TakeFirstError() {
  unsigned long first = 0;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    if (first == 0) first = e;
  }
  return first;
}

std::vector<std::string> DnsNames(X509* certificate) {
  std::vector<std::string> out;
  if (certificate == nullptr) return out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                     static_cast<size_t>(ASN1_STRING_length(dns)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string SubjectOf(X509* certificate) {
  if (certificate == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string subject(data, size > 0 ? static_cast<size_t>(size) : 0);
  BIO_free(bio);
  return subject;
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(std::shared_ptr<const TlsContext> context, int fd,
                                                               bool accept) {
  ERR_clear_error();
  std::unique_ptr<TlsSession> session(new TlsSession());
  session->context_ = std::move(context);
  session->socket_.fd = fd;
  session->ssl_ = SSL_new(session->context_->native());
  BIO* bio = session->ssl_ != nullptr ? BIO_new(session->context_->bio_method()) : nullptr;
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::ResourceExhaustedError("TLS: cannot make a session (out of memory)");
  }
  BIO_set_data(bio, &session->socket_);
  SSL_set_bio(session->ssl_, bio, bio);  // the SSL owns the BIO
  if (accept) {
    SSL_set_accept_state(session->ssl_);
  } else {
    SSL_set_connect_state(session->ssl_);
  }
  return session;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

bool TlsSession::WouldBlock(int ret) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      want_ = Want::kRead;
      return true;
    case SSL_ERROR_WANT_WRITE:
      want_ = Want::kWrite;
      return true;
    default:
      return false;
  }
}

absl::Status TlsSession::Handshake() {
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    want_ = Want::kNothing;
    CollectPeer();
    return absl::OkStatus();
  }
  if (WouldBlock(ret)) return absl::OkStatus();
  return Failure(ret, "TLS handshake");
}

absl::StatusOr<size_t> TlsSession::Read(uint8_t* buffer, size_t size) {
  ERR_clear_error();
  size_t n = 0;
  if (SSL_read_ex(ssl_, buffer, size, &n) == 1) {
    received_data_ = true;
    want_ = Want::kNothing;
    return n;
  }
  if (WouldBlock(0)) return 0;
  return Failure(0, "TLS read");
}

absl::StatusOr<size_t> TlsSession::Write(const uint8_t* bytes, size_t size) {
  ERR_clear_error();
  size_t n = 0;
  if (SSL_write_ex(ssl_, bytes, size, &n) == 1) {
    want_ = Want::kNothing;
    return n;
  }
  if (WouldBlock(0)) return 0;
  return Failure(0, "TLS write");
}

void TlsSession::Shutdown() {
  if (!handshake_done_) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool TlsSession::HasBufferedInput() const { return SSL_has_pending(ssl_) == 1; }

void TlsSession::CollectPeer() {
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  peer_.names = DnsNames(certificate);
  peer_.subject = SubjectOf(certificate);
  peer_.cipher = SSL_get_cipher_name(ssl_);
  peer_.exporter.assign(kExporterBytes, '\0');
  if (SSL_export_keying_material(ssl_, reinterpret_cast<unsigned char*>(peer_.exporter.data()), kExporterBytes,
                                 kExporterLabel.data(), kExporterLabel.size(), nullptr, 0, 0) != 1) {
    // Cannot happen after a TLS 1.3 handshake; an empty value makes the
    // node handshake fail rather than run unbound.
    peer_.exporter.clear();
    ERR_clear_error();
  }
}

absl::Status TlsSession::Failure(int ret, std::string_view during) {
  const int code = SSL_get_error(ssl_, ret);
  const unsigned long first = TakeFirstError();
  const int reason = ERR_GET_REASON(first);
  const bool ssl_lib = ERR_GET_LIB(first) == ERR_LIB_SSL;
  const std::string what(during);
  if (socket_.plaintext) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the peer does not speak TLS (its first bytes are plaintext, as a node without TLS "
                           "sends): this node requires TLS"));
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (!handshake_done_ && verify != X509_V_OK) {
    const std::string subject = SubjectOf(SSL_get0_peer_certificate(ssl_));
    return absl::UnauthenticatedError(absl::StrCat(what, ": the peer's certificate is refused: ",
                                                   X509_verify_cert_error_string(verify),
                                                   subject.empty() ? "" : absl::StrCat(" (", subject, ")")));
  }
  if (ssl_lib && reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
    const int alert = reason - SSL_AD_REASON_OFFSET;
    const std::string text = SSL_alert_desc_string_long(alert);
    if (IsCertificateAlert(alert)) {
      return absl::UnauthenticatedError(
          absl::StrCat(what, ": the peer refused this node's certificate (TLS alert: ", text, ")"));
    }
    if (alert == SSL_AD_PROTOCOL_VERSION) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": the peer refused the TLS version (TLS alert: protocol version): both ends need TLS 1.3"));
    }
    return absl::FailedPreconditionError(absl::StrCat(what, ": the peer ended the connection (TLS alert: ", text, ")"));
  }
  if (ssl_lib && !handshake_done_ &&
      (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_WRONG_VERSION_NUMBER ||
       reason == SSL_R_NO_PROTOCOLS_AVAILABLE)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the peer offers no TLS 1.3 (TLS 1.2 and older are refused)"));
  }
  if (ssl_lib && reason == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC) {
    return absl::DataLossError(absl::StrCat(
        what, ": a TLS record failed its integrity check (bad record MAC): the stream was altered in transit"));
  }
  if (code == SSL_ERROR_ZERO_RETURN) return absl::UnavailableError("peer closed the connection");
  if (socket_.error != 0) return absl::UnavailableError(absl::StrCat(what, ": ", ErrnoMessage(socket_.error)));
  if (code == SSL_ERROR_SYSCALL || (ssl_lib && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    return absl::UnavailableError(handshake_done_ ? "peer closed the connection"
                                                  : "peer closed the connection during the TLS handshake");
  }
  const char* text = first != 0 ? ERR_reason_error_string(first) : nullptr;
  const std::string detail = text != nullptr ? text : absl::StrCat("OpenSSL error ", code);
  if (handshake_done_) {
    return absl::DataLossError(absl::StrCat(what, ": the peer sent bytes that are not valid TLS records: ", detail));
  }
  return absl::FailedPreconditionError(absl::StrCat(what, " failed: ", detail));
}

}  // namespace troupe::net::internal
