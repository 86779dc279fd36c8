#include "net/io/internal/io_thread.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/io/internal/connection_impl.h"

namespace troupe::net::internal {
namespace {

constexpr int kMaxEvents = 256;
// Rounds of posted work run back to back before epoll is polled again, so
// work a handler posts to its own thread (a reply's flush) runs without an
// extra epoll_wait, and a handler that keeps posting cannot starve I/O.
constexpr int kMaxPostedRounds = 4;

// The IoThread whose loop runs on this thread, if any.
thread_local const IoThread* current_thread = nullptr;

}  // namespace

absl::StatusOr<std::shared_ptr<IoThread>> IoThread::Create(std::shared_ptr<ReactorShared> shared, int index) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return absl::InternalError(absl::StrCat("epoll_create1: ", ErrnoMessage(errno)));
  UniqueFd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return absl::InternalError(absl::StrCat("eventfd: ", ErrnoMessage(errno)));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;
  if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl(eventfd): ", ErrnoMessage(errno)));
  }
  return std::shared_ptr<IoThread>(new IoThread(std::move(shared), index, std::move(epoll), std::move(wake)));
}

IoThread::IoThread(std::shared_ptr<ReactorShared> shared, int index, UniqueFd epoll, UniqueFd wake)
    : shared_(std::move(shared)),
      index_(index),
      epoll_(std::move(epoll)),
      wake_(std::move(wake)),
      read_buffer_(new uint64_t[kReadBufferBytes / 8]) {}

IoThread::~IoThread() {
  // Join() ran (the Reactor joins every thread it started). A thread that was
  // never started has nothing to join.
  if (thread_.joinable()) {
    shared_->logger->critical("{}: I/O thread {} destroyed while running", shared_->name, index_);
    std::abort();
  }
}

void IoThread::Start() {
  thread_ = std::thread([this] { Run(); });
  // Linux limits thread names to 15 characters.
  const std::string name = absl::StrCat(shared_->name, "-", index_).substr(0, 15);
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

void IoThread::Join() {
  if (thread_.joinable()) thread_.join();
}

bool IoThread::OnThisThread() const { return current_thread == this; }

bool IoThread::Post(Task task) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exited_) return false;
    tasks_.push_back(std::move(task));
    // This thread checks for its own posts before blocking; others wake it.
    if (!wake_pending_ && !OnThisThread()) wake = wake_pending_ = true;
  }
  if (wake) Wake();
  return true;
}

void IoThread::PostFlush(std::shared_ptr<ConnectionImpl> connection) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exited_) return;
    flushes_.push_back(std::move(connection));
    if (!wake_pending_ && !OnThisThread()) wake = wake_pending_ = true;
  }
  if (wake) Wake();
}

void IoThread::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_ || exited_) return;
    stop_requested_ = true;
  }
  Post([this]() { StopAll(); });
}

void IoThread::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the thread will wake anyway.
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof(one));
}

absl::Status IoThread::Add(uint64_t id, int fd, uint32_t events, std::shared_ptr<Pollable> pollable) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl(ADD): ", ErrnoMessage(errno)));
  }
  pollables_[id] = std::move(pollable);
  return absl::OkStatus();
}

absl::Status IoThread::Modify(uint64_t id, int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl(MOD): ", ErrnoMessage(errno)));
  }
  return absl::OkStatus();
}

void IoThread::Remove(uint64_t id, int fd) {
  if (fd >= 0) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  pollables_.erase(id);
}

void IoThread::SetDeadline(uint64_t id, Pollable& pollable, Clock::time_point deadline) {
  if (deadline >= pollable.armed_deadline_) return;
  pollable.armed_deadline_ = deadline;
  timers_.push(TimerEntry{deadline, id});
}

int IoThread::NextTimeoutMs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tasks_.empty() || !flushes_.empty()) return 0;
  }
  if (timers_.empty()) return -1;
  const Clock::duration left = timers_.top().deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Rounded up, so the loop does not wake just before the deadline and spin.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 60000 ? 60000 : static_cast<int>(ms);
}

bool IoThread::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_tasks_.swap(tasks_);
    running_flushes_.swap(flushes_);
    wake_pending_ = false;
  }
  const bool ran = !running_tasks_.empty() || !running_flushes_.empty();
  for (Task& task : running_tasks_) std::move(task)();
  running_tasks_.clear();
  for (std::shared_ptr<ConnectionImpl>& connection : running_flushes_) connection->RunScheduledFlush();
  running_flushes_.clear();
  return ran;
}

void IoThread::RunTimers() {
  // Bounded: only entries due now, and each pops one entry.
  while (!timers_.empty() && timers_.top().deadline <= now_) {
    const TimerEntry entry = timers_.top();
    timers_.pop();
    auto it = pollables_.find(entry.id);
    if (it == pollables_.end()) continue;
    std::shared_ptr<Pollable> pollable = it->second;
    if (pollable->armed_deadline_ != entry.deadline) continue;  // stale
    pollable->armed_deadline_ = kNever;
    pollable->OnTimer();
  }
}

void IoThread::StopAll() {
  stopping_ = true;
  std::vector<std::shared_ptr<Pollable>> all;
  all.reserve(pollables_.size());
  for (auto& [id, pollable] : pollables_) all.push_back(pollable);
  for (auto& pollable : all) pollable->OnStop();
}

void IoThread::Run() {
  current_thread = this;
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_.get(), events, kMaxEvents, NextTimeoutMs());
    now_ = Clock::now();
    if (n < 0 && errno != EINTR) {
      shared_->logger->critical("{}: epoll_wait: {}", shared_->name, ErrnoMessage(errno));
      std::abort();
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_.get(), &count, sizeof(count));
        continue;
      }
      auto it = pollables_.find(id);
      if (it == pollables_.end()) continue;  // removed earlier in this batch
      std::shared_ptr<Pollable> pollable = it->second;
      pollable->OnEvents(events[i].events);
    }
    for (int round = 0; round < kMaxPostedRounds && RunPosted(); ++round) {
    }
    RunTimers();
    if (stopping_ && pollables_.empty()) break;
  }
  std::vector<Task> rest;
  std::vector<std::shared_ptr<ConnectionImpl>> flushes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
    rest.swap(tasks_);
    flushes.swap(flushes_);
  }
  // Tasks posted before the exit see stopping() and cancel themselves (a
  // Connect reports Cancelled, an accepted socket is closed); the flushes
  // belong to connections that have all finished.
  for (Task& task : rest) std::move(task)();
  for (auto& connection : flushes) connection->RunScheduledFlush();
  current_thread = nullptr;
}

}  // namespace troupe::net::internal
