#include "net/handshake.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe::net {
namespace {

TEST(Handshake, ChallengesAreFreshAndOfTheRightSize) {
  const std::string a = NewChallenge();
  const std::string b = NewChallenge();
  EXPECT_EQ(a.size(), kChallengeBytes);
  EXPECT_NE(a, b);
}

TEST(Handshake, TheRightSecretPassesAndAWrongOneIsDenied) {
  const std::string challenge = NewChallenge();
  const std::string proof = HandshakeMac("s3cret", Role::kConnect, challenge, "a", 7);
  EXPECT_EQ(proof.size(), kMacBytes);
  EXPECT_TRUE(CheckProof("s3cret", Role::kConnect, challenge, "a", 7, proof).ok());
  absl::Status wrong = CheckProof("other", Role::kConnect, challenge, "a", 7, proof);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(wrong.message().find("wrong cluster secret"), absl::string_view::npos);
}

TEST(Handshake, AProofDoesNotTransferToAnotherRoleNodeIncarnationOrChallenge) {
  const std::string challenge = NewChallenge();
  const std::string proof = HandshakeMac("k", Role::kAccept, challenge, "a", 1);
  EXPECT_FALSE(CheckProof("k", Role::kConnect, challenge, "a", 1, proof).ok());  // reflected
  EXPECT_FALSE(CheckProof("k", Role::kAccept, challenge, "b", 1, proof).ok());
  EXPECT_FALSE(CheckProof("k", Role::kAccept, challenge, "a", 2, proof).ok());
  EXPECT_FALSE(CheckProof("k", Role::kAccept, NewChallenge(), "a", 1, proof).ok());  // replayed
  EXPECT_FALSE(CheckProof("k", Role::kAccept, challenge, "a", 1, proof.substr(1)).ok());
}

TEST(Handshake, HelloChecksVersionNameAndChallenge) {
  EXPECT_TRUE(CheckHello(kProtocolVersion, "a", NewChallenge()).ok());
  EXPECT_EQ(CheckHello(kProtocolVersion + 1, "a", NewChallenge()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckHello(kProtocolVersion, "", NewChallenge()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHello(kProtocolVersion, "a", "short").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace troupe::net
