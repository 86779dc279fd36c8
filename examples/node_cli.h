// What the networked examples (remote_pingpong, counter_service) share on
// the command line: the cluster secret with its demo default, flags given
// more than once (--peer), and a node process waiting to be told to quit.
//
// Who may call what: BlockQuitSignals first thing in main, before any
// thread starts (threads inherit the mask); the rest from the main thread.

#ifndef TROUPE_EXAMPLES_NODE_CLI_H_
#define TROUPE_EXAMPLES_NODE_CLI_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spdlog/logger.h"

namespace troupe::examples {

// The secret every node of a demo cluster shares unless --secret says
// otherwise. Public: it keeps strangers out of nothing.
inline constexpr std::string_view kDemoSecret = "troupe-demo-secret";

// `flag` if non-empty; else the demo secret, with a warning on stderr.
std::string SecretOrDemo(const std::string& flag);

// Every value of --`name`=v and --`name` v in argv, in order, split at
// commas: absl flags keep only the last of a repeated flag.
std::vector<std::string> RepeatedFlag(int argc, char** argv, std::string_view name);

// A logger for an ActorSystem (and its Node) writing to stderr what is at
// least `level` ("trace", "debug", "info", "warn", "error", "off"; an
// unknown level counts as "info").
std::shared_ptr<spdlog::logger> StderrLogger(const std::string& name, const std::string& level);

// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it
// starts afterwards, so that WaitForQuit can take them synchronously.
void BlockQuitSignals();

// Returns once SIGINT or SIGTERM arrives (returning its number) or `quit`
// becomes true (returning 0). Needs BlockQuitSignals.
int WaitForQuit(const std::atomic<bool>& quit);

}  // namespace troupe::examples

#endif  // TROUPE_EXAMPLES_NODE_CLI_H_
