#include "actors/actor_system.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "scheduler/blocking_pool.h"
#include "scheduler/worker_pool.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace troupe {
namespace {

std::shared_ptr<spdlog::logger> DefaultLogger(const std::string& name) {
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
  return logger;
}

std::unique_ptr<BlockingPool> MakeBlockingPool(const ActorSystemOptions& options) {
  BlockingPool::Options blocking;
  blocking.max_threads = options.max_blocking_threads > 0 ? options.max_blocking_threads : 1;
  blocking.name = options.name + "-blk";
  return std::make_unique<BlockingPool>(blocking);
}

}  // namespace

ActorSystem::ActorSystem(ActorSystemOptions options)
    : ActorSystem(options,
                  std::make_unique<WorkerPool>(WorkerPool::Options{.workers = options.workers, .name = options.name}),
                  std::make_shared<RealTimerService>(absl::Milliseconds(1), options.name + "-tmr")) {}

ActorSystem::ActorSystem(ActorSystemOptions options, std::unique_ptr<Executor> executor,
                         std::shared_ptr<TimerService> timers) {
  std::shared_ptr<spdlog::logger> logger = options.logger ? options.logger : DefaultLogger(options.name);
  std::unique_ptr<BlockingPool> blocking = MakeBlockingPool(options);
  core_ = new internal::SystemCore(options.name, std::move(executor), std::move(timers), std::move(blocking),
                                   std::move(logger), options.batch);
}

ActorSystem::~ActorSystem() {
  if (absl::Status s = Shutdown(); !s.ok()) {
    core_->log().error("system {}: shutdown in the destructor failed: {}", name(), s.ToString());
  }
  core_->Release();
}

absl::Status ActorSystem::Shutdown(absl::Duration timeout) {
  if (absl::Status s = internal::CheckMayBlock("ActorSystem::Shutdown"); !s.ok()) return s;
  // Held for the whole first call: a concurrent caller waits here, then
  // returns that call's result.
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (!shutdown_status_.has_value()) shutdown_status_ = core_->Shutdown(timeout);
  return *shutdown_status_;
}

ActorSystemStats ActorSystem::stats() const {
  return {core_->spawned(), core_->live_actors(), core_->dead_letters(), core_->failures(), core_->dropped()};
}

}  // namespace troupe
