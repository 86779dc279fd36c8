#include "net/handshake.h"

#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace troupe::net {
namespace {

TEST(Handshake, ChallengesAreFreshAndOfTheRightSize) {
  const std::string a = NewChallenge();
  const std::string b = NewChallenge();
  EXPECT_EQ(a.size(), kChallengeBytes);
  EXPECT_NE(a, b);
}

TEST(Handshake, TheClusterKeyIsStretchedDeterministicallyAndIsNotTheSecret) {
  const std::string key = ClusterKey("s3cret");
  EXPECT_EQ(key.size(), kKeyBytes);
  EXPECT_EQ(key, ClusterKey("s3cret"));
  EXPECT_NE(key, ClusterKey("s3cret2"));
  EXPECT_EQ(key.find("s3cret"), std::string::npos);
}

TEST(Handshake, TheRightKeyPassesAndAWrongOneIsDenied) {
  const std::string transcript = Transcript("hello-c", "hello-a");
  const std::string key = ClusterKey("s3cret");
  const std::string proof = HandshakeMac(key, Role::kConnect, transcript);
  EXPECT_EQ(proof.size(), kMacBytes);
  EXPECT_TRUE(CheckProof(key, Role::kConnect, transcript, "a", proof).ok());
  absl::Status wrong = CheckProof(ClusterKey("other"), Role::kConnect, transcript, "a", proof);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(wrong.message().find("wrong cluster secret"), absl::string_view::npos);
}

TEST(Handshake, AProofCoversBothHellosAndItsRole) {
  const std::string key = ClusterKey("k");
  const std::string transcript = Transcript("hello-c", "hello-a");
  const std::string proof = HandshakeMac(key, Role::kAccept, transcript);
  EXPECT_FALSE(CheckProof(key, Role::kConnect, transcript, "a", proof).ok());  // reflected
  EXPECT_FALSE(CheckProof(key, Role::kAccept, Transcript("hello-c'", "hello-a"), "a", proof).ok());
  EXPECT_FALSE(CheckProof(key, Role::kAccept, Transcript("hello-c", "hello-a'"), "a", proof).ok());
  EXPECT_FALSE(CheckProof(key, Role::kAccept, Transcript("hello-a", "hello-c"), "a", proof).ok());  // swapped
  EXPECT_FALSE(CheckProof(key, Role::kAccept, transcript, "a", proof.substr(1)).ok());
}

TEST(Handshake, TheHighestCommonVersionIsChosenAndNoneIsRefusedNamingBothRanges) {
  EXPECT_EQ(ChooseVersion(kMinProtocolVersion, kMaxProtocolVersion + 3).value(), kMaxProtocolVersion);
  EXPECT_EQ(ChooseVersion(1, kMaxProtocolVersion).value(), kMaxProtocolVersion);
  absl::Status v1 = ChooseVersion(1, 0).status();  // a protocol 1 node
  EXPECT_EQ(v1.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(v1.message().find("the peer speaks 1..1, this node 2..2"), absl::string_view::npos) << v1;
  EXPECT_FALSE(ChooseVersion(kMaxProtocolVersion + 1, kMaxProtocolVersion + 2).ok());
  EXPECT_FALSE(ChooseVersion(5, 3).ok());
}

TEST(Handshake, HelloChecksNameAndChallenge) {
  EXPECT_TRUE(CheckHello("node-1.example:7000", NewChallenge()).ok());
  EXPECT_EQ(CheckHello("", NewChallenge()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHello("a b", NewChallenge()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHello("a\nforged log line", NewChallenge()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHello(std::string(256, 'a'), NewChallenge()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHello("a", "short").code(), absl::StatusCode::kInvalidArgument);
}

TEST(Handshake, DifferentHeartbeatSettingsAreRefusedNamingBothValues) {
  EXPECT_TRUE(CheckHeartbeats(absl::Seconds(1), absl::Seconds(5), 1000, 5000).ok());
  absl::Status s = CheckHeartbeats(absl::Seconds(1), absl::Seconds(5), 200, 5000);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("the peer sends every 200 ms and times out after 5000 ms, this node every 1000 ms and "
                             "after 5000 ms"),
            absl::string_view::npos)
      << s;
}

TEST(Handshake, PeerTextIsSanitizedAndTruncatedForLogs) {
  EXPECT_EQ(Sanitize("fine text"), "fine text");
  EXPECT_EQ(Sanitize("two\nlines\x01"), "two?lines?");
  EXPECT_EQ(Sanitize(std::string(1000, 'x'), 10), "xxxxxxxxxx...");
}

}  // namespace
}  // namespace troupe::net
