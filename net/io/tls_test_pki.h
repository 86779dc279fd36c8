// TestCa and friends: certificates made in memory for the tests of troupe's
// TLS node links, including the ones tools/make-certs will not make: expired,
// not yet valid, with the wrong names or key usages, or from another CA.
//
// Every key is EC P-256. A TestCa is a self-signed CA (CA:TRUE, keyCertSign,
// valid from an hour ago for ten years); Issue makes a leaf it signs, shaped
// like the ones tools/make-certs makes (CA:FALSE, digitalSignature, the node
// name in a subjectAltName DNS entry, serverAuth and clientAuth) unless the
// CertificateSpec asks otherwise. Everything is returned as PEM text.
//
// Who may call what: test code only (the target is testonly). Failures inside
// OpenSSL abort the process with OpenSSL's error text. A TestCa holds only
// PEM strings and is immutable after construction: it may be copied, and one
// may be used from several threads at once.

#ifndef TROUPE_NET_IO_TLS_TEST_PKI_H_
#define TROUPE_NET_IO_TLS_TEST_PKI_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace troupe::net::testing {

// A node's TLS identity, as the files --tls_cert and --tls_key hold it.
struct PemCredentials {
  std::string certificate_chain;  // PEM: the leaf certificate (no intermediates here)
  std::string private_key;        // PEM, PKCS#8 ("BEGIN PRIVATE KEY")
};

// What a leaf certificate says. Build one by assigning fields (no partial
// designated initializers: -Wmissing-field-initializers is an error in CI).
struct CertificateSpec {
  // subjectAltName DNS entries, in order. The first is also the subject's CN
  // when it fits one (64 characters); otherwise the subject is empty and the
  // subjectAltName critical. None: no subjectAltName and an empty subject.
  std::vector<std::string> dns_names;
  absl::Duration valid_from = -absl::Hours(1);   // notBefore, relative to now
  absl::Duration valid_until = absl::Hours(24);  // notAfter, relative to now
  // extendedKeyUsage serverAuth / clientAuth. With neither, the leaf carries
  // only codeSigning, so that it is refused for either TLS role (a leaf with
  // no extendedKeyUsage at all would be accepted for any).
  bool server_auth = true;
  bool client_auth = true;
};

class TestCa {
 public:
  // A fresh key and self-signed certificate with subject CN=common_name.
  explicit TestCa(std::string common_name = "troupe test CA");

  // The CA certificate: the bundle a node trusts (--tls_ca).
  const std::string& certificate_pem() const { return certificate_pem_; }

  // A leaf signed by this CA: a fresh key, a random 127-bit serial.
  PemCredentials Issue(const CertificateSpec& spec) const;

  // Issue() of a spec with dns_names = {node_name} and every other default.
  PemCredentials IssueFor(const std::string& node_name) const;

 private:
  std::string certificate_pem_;
  std::string private_key_pem_;
};

// Writes pem to dir/name.pem (mode 644) and dir/name.key (mode 600), each with
// WriteFile, the key first; creates dir and its parents if needed. Returns the
// paths: {certificate file, key file}.
std::pair<std::string, std::string> WriteCredentials(const std::string& dir, const std::string& name,
                                                     const PemCredentials& pem);

// Replaces path's contents atomically: a temp file in the same directory,
// renamed over path, so a reader sees the old contents or the new, never part.
// Mode 644. Aborts on failure.
void WriteFile(const std::string& path, const std::string& contents);

// An OpenSSL client context for a raw TLS peer of a test's own: it presents
// `pem`, trusts `ca_pem`, checks the server's certificate, and speaks TLS
// versions up to `max_version` (e.g. TLS1_2_VERSION). The caller frees it
// (SSL_CTX_free).
SSL_CTX* NewClientContext(const std::string& ca_pem, const PemCredentials& pem, int max_version);

}  // namespace troupe::net::testing

#endif  // TROUPE_NET_IO_TLS_TEST_PKI_H_
