#include "net/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace troupe::net {

std::string NewChallenge() {
  std::string out(kChallengeBytes, '\0');
  size_t filled = 0;
  while (filled < out.size()) {
    ssize_t n = getrandom(out.data() + filled, out.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The kernel's source cannot fail once initialised; fall back loudly
      // rather than hand out a predictable challenge.
      std::abort();
    }
    filled += static_cast<size_t>(n);
  }
  return out;
}

std::string HandshakeMac(std::string_view secret, Role role, std::string_view challenge, std::string_view node,
                         uint64_t incarnation) {
  std::string input = role == Role::kAccept ? "troupe/1 accept|" : "troupe/1 connect|";
  input.append(challenge);
  input.push_back('|');
  input.append(node);
  input.push_back('|');
  for (int i = 0; i < 8; ++i) input.push_back(static_cast<char>((incarnation >> (8 * i)) & 0xFF));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

absl::Status CheckProof(std::string_view secret, Role role, std::string_view challenge, std::string_view node,
                        uint64_t incarnation, std::string_view proof) {
  const std::string expected = HandshakeMac(secret, role, challenge, node, incarnation);
  if (proof.size() != expected.size() || CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("node '", std::string(node), "' failed authentication: wrong cluster secret"));
  }
  return absl::OkStatus();
}

absl::Status CheckHello(uint32_t version, std::string_view node, std::string_view challenge) {
  if (version != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol version ", version, " is not supported (this node speaks ", kProtocolVersion, ")"));
  }
  if (node.empty() || node.size() > 255) {
    return absl::InvalidArgumentError(absl::StrCat("node name of ", node.size(), " bytes (1 to 255 allowed)"));
  }
  if (challenge.size() != kChallengeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("challenge of ", challenge.size(), " bytes (", kChallengeBytes, " expected)"));
  }
  return absl::OkStatus();
}

}  // namespace troupe::net
