#include "examples/node_cli.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"


namespace troupe::examples {

std::string SecretOrDemo(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::fprintf(stderr,
               "warning: using the built-in demo secret; anyone who knows it can join this cluster. "
               "Pass the same --secret=... to every node.\n");
  return std::string(kDemoSecret);
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

sigset_t QuitSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockQuitSignals() {
  const sigset_t set = QuitSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForQuit(const std::atomic<bool>& quit) {
  const sigset_t set = QuitSignals();
  // Checks `quit` five times a second; a signal ends the wait at once.
  const timespec tick = {.tv_sec = 0, .tv_nsec = 200'000'000};
  // acquire: pairs with the release store of whoever sets `quit`.
  while (!quit.load(std::memory_order_acquire)) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) return sig;
  }
  return 0;
}

}  // namespace troupe::examples
