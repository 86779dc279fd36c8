#include "examples/node_cli.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, tls_cert, "",
          "TLS: this node's certificate chain (PEM; tools/make-certs makes it); with --tls_key and --tls_ca");
ABSL_FLAG(std::string, tls_key, "", "TLS: the private key of --tls_cert (PEM)");
ABSL_FLAG(std::string, tls_ca, "", "TLS: the CA certificates peers' certificates must come from (PEM)");
ABSL_FLAG(absl::Duration, tls_reload, absl::Seconds(2),
          "TLS: how often the files are checked for changes, so new connections use a renewed certificate "
          "(0: only on SIGHUP)");
ABSL_FLAG(std::string, secret, "",
          "the cluster secret, the same on every node: required without TLS (default: a demo secret), "
          "optional with it");

namespace troupe::examples {

absl::StatusOr<NodeAuth> AuthFromFlags() {
  NodeAuth auth;
  auth.tls.certificate_chain_file = absl::GetFlag(FLAGS_tls_cert);
  auth.tls.private_key_file = absl::GetFlag(FLAGS_tls_key);
  auth.tls.trusted_ca_file = absl::GetFlag(FLAGS_tls_ca);
  auth.tls_reload_interval = absl::GetFlag(FLAGS_tls_reload);
  auth.cluster_secret = absl::GetFlag(FLAGS_secret);
  std::vector<std::string> missing;
  if (auth.tls.certificate_chain_file.empty()) missing.push_back("--tls_cert");
  if (auth.tls.private_key_file.empty()) missing.push_back("--tls_key");
  if (auth.tls.trusted_ca_file.empty()) missing.push_back("--tls_ca");
  if (!missing.empty() && missing.size() < 3) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_cert, --tls_key and --tls_ca go together: missing ",
                                                   absl::StrJoin(missing, " and ")));
  }
  if (auth.tls_reload_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--tls_reload must not be negative");
  }
  if (!auth.tls.empty()) {
    std::printf("TLS on: certificate %s (key %s, trusted CAs %s)%s\n", auth.tls.certificate_chain_file.c_str(),
                auth.tls.private_key_file.c_str(), auth.tls.trusted_ca_file.c_str(),
                auth.cluster_secret.empty() ? "" : ", and the cluster secret");
  } else if (auth.cluster_secret.empty()) {
    std::fprintf(stderr,
                 "warning: using the built-in demo secret; anyone who knows it can join this cluster. "
                 "Pass the same --secret=... to every node, or use TLS (--tls_cert, --tls_key, --tls_ca).\n");
    auth.cluster_secret = std::string(kDemoSecret);
  }
  return auth;
}

bool AnyTlsFlag() {
  return !absl::GetFlag(FLAGS_tls_cert).empty() || !absl::GetFlag(FLAGS_tls_key).empty() ||
         !absl::GetFlag(FLAGS_tls_ca).empty();
}

void ApplyAuth(const NodeAuth& auth, NodeOptions& options) {
  options.tls = auth.tls;
  options.tls_reload_interval = auth.tls_reload_interval;
  options.cluster_secret = auth.cluster_secret;
  if (options.name.empty() && !auth.tls.empty()) {
    absl::StatusOr<std::shared_ptr<const net::TlsContext>> loaded = net::TlsContext::Create(auth.tls);
    if (loaded.ok() && !(*loaded)->names().empty()) options.name = (*loaded)->names().front();
  }
}

bool Ready(const Node& node) {
  const absl::Status ready = node.ready();
  if (ready.ok()) return true;
  std::fprintf(stderr, "node %s cannot run: %s\n", node.name().c_str(), ready.ToString().c_str());
  return false;
}

std::vector<std::string> RepeatedFlag(int argc, char** argv, std::string_view name) {
  const std::string eq = "--" + std::string(name) + "=";
  const std::string bare = "--" + std::string(name);
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    std::string_view value;
    if (arg.starts_with(eq)) {
      value = arg.substr(eq.size());
    } else if (arg == bare && i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;
    }
    while (!value.empty()) {
      const size_t comma = std::min(value.find(','), value.size());
      if (comma > 0) values.emplace_back(value.substr(0, comma));
      value.remove_prefix(std::min(comma + 1, value.size()));
    }
  }
  return values;
}

std::shared_ptr<spdlog::logger> StderrLogger(const std::string& name, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  return logger;
}

namespace {

sigset_t NodeSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// SIGHUP: the node rereads its TLS files; one line says how that went.
void ReloadTls(Node& node) {
  const absl::Status reloaded = node.ReloadTls();
  if (reloaded.ok()) {
    std::printf("%s: SIGHUP: TLS files reloaded; new connections use them\n", node.name().c_str());
  } else {
    std::printf("%s: SIGHUP: TLS files not reloaded: %s\n", node.name().c_str(), reloaded.ToString().c_str());
  }
  std::fflush(stdout);
}

}  // namespace

void BlockNodeSignals() {
  const sigset_t set = NodeSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForQuit(const std::atomic<bool>& quit, Node& node) {
  // acquire: pairs with the release store of whoever sets `quit`.
  return WaitUntil([&quit] { return quit.load(std::memory_order_acquire); }, node, absl::InfiniteFuture());
}

int WaitUntil(absl::FunctionRef<bool()> done, Node& node, absl::Time deadline) {
  const sigset_t set = NodeSignals();
  // Checks `done` five times a second; SIGINT or SIGTERM ends the wait at
  // once, SIGHUP is handled here and the wait goes on.
  while (!done()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    const timespec tick = absl::ToTimespec(std::min(left, absl::Milliseconds(200)));
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGHUP) {
      ReloadTls(node);
    } else if (sig > 0) {
      return sig;
    }
  }
  return 0;
}

}  // namespace troupe::examples
