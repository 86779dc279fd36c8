// What the networked examples (remote_pingpong, counter_service) share on
// the command line: how their nodes prove they belong to the cluster (TLS
// certificates, or a shared secret with a demo default), flags given more
// than once (--peer), and a node process waiting to be told to quit or to
// reload its certificates.
//
// The flags of node authentication are defined here, once for every
// example: --tls_cert, --tls_key and --tls_ca (all three or none),
// --tls_reload and --secret.
//
// Who may call what: BlockNodeSignals first thing in main, before any
// thread starts (threads inherit the mask); the rest from the main thread.

#ifndef TROUPE_EXAMPLES_NODE_CLI_H_
#define TROUPE_EXAMPLES_NODE_CLI_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/io/tls.h"
#include "net/node.h"
#include "spdlog/logger.h"

namespace troupe::examples {

// The secret every node of a demo cluster shares unless --secret says
// otherwise. Public: it keeps strangers out of nothing.
inline constexpr std::string_view kDemoSecret = "troupe-demo-secret";

// How the nodes of this process authenticate.
struct NodeAuth {
  // From --tls_cert, --tls_key, --tls_ca; empty: shared-secret mode.
  net::TlsCredentials tls;
  // How often a node checks the TLS files for changes (--tls_reload).
  absl::Duration tls_reload_interval = absl::Seconds(2);
  // With TLS: --secret, possibly empty. Without: --secret, or the demo
  // secret.
  std::string cluster_secret;
};

// Reads the authentication flags. TLS if --tls_cert, --tls_key and --tls_ca
// are all given (InvalidArgument naming the missing ones if only some
// are); then --secret is optional, and if given every node needs it too.
// Prints one line on stdout saying TLS is on with which certificate; or,
// without TLS and without --secret, a warning on stderr about the demo
// secret.
absl::StatusOr<NodeAuth> AuthFromFlags();

// True if any of --tls_cert, --tls_key and --tls_ca is given.
bool AnyTlsFlag();

// Sets the authentication fields of `options` from `auth`. With TLS and an
// empty `options.name`, the name becomes the certificate's first DNS name
// (a node's name must be one of them); if the certificate does not load
// the name stays empty, and Node::ready says why.
void ApplyAuth(const NodeAuth& auth, NodeOptions& options);

// True if `node` can run (Node::ready); else prints why on stderr.
bool Ready(const Node& node);

// Every value of --`name`=v and --`name` v in argv, in order, split at
// commas: absl flags keep only the last of a repeated flag.
std::vector<std::string> RepeatedFlag(int argc, char** argv, std::string_view name);

// A logger for an ActorSystem (and its Node) writing to stderr what is at
// least `level` ("trace", "debug", "info", "warn", "error", "off"; an
// unknown level counts as "info").
std::shared_ptr<spdlog::logger> StderrLogger(const std::string& name, const std::string& level);

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, and so in every
// thread it starts afterwards, so that WaitForQuit can take them
// synchronously.
void BlockNodeSignals();

// Returns once SIGINT or SIGTERM arrives (returning its number) or `quit`
// becomes true (returning 0). Each SIGHUP meanwhile makes `node` reload its
// TLS files (Node::ReloadTls), and prints the outcome on stdout in a line
// starting "<node name>: SIGHUP: ". Needs BlockNodeSignals.
int WaitForQuit(const std::atomic<bool>& quit, Node& node);

// The same, until `done()` returns true (checked five times a second) or
// `deadline` passes (both return 0).
int WaitUntil(absl::FunctionRef<bool()> done, Node& node, absl::Time deadline);

}  // namespace troupe::examples

#endif  // TROUPE_EXAMPLES_NODE_CLI_H_
