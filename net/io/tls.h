// TLS for the reactor's connections: TLS 1.3 only, both ends present a
// certificate, and each end checks the other's against the trusted CAs.
// OpenSSL (libssl) does the protocol; the reactor drives it without
// blocking (net/io/internal/tls_session.h) and keeps its batched writes: the
// frames queued on a connection are gathered into one buffer and written
// with one SSL_write, which cuts them into records of up to 16 KiB — never
// a record per frame.
//
// TlsCredentials  where a certificate chain, its private key and the CA
//                 bundle come from: files, or PEM text (tests).
// TlsContext      one loaded set of credentials (an OpenSSL SSL_CTX):
//                 immutable once made, shared by the connections that
//                 started with it.
// TlsConfig       the context new connections start with, replaceable
//                 while connections run (certificate rotation): Reload
//                 rereads the files, ReloadIfChanged does so when a file
//                 changed. A connection keeps the context it started with.
//
// What a connection learns of its peer after the handshake is a TlsPeer
// (Connection::tls_peer()): the DNS names of its certificate — the node
// layer checks the name a peer claims against them — and a value exported
// from the TLS session (RFC 8446 section 7.5), the same at both ends of one
// TLS connection and different on any other, which the node handshake puts
// in its transcript so that a handshake cannot be relayed into another
// connection.
//
// Refused on every connection: TLS 1.2 and older, renegotiation (TLS 1.3
// has none), session resumption (no tickets, no cache: every connection
// checks a certificate), a peer without a certificate.
//
// Who may call what: TlsConfig from any thread (a mutex guards the current
// context). TlsContext is immutable and shared.

#ifndef TROUPE_NET_IO_TLS_H_
#define TROUPE_NET_IO_TLS_H_

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct bio_method_st BIO_METHOD;

namespace troupe::net {

struct TlsCredentials {
  // PEM files: the certificate chain (this node's certificate first, then
  // any intermediates), its private key, and the CAs whose certificates
  // this node accepts from peers.
  std::string certificate_chain_file;
  std::string private_key_file;
  std::string trusted_ca_file;
  // Or the PEM text itself; a non-empty text is used instead of its file.
  std::string certificate_chain_pem;
  std::string private_key_pem;
  std::string trusted_ca_pem;

  // True if nothing is set: the connection is plaintext.
  bool empty() const;
};

// What a TLS connection knows of its peer once the handshake is done.
struct TlsPeer {
  std::vector<std::string> names;  // subjectAltName DNS entries of its certificate
  std::string subject;             // its certificate's subject, for log lines
  std::string exporter;            // kExporterBytes exported with kExporterLabel
  std::string cipher;              // e.g. TLS_AES_128_GCM_SHA256
};

inline constexpr std::string_view kExporterLabel = "EXPORTER-troupe-node-link";
inline constexpr size_t kExporterBytes = 32;

class TlsContext {
 public:
  // Loads `credentials`: the chain and key must parse and match, the CA
  // bundle must hold at least one certificate, and this node's certificate
  // must be valid now. `required_name`, if not empty, must be one of the
  // certificate's DNS names. The error names the file and what is wrong.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Create(const TlsCredentials& credentials,
                                                                  std::string_view required_name = "");
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // This node's certificate: its DNS names, subject and expiry.
  const std::vector<std::string>& names() const { return names_; }
  const std::string& subject() const { return subject_; }
  absl::Time not_after() const { return not_after_; }

  // For the reactor: the OpenSSL context and the BIO method its sessions
  // read and write their socket with.
  SSL_CTX* native() const { return ctx_; }
  const BIO_METHOD* bio_method() const { return bio_method_; }

 private:
  TlsContext() = default;

  SSL_CTX* ctx_ = nullptr;
  BIO_METHOD* bio_method_ = nullptr;
  std::vector<std::string> names_;
  std::string subject_;
  absl::Time not_after_;
};

class TlsConfig {
 public:
  // Loads the first context (see TlsContext::Create).
  static absl::StatusOr<std::shared_ptr<TlsConfig>> Create(TlsCredentials credentials,
                                                           std::string required_name = "");

  // The context a connection starting now uses.
  std::shared_ptr<const TlsContext> Current() const;
  // Rereads the credentials' files. On success new connections use the new
  // context; on failure the current one stays and the error says why.
  absl::Status Reload();
  // Reloads if a file changed (size, modification time or inode) since the
  // last load, and it was not already tried in that state. True if it
  // reloaded; an error if the changed files do not load.
  absl::StatusOr<bool> ReloadIfChanged();
  // Number of contexts loaded so far (1 after Create).
  uint64_t generation() const;

 private:
  struct FileState {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t modified_ns = 0;
    bool exists = false;
    bool operator==(const FileState&) const = default;
  };
  using Files = std::vector<FileState>;

  TlsConfig(TlsCredentials credentials, std::string required_name)
      : credentials_(std::move(credentials)), required_name_(std::move(required_name)) {}
  Files Stat() const;

  const TlsCredentials credentials_;
  const std::string required_name_;
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> current_ ABSL_GUARDED_BY(mu_);
  Files loaded_ ABSL_GUARDED_BY(mu_);  // the files' state at the last load
  Files failed_ ABSL_GUARDED_BY(mu_);  // the state whose load last failed
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// True if `first` (at least 3 bytes) can begin a TLS record: a content
// type 20-23, then a record version 3.1 to 3.4. A node link never starts
// so: read as a frame's length prefix those bytes announce at least 66,324
// bytes, and its first frame is at most kHandshakeFrameBytes (see
// ConnectionOptions::refuse_tls_peers).
bool LooksLikeTls(absl::Span<const uint8_t> first);

}  // namespace troupe::net

#endif  // TROUPE_NET_IO_TLS_H_
