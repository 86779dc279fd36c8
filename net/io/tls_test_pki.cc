#include "net/io/tls_test_pki.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"

namespace troupe::net::testing {
namespace {

// Aborts with `what` and OpenSSL's queued errors unless `ok`.
void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "tls_test_pki: %s failed\n", what);
  char text[256];
  while (const unsigned long error = ERR_get_error()) {
    ERR_error_string_n(error, text, sizeof(text));
    std::fprintf(stderr, "  %s\n", text);
  }
  std::abort();
}

// Aborts with `what` and errno's text unless `ok`.
void CheckSys(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "tls_test_pki: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BigNum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

Key NewKey() {
  Key key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen(P-256)");
  return key;
}

std::string ToPem(const X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

// PKCS#8: PEM_write_bio_PrivateKey's form in OpenSSL 3.
std::string ToPem(const EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr &&
            PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

Cert CertFromPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Check(bio != nullptr, "BIO_new_mem_buf");
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  Check(cert != nullptr, "PEM_read_bio_X509");
  return cert;
}

Key KeyFromPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Check(bio != nullptr, "BIO_new_mem_buf");
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  Check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

// A certificate for `key` with the fields every one here shares: version 3,
// a random positive serial, the validity window, the subject's CN (if any).
Cert NewCert(EVP_PKEY* key, const std::string& common_name, absl::Duration valid_from,
             absl::Duration valid_until) {
  Cert cert(X509_new());
  Check(cert != nullptr && X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");

  BigNum serial(BN_new());
  Check(serial != nullptr && BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1,
        "BN_rand");
  Check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr,
        "BN_to_ASN1_INTEGER");

  Check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), absl::ToInt64Seconds(valid_from)) != nullptr,
        "X509_gmtime_adj(notBefore)");
  Check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), absl::ToInt64Seconds(valid_until)) != nullptr,
        "X509_gmtime_adj(notAfter)");

  if (!common_name.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    Check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.data()),
                                     static_cast<int>(common_name.size()), -1, 0) == 1,
          "X509_NAME_add_entry_by_txt(CN)");
  }
  Check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  return cert;
}

// Adds the extension `nid` given in OpenSSL's config syntax ("critical,CA:FALSE").
void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(extension != nullptr, value);
  Check(X509_add_ext(cert, extension, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(extension);
}

// subjectAltName with one DNS entry per name, built directly rather than
// through the config syntax, so that any bytes (commas too) stay one entry.
void AddDnsNames(X509* cert, const std::vector<std::string>& names, bool critical) {
  GeneralNames general_names(GENERAL_NAMES_new());
  Check(general_names != nullptr, "GENERAL_NAMES_new");
  for (const std::string& name : names) {
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    Check(ia5 != nullptr && ASN1_STRING_set(ia5, name.data(), static_cast<int>(name.size())) == 1,
          "ASN1_STRING_set");
    GENERAL_NAME* entry = GENERAL_NAME_new();
    Check(entry != nullptr, "GENERAL_NAME_new");
    GENERAL_NAME_set0_value(entry, GEN_DNS, ia5);  // entry owns ia5
    Check(sk_GENERAL_NAME_push(general_names.get(), entry) > 0, "sk_GENERAL_NAME_push");
  }
  Check(X509_add1_ext_i2d(cert, NID_subject_alt_name, general_names.get(), critical ? 1 : 0,
                      X509V3_ADD_DEFAULT) == 1,
        "X509_add1_ext_i2d(subjectAltName)");
}

void Sign(X509* cert, EVP_PKEY* key) {
  Check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
}

// Writes contents to a temp file beside path with `mode`, then renames it over path.
void WriteFileWithMode(const std::string& path, const std::string& contents, mode_t mode) {
  std::string temp = path + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  CheckSys(fd >= 0, absl::StrCat("mkstemp ", temp));
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    CheckSys(n > 0, absl::StrCat("write ", temp));
    written += static_cast<size_t>(n);
  }
  CheckSys(fchmod(fd, mode) == 0, absl::StrCat("fchmod ", temp));
  CheckSys(close(fd) == 0, absl::StrCat("close ", temp));
  CheckSys(rename(temp.c_str(), path.c_str()) == 0, absl::StrCat("rename ", temp, " to ", path));
}

}  // namespace

TestCa::TestCa(std::string common_name) {
  Key key = NewKey();
  Cert cert = NewCert(key.get(), common_name, -absl::Hours(1), absl::Hours(24 * 3653));
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) == 1,
        "X509_set_issuer_name");
  AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  Sign(cert.get(), key.get());
  certificate_pem_ = ToPem(cert.get());
  private_key_pem_ = ToPem(key.get());
}

PemCredentials TestCa::Issue(const CertificateSpec& spec) const {
  Cert ca_cert = CertFromPem(certificate_pem_);
  Key ca_key = KeyFromPem(private_key_pem_);
  Key key = NewKey();

  // The CN holds at most 64 characters (RFC 5280); a longer name is only in
  // the subjectAltName, which is then critical because the subject is empty.
  const std::string first = spec.dns_names.empty() ? "" : spec.dns_names.front();
  const bool fits_cn = first.size() <= 64;
  Cert cert = NewCert(key.get(), fits_cn ? first : "", spec.valid_from, spec.valid_until);
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) == 1,
        "X509_set_issuer_name");

  AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  std::string usages;
  if (spec.server_auth) usages = "serverAuth";
  if (spec.client_auth) usages += usages.empty() ? "clientAuth" : ",clientAuth";
  if (usages.empty()) usages = "codeSigning";
  AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, usages.c_str());
  if (!spec.dns_names.empty()) AddDnsNames(cert.get(), spec.dns_names, !fits_cn);
  AddExtension(cert.get(), ca_cert.get(), NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid");
  Sign(cert.get(), ca_key.get());

  PemCredentials pem;
  pem.certificate_chain = ToPem(cert.get());
  pem.private_key = ToPem(key.get());
  return pem;
}

PemCredentials TestCa::IssueFor(const std::string& node_name) const {
  CertificateSpec spec;
  spec.dns_names = {node_name};
  return Issue(spec);
}

std::pair<std::string, std::string> WriteCredentials(const std::string& dir, const std::string& name,
                                                     const PemCredentials& pem) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    std::fprintf(stderr, "tls_test_pki: cannot create %s: %s\n", dir.c_str(), error.message().c_str());
    std::abort();
  }
  std::pair<std::string, std::string> paths(absl::StrCat(dir, "/", name, ".pem"),
                                            absl::StrCat(dir, "/", name, ".key"));
  // The key first: a reader that reloads when the certificate changes then
  // finds the key that goes with it.
  WriteFileWithMode(paths.second, pem.private_key, 0600);
  WriteFileWithMode(paths.first, pem.certificate_chain, 0644);
  return paths;
}

void WriteFile(const std::string& path, const std::string& contents) {
  WriteFileWithMode(path, contents, 0644);
}

SSL_CTX* NewClientContext(const std::string& ca_pem, const PemCredentials& pem, int max_version) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  Check(ctx != nullptr, "SSL_CTX_new");
  SSL_CTX_set_max_proto_version(ctx, max_version);
  BIO* cert = BIO_new_mem_buf(pem.certificate_chain.data(), static_cast<int>(pem.certificate_chain.size()));
  X509* x = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
  Check(x != nullptr && SSL_CTX_use_certificate(ctx, x) == 1, "the client certificate");
  X509_free(x);
  BIO_free(cert);
  BIO* key = BIO_new_mem_buf(pem.private_key.data(), static_cast<int>(pem.private_key.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  Check(k != nullptr && SSL_CTX_use_PrivateKey(ctx, k) == 1, "the client key");
  EVP_PKEY_free(k);
  BIO_free(key);
  BIO* cas = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* c = PEM_read_bio_X509(cas, nullptr, nullptr, nullptr);
  Check(c != nullptr && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), c) == 1, "the trusted CA");
  X509_free(c);
  BIO_free(cas);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

}  // namespace troupe::net::testing
