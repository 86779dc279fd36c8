// IoThread: one reactor thread with its own epoll set, an eventfd to wake it,
// a queue of tasks posted from other threads, and a deadline heap.
//
// Everything registered with a thread is a Pollable (a connection or a
// listener), known by an id unique within the thread; epoll events and timer
// entries carry the id, never a pointer, so an event for something that was
// removed earlier in the same batch finds nothing and is dropped.
//
// The loop, one iteration:
//   1. epoll_wait, with a timeout to the nearest deadline (0 if something was
//      posted from this thread itself during the last iteration).
//   2. Events: the eventfd is read (that only resets it); others go to their
//      Pollable's OnEvents.
//   3. Posted work: tasks (run in post order), then flushes requested by Send
//      (each connection at most once per request, see ConnectionImpl).
//   4. Expired deadlines: the Pollable's OnTimer.
//   5. Exit if stopping and nothing is registered any more.
//
// Stopping:
//   1. RequestStop (any thread) posts the stop task.
//   2. The stop task sets stopping_ and calls OnStop on every Pollable:
//      listeners close, connections start closing (Cancelled).
//   3. The loop runs until the last Pollable has removed itself: connections
//      still flush what was queued, up to their close timeout.
//   4. The loop marks the thread exited (Post fails from then on) and runs
//      the tasks still queued; they see stopping() and cancel themselves.
//
// Deadlines: SetDeadline pushes a heap entry only when the new deadline is
// earlier than the one already armed for that Pollable, so a deadline that
// moves later (the idle timeout, at every frame) costs nothing; the early
// entry fires, OnTimer finds nothing due and arms the real deadline. Entries
// whose deadline no longer matches the armed one are stale and skipped.
//
// Who may call what: Post, PostFlush, RequestStop, OnThisThread and Join from
// any thread (Join not from this thread). Everything else on this thread only.

#ifndef TROUPE_NET_IO_INTERNAL_IO_THREAD_H_
#define TROUPE_NET_IO_INTERNAL_IO_THREAD_H_

#include <sys/epoll.h>
#include <sys/uio.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "net/io/internal/reactor_shared.h"
#include "net/io/internal/socket.h"

namespace troupe::net::internal {

class ConnectionImpl;

using Clock = std::chrono::steady_clock;
inline constexpr Clock::time_point kNever = Clock::time_point::max();

// Something registered with an IoThread. Called on that thread only.
class Pollable {
 public:
  virtual ~Pollable() = default;
  // epoll reported `events` for this Pollable's fd.
  virtual void OnEvents(uint32_t events) = 0;
  // The deadline armed with SetDeadline has passed.
  virtual void OnTimer() = 0;
  // The thread is stopping: close, and Remove yourself when done.
  virtual void OnStop() = 0;

 private:
  friend class IoThread;
  // The deadline of this Pollable's live heap entry (kNever: none).
  Clock::time_point armed_deadline_ = kNever;
};

class IoThread {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  // Makes the epoll set and the eventfd; the thread starts with Start.
  static absl::StatusOr<std::shared_ptr<IoThread>> Create(std::shared_ptr<ReactorShared> shared, int index);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  void Start();
  // Any thread but this one. Returns once the thread has exited.
  void Join();

  // Any thread. Runs `task` on this thread, after the events of the current
  // iteration. False, and `task` destroyed unrun, once the thread has exited.
  bool Post(Task task);
  // Any thread. Calls connection->RunScheduledFlush() on this thread. Dropped
  // once the thread has exited.
  void PostFlush(std::shared_ptr<ConnectionImpl> connection);
  // Any thread, idempotent.
  void RequestStop();
  bool OnThisThread() const;

  // --- This thread only. ---
  Clock::time_point now() const { return now_; }
  bool stopping() const { return stopping_; }
  const std::shared_ptr<ReactorShared>& shared() const { return shared_; }
  uint64_t NewId() { return next_id_++; }
  // Registers `pollable` under `id` with its fd and epoll `events`.
  absl::Status Add(uint64_t id, int fd, uint32_t events, std::shared_ptr<Pollable> pollable);
  absl::Status Modify(uint64_t id, int fd, uint32_t events);
  // Deregisters the fd (the caller closes it) and drops the thread's reference.
  void Remove(uint64_t id, int fd);
  // Arms OnTimer for `pollable` (registered under `id`) at `deadline`
  // (kNever: nothing new is armed; an armed entry still fires, harmlessly).
  void SetDeadline(uint64_t id, Pollable& pollable, Clock::time_point deadline);
  // A buffer for reads, shared by the thread's connections: 8-byte aligned.
  uint8_t* read_buffer() { return reinterpret_cast<uint8_t*>(read_buffer_.get()); }
  static constexpr size_t kReadBufferBytes = size_t{64} << 10;
  // Scratch iovecs for writev, shared by the thread's connections.
  static constexpr int kMaxIov = IOV_MAX;
  iovec* iov() { return iov_; }

 private:
  struct TimerEntry {
    Clock::time_point deadline;
    uint64_t id;
    bool operator>(const TimerEntry& other) const { return deadline > other.deadline; }
  };

  IoThread(std::shared_ptr<ReactorShared> shared, int index, UniqueFd epoll, UniqueFd wake);
  void Run();
  void Wake();
  int NextTimeoutMs();
  // Runs posted tasks and flushes; true if anything ran.
  bool RunPosted();
  void RunTimers();
  void StopAll();

  const std::shared_ptr<ReactorShared> shared_;
  const int index_;
  const UniqueFd epoll_;
  const UniqueFd wake_;  // eventfd, registered under id 0
  std::thread thread_;

  std::mutex mu_;
  std::vector<Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<ConnectionImpl>> flushes_ ABSL_GUARDED_BY(mu_);
  // True from a wake-up write until the loop takes the posted work: further
  // posts need not write the eventfd again.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;

  // This thread only.
  Clock::time_point now_ = Clock::now();
  bool stopping_ = false;
  uint64_t next_id_ = 1;  // 0 is the eventfd
  absl::flat_hash_map<uint64_t, std::shared_ptr<Pollable>> pollables_;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  std::vector<Task> running_tasks_;
  std::vector<std::shared_ptr<ConnectionImpl>> running_flushes_;
  std::unique_ptr<uint64_t[]> read_buffer_;
  iovec iov_[kMaxIov];
};

}  // namespace troupe::net::internal

#endif  // TROUPE_NET_IO_INTERNAL_IO_THREAD_H_
