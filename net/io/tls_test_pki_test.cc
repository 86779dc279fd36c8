// Checks what TestCa makes with OpenSSL's own verifier, as a TLS peer would:
// the chain, the validity window, the purposes, the names and the keys.

#include "net/io/tls_test_pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace troupe::net::testing {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

Cert ParseCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Key ParseKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// X509_V_OK if `leaf_pem` verifies against `ca_pem` for `purpose`
// (X509_PURPOSE_SSL_SERVER or _CLIENT), else the verifier's error.
int Verify(const std::string& ca_pem, const std::string& leaf_pem, int purpose) {
  Cert ca = ParseCert(ca_pem);
  Cert leaf = ParseCert(leaf_pem);
  if (ca == nullptr || leaf == nullptr) {
    ADD_FAILURE() << "a certificate does not parse";
    return -1;
  }
  Store store(X509_STORE_new());
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca.get()), 1);
  StoreCtx ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr), 1);
  EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), purpose), 1);
  const int verified = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  EXPECT_EQ(verified == 1, error == X509_V_OK) << X509_verify_cert_error_string(error);
  return error;
}

std::vector<std::string> DnsNames(const std::string& leaf_pem) {
  std::vector<std::string> names;
  Cert leaf = ParseCert(leaf_pem);
  if (leaf == nullptr) return names;
  GeneralNames san(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (san == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(san.get()); ++i) {
    const GENERAL_NAME* entry = sk_GENERAL_NAME_value(san.get(), i);
    if (entry->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = entry->d.dNSName;
    names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<size_t>(ASN1_STRING_length(dns)));
  }
  return names;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class TestPkiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ca_ = new TestCa(); }
  static void TearDownTestSuite() {
    delete ca_;
    ca_ = nullptr;
  }
  static const TestCa& ca() { return *ca_; }

 private:
  static TestCa* ca_;
};
TestCa* TestPkiTest::ca_ = nullptr;

TEST_F(TestPkiTest, IssuedLeafVerifiesAsServerAndClient) {
  const PemCredentials node = ca().IssueFor("node-a");
  EXPECT_EQ(Verify(ca().certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(ca().certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST_F(TestPkiTest, CaIsACa) {
  Cert cert = ParseCert(ca().certificate_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  Cert leaf = ParseCert(ca().IssueFor("node-a").certificate_chain);
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
}

TEST_F(TestPkiTest, ExpiredLeafIsRefused) {
  CertificateSpec spec;
  spec.dns_names = {"node-a"};
  spec.valid_from = -absl::Hours(2);
  spec.valid_until = -absl::Hours(1);
  const PemCredentials node = ca().Issue(spec);
  EXPECT_EQ(Verify(ca().certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(TestPkiTest, NotYetValidLeafIsRefused) {
  CertificateSpec spec;
  spec.dns_names = {"node-a"};
  spec.valid_from = absl::Hours(1);
  spec.valid_until = absl::Hours(2);
  const PemCredentials node = ca().Issue(spec);
  EXPECT_EQ(Verify(ca().certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST_F(TestPkiTest, LeafOfAnotherCaIsRefused) {
  const TestCa other;  // the same name as ca(), another key
  const PemCredentials node = other.IssueFor("node-a");
  EXPECT_EQ(Verify(other.certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(ca().certificate_pem(), node.certificate_chain, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(TestPkiTest, PurposesFollowTheSpec) {
  CertificateSpec spec;
  spec.dns_names = {"node-a"};
  spec.server_auth = false;
  const PemCredentials client_only = ca().Issue(spec);
  EXPECT_EQ(Verify(ca().certificate_pem(), client_only.certificate_chain, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
  EXPECT_EQ(Verify(ca().certificate_pem(), client_only.certificate_chain, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  spec.client_auth = false;
  const PemCredentials neither = ca().Issue(spec);
  EXPECT_EQ(Verify(ca().certificate_pem(), neither.certificate_chain, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
  EXPECT_EQ(Verify(ca().certificate_pem(), neither.certificate_chain, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST_F(TestPkiTest, SubjectAltNamesAreTheDnsNames) {
  EXPECT_EQ(DnsNames(ca().IssueFor("node-a").certificate_chain), std::vector<std::string>{"node-a"});

  CertificateSpec spec;
  spec.dns_names = {"node-b", "node-b.example", "with,comma"};
  EXPECT_EQ(DnsNames(ca().Issue(spec).certificate_chain), spec.dns_names);

  // A name past the CN's 64 characters: only in the (then critical) SAN.
  spec.dns_names = {std::string(200, 'n')};
  const PemCredentials long_name = ca().Issue(spec);
  EXPECT_EQ(DnsNames(long_name.certificate_chain), spec.dns_names);
  EXPECT_EQ(Verify(ca().certificate_pem(), long_name.certificate_chain, X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST_F(TestPkiTest, PrivateKeyMatchesCertificate) {
  const PemCredentials a = ca().IssueFor("node-a");
  const PemCredentials b = ca().IssueFor("node-b");
  EXPECT_NE(a.private_key.find("BEGIN PRIVATE KEY"), std::string::npos);  // PKCS#8
  Cert cert_a = ParseCert(a.certificate_chain);
  Key key_a = ParseKey(a.private_key);
  Key key_b = ParseKey(b.private_key);
  ASSERT_NE(cert_a, nullptr);
  ASSERT_NE(key_a, nullptr);
  ASSERT_NE(key_b, nullptr);
  EXPECT_EQ(X509_check_private_key(cert_a.get(), key_a.get()), 1);
  EXPECT_EQ(X509_check_private_key(cert_a.get(), key_b.get()), 0);
  ERR_clear_error();  // the mismatch leaves an error queued
}

TEST_F(TestPkiTest, SerialsDiffer) {
  Cert a = ParseCert(ca().IssueFor("node-a").certificate_chain);
  Cert b = ParseCert(ca().IssueFor("node-a").certificate_chain);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get())), 0);
}

TEST_F(TestPkiTest, WriteCredentialsWritesParsableFiles) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ASSERT_NE(tmp, nullptr);
  const std::string dir = std::string(tmp) + "/pki/nested";
  const PemCredentials node = ca().IssueFor("node-a");
  const auto [cert_path, key_path] = WriteCredentials(dir, "node-a", node);
  EXPECT_EQ(cert_path, dir + "/node-a.pem");
  EXPECT_EQ(key_path, dir + "/node-a.key");
  EXPECT_EQ(ReadAll(cert_path), node.certificate_chain);
  EXPECT_EQ(ReadAll(key_path), node.private_key);

  Cert cert = ParseCert(ReadAll(cert_path));
  Key key = ParseKey(ReadAll(key_path));
  ASSERT_NE(cert, nullptr);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  struct stat st{};
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Rewriting replaces the contents whole.
  const PemCredentials rotated = ca().IssueFor("node-a");
  WriteCredentials(dir, "node-a", rotated);
  EXPECT_EQ(ReadAll(cert_path), rotated.certificate_chain);
  WriteFile(dir + "/ca.pem", ca().certificate_pem());
  EXPECT_NE(ParseCert(ReadAll(dir + "/ca.pem")), nullptr);
}

}  // namespace
}  // namespace troupe::net::testing
