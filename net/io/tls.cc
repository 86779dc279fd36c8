#include "net/io/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "net/io/internal/socket.h"
#include "net/io/internal/tls_session.h"

namespace troupe::net {
namespace {

// The oldest OpenSSL error on this thread's queue, as text; clears the queue.
std::string OpenSslError() {
  const unsigned long first = internal::TakeFirstError();
  if (first == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(first);
  return reason != nullptr ? reason : absl::StrCat("OpenSSL error ", first);
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;

// A memory BIO over `pem`, or a file BIO over `file`; `what` names it in errors.
absl::StatusOr<UniqueBio> OpenPem(const std::string& pem, const std::string& file, const char* what) {
  if (!pem.empty()) {
    UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (bio == nullptr) return absl::ResourceExhaustedError(absl::StrCat(what, ": ", OpenSslError()));
    return bio;
  }
  if (file.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": neither a file nor PEM text is set"));
  UniqueBio bio(BIO_new_file(file.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(absl::StrCat(what, " '", file, "' cannot be opened: ", internal::ErrnoMessage(errno)));
  }
  return bio;
}

std::string Where(const std::string& pem, const std::string& file, const char* what) {
  return pem.empty() ? absl::StrCat(what, " '", file, "'") : absl::StrCat(what, " (PEM text)");
}

absl::Time AsTime(const ASN1_TIME* t) {
  struct tm parts {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &parts) != 1) return absl::InfinitePast();
  return absl::FromTM(parts, absl::UTCTimeZone());
}

}  // namespace

bool TlsCredentials::empty() const {
  return certificate_chain_file.empty() && private_key_file.empty() && trusted_ca_file.empty() &&
         certificate_chain_pem.empty() && private_key_pem.empty() && trusted_ca_pem.empty();
}

bool LooksLikeTls(absl::Span<const uint8_t> first) {
  return first.size() >= 3 && first[0] >= 20 && first[0] <= 23 && first[1] == 3 && first[2] >= 1 && first[2] <= 4;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  if (bio_method_ != nullptr) BIO_meth_free(bio_method_);
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsCredentials& c,
                                                                     std::string_view required_name) {
  ERR_clear_error();
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->ctx_ = SSL_CTX_new(TLS_method());
  context->bio_method_ = internal::NewSocketBioMethod();
  if (context->ctx_ == nullptr || context->bio_method_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("TLS context: ", OpenSslError()));
  }
  SSL_CTX* ctx = context->ctx_;
  // TLS 1.3 only; no renegotiation, no resumption (no tickets, no cache).
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Partial writes: each SSL_write reports the records it wrote, so the
  // connection's buffer is never rewritten while a write is pending.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read ahead: fill the read buffer from the socket in one call instead of
  // a header and a body per record.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, size_t{64} << 10);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // TLS 1.3's suites, AES-128-GCM first: the cheapest per record of the
  // three, and as strong as a cluster needs.
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1) {
    return absl::InternalError(absl::StrCat("TLS cipher suites: ", OpenSslError()));
  }

  // The chain: the leaf, then intermediates.
  const std::string chain_where = Where(c.certificate_chain_pem, c.certificate_chain_file, "certificate chain");
  absl::StatusOr<UniqueBio> chain = OpenPem(c.certificate_chain_pem, c.certificate_chain_file, "certificate chain");
  if (!chain.ok()) return chain.status();
  X509* leaf = PEM_read_bio_X509(chain->get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(chain_where, " holds no PEM certificate: ", OpenSslError()));
  }
  const int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (used != 1) return absl::InvalidArgumentError(absl::StrCat(chain_where, ": ", OpenSslError()));
  for (X509* extra = PEM_read_bio_X509(chain->get(), nullptr, nullptr, nullptr); extra != nullptr;
       extra = PEM_read_bio_X509(chain->get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return absl::InvalidArgumentError(absl::StrCat(chain_where, ": ", OpenSslError()));
    }
  }
  ERR_clear_error();  // the end of the PEM stream

  const std::string key_where = Where(c.private_key_pem, c.private_key_file, "private key");
  absl::StatusOr<UniqueBio> key_bio = OpenPem(c.private_key_pem, c.private_key_file, "private key");
  if (!key_bio.ok()) return key_bio.status();
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio->get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(key_where, " holds no PEM private key (an encrypted key is not supported): ",
                                                   OpenSslError()));
  }
  const int key_used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_where, " does not belong to the certificate of ", chain_where, ": ", OpenSslError()));
  }

  const std::string ca_where = Where(c.trusted_ca_pem, c.trusted_ca_file, "trusted CA bundle");
  absl::StatusOr<UniqueBio> ca_bio = OpenPem(c.trusted_ca_pem, c.trusted_ca_file, "trusted CA bundle");
  if (!ca_bio.ok()) return ca_bio.status();
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int cas = 0;
  for (X509* ca = PEM_read_bio_X509(ca_bio->get(), nullptr, nullptr, nullptr); ca != nullptr;
       ca = PEM_read_bio_X509(ca_bio->get(), nullptr, nullptr, nullptr)) {
    const int added = X509_STORE_add_cert(store, ca);
    X509_free(ca);
    if (added != 1) return absl::InvalidArgumentError(absl::StrCat(ca_where, ": ", OpenSslError()));
    ++cas;
  }
  ERR_clear_error();
  if (cas == 0) return absl::InvalidArgumentError(absl::StrCat(ca_where, " holds no PEM certificate"));

  // What this node's certificate says, and whether it can be used now.
  X509* mine = SSL_CTX_get0_certificate(ctx);
  context->names_ = internal::DnsNames(mine);
  context->subject_ = internal::SubjectOf(mine);
  context->not_after_ = AsTime(X509_get0_notAfter(mine));
  const absl::Time not_before = AsTime(X509_get0_notBefore(mine));
  const absl::Time now = absl::Now();
  if (now < not_before) {
    return absl::FailedPreconditionError(absl::StrCat(chain_where, " is not valid before ",
                                                      absl::FormatTime(not_before, absl::UTCTimeZone())));
  }
  if (now > context->not_after_) {
    return absl::FailedPreconditionError(
        absl::StrCat(chain_where, " expired at ", absl::FormatTime(context->not_after_, absl::UTCTimeZone())));
  }
  if (!required_name.empty() &&
      std::find(context->names_.begin(), context->names_.end(), required_name) == context->names_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(chain_where, " is for [", absl::StrJoin(context->names_, ", "), "], not for this node, '",
                     std::string(required_name), "': a node's certificate must name it (subjectAltName DNS:",
                     std::string(required_name), ")"));
  }
  return std::shared_ptr<const TlsContext>(std::move(context));
}

// ---------------------------------------------------------------------------
// TlsConfig.

absl::StatusOr<std::shared_ptr<TlsConfig>> TlsConfig::Create(TlsCredentials credentials, std::string required_name) {
  std::shared_ptr<TlsConfig> config(new TlsConfig(std::move(credentials), std::move(required_name)));
  const Files files = config->Stat();
  absl::StatusOr<std::shared_ptr<const TlsContext>> context =
      TlsContext::Create(config->credentials_, config->required_name_);
  if (!context.ok()) return context.status();
  std::lock_guard<std::mutex> lock(config->mu_);
  config->current_ = *std::move(context);
  config->loaded_ = files;
  config->generation_ = 1;
  return config;
}

std::shared_ptr<const TlsContext> TlsConfig::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t TlsConfig::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

TlsConfig::Files TlsConfig::Stat() const {
  Files files;
  for (const std::string* path :
       {&credentials_.certificate_chain_file, &credentials_.private_key_file, &credentials_.trusted_ca_file}) {
    FileState state;
    struct stat st {};
    if (!path->empty() && stat(path->c_str(), &st) == 0) {
      state.exists = true;
      state.device = st.st_dev;
      state.inode = st.st_ino;
      state.size = st.st_size;
      state.modified_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    }
    files.push_back(state);
  }
  return files;
}

absl::Status TlsConfig::Reload() {
  const Files files = Stat();
  absl::StatusOr<std::shared_ptr<const TlsContext>> context = TlsContext::Create(credentials_, required_name_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!context.ok()) {
    failed_ = files;
    return context.status();
  }
  current_ = *std::move(context);
  loaded_ = files;
  failed_.clear();
  ++generation_;
  return absl::OkStatus();
}

absl::StatusOr<bool> TlsConfig::ReloadIfChanged() {
  const Files files = Stat();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (files == loaded_ || files == failed_) return false;
  }
  if (absl::Status s = Reload(); !s.ok()) return s;
  return true;
}

}  // namespace troupe::net
