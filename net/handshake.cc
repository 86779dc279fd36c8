#include "net/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace troupe::net {
namespace {

constexpr std::string_view kKeySalt = "troupe cluster key 2";

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

std::string NewChallenge() {
  std::string out(kChallengeBytes, '\0');
  size_t filled = 0;
  while (filled < out.size()) {
    ssize_t n = getrandom(out.data() + filled, out.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The kernel's source cannot fail once initialised; stop rather than
      // hand out a predictable challenge.
      std::abort();
    }
    filled += static_cast<size_t>(n);
  }
  return out;
}

std::string ClusterKey(std::string_view secret) {
  std::string key(kKeyBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                        reinterpret_cast<const unsigned char*>(kKeySalt.data()), static_cast<int>(kKeySalt.size()),
                        kKeyIterations, EVP_sha256(), static_cast<int>(key.size()),
                        reinterpret_cast<unsigned char*>(key.data())) != 1) {
    std::abort();  // only on allocation failure inside OpenSSL
  }
  return key;
}

std::string Transcript(std::string_view connector_hello, std::string_view acceptor_hello,
                       std::string_view channel_binding) {
  std::string out((channel_binding.empty() ? 2 : 3) * SHA256_DIGEST_LENGTH, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  SHA256(reinterpret_cast<const unsigned char*>(connector_hello.data()), connector_hello.size(), bytes);
  SHA256(reinterpret_cast<const unsigned char*>(acceptor_hello.data()), acceptor_hello.size(),
         bytes + SHA256_DIGEST_LENGTH);
  if (!channel_binding.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(channel_binding.data()), channel_binding.size(),
           bytes + 2 * SHA256_DIGEST_LENGTH);
  }
  return out;
}

std::string HandshakeMac(std::string_view key, Role role, std::string_view transcript) {
  std::string input = role == Role::kAccept ? "troupe/2 acceptor|" : "troupe/2 connector|";
  input.append(transcript);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

absl::Status CheckProof(std::string_view key, Role role, std::string_view transcript, std::string_view peer,
                        std::string_view proof) {
  const std::string expected = HandshakeMac(key, role, transcript);
  if (proof.size() != expected.size() || CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("node '", Sanitize(peer), "' failed authentication: wrong cluster secret"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ChooseVersion(uint32_t peer_min, uint32_t peer_max) {
  if (peer_max == 0) peer_max = peer_min;  // protocol 1 sends one version
  const uint32_t low = std::max(peer_min, kMinProtocolVersion);
  const uint32_t high = std::min(peer_max, kMaxProtocolVersion);
  if (peer_min > peer_max || low > high) {
    return absl::FailedPreconditionError(absl::StrCat("no common protocol version: the peer speaks ", peer_min, "..",
                                                      peer_max, ", this node ", kMinProtocolVersion, "..",
                                                      kMaxProtocolVersion));
  }
  return high;
}

absl::Status CheckHello(std::string_view node, std::string_view challenge) {
  if (node.empty() || node.size() > 255) {
    return absl::InvalidArgumentError(absl::StrCat("node name of ", node.size(), " bytes (1 to 255 allowed)"));
  }
  for (char c : node) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("node name '", Sanitize(node), "' has a byte that is not printable ASCII or is a space"));
    }
  }
  if (challenge.size() != kChallengeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("challenge of ", challenge.size(), " bytes (", kChallengeBytes, " expected)"));
  }
  return absl::OkStatus();
}

absl::Status CheckHeartbeats(absl::Duration interval, absl::Duration timeout, uint32_t peer_interval_ms,
                             uint32_t peer_timeout_ms) {
  if (peer_interval_ms != Millis(interval) || peer_timeout_ms != Millis(timeout)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "heartbeat settings differ: the peer sends every ", peer_interval_ms, " ms and times out after ",
        peer_timeout_ms, " ms, this node every ", Millis(interval), " ms and after ", Millis(timeout),
        " ms (use the same heartbeat_interval and heartbeat_timeout on every node)"));
  }
  return absl::OkStatus();
}

std::string Sanitize(std::string_view text, size_t max_bytes) {
  std::string out;
  const size_t n = std::min(text.size(), max_bytes);
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    out.push_back(c >= ' ' && c <= '~' ? c : '?');
  }
  if (text.size() > max_bytes) out.append("...");
  return out;
}

}  // namespace troupe::net
