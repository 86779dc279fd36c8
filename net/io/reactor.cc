#include "net/io/reactor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "net/io/internal/connection_impl.h"
#include "net/io/internal/io_thread.h"
#include "net/io/internal/reactor_shared.h"
#include "net/io/internal/socket.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace troupe::net {

using internal::Clock;
using internal::ConnectionImpl;
using internal::IoThread;
using internal::UniqueFd;

namespace {

// Connections accepted per readable event before the listener yields.
constexpr int kMaxAcceptsPerEvent = 64;
// After an accept error the reserve cannot absorb, the listener rests this
// long instead of spinning on a socket it cannot accept.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
// Lines about shed connections: at most one per this long.
constexpr auto kShedLogInterval = std::chrono::seconds(1);

internal::UniqueFd OpenReserve() { return internal::UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC)); }

// A listening socket, registered with one I/O thread; accepted sockets are
// dealt round-robin over all threads. I/O thread only, after registration.
//
// Out of descriptors (EMFILE, ENFILE), accept4 fails and leaves the
// connection queued: the level-triggered listener would spin on it, and
// pausing makes every client wait, those that could be served included. So
// the listener keeps a reserve descriptor (/dev/null): it closes the
// reserve, accepts the pending connection into the freed slot, closes that
// at once (the client sees EOF), reopens the reserve and goes on accepting.
// Each shed connection is counted; a line is logged at most once per
// kShedLogInterval, with the count since the last line (a deadline reports
// what a burst left uncounted). Only when the reserve cannot be reopened
// (another thread took the slot) does the listener pause for kAcceptPause,
// trying the reserve again when it resumes.
class Listener final : public internal::Pollable, public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::shared_ptr<IoThread> home, std::vector<std::shared_ptr<IoThread>> threads, UniqueFd fd,
           std::string address, ConnectionOptions options, Reactor::AcceptFn on_accept)
      : home_(std::move(home)),
        threads_(std::move(threads)),
        id_(home_->NewId()),
        fd_(std::move(fd)),
        address_(std::move(address)),
        options_(options),
        on_accept_(std::make_shared<const Reactor::AcceptFn>(std::move(on_accept))),
        reserve_(OpenReserve()) {}

  void Register() {
    if (home_->stopping()) return;
    if (absl::Status s = home_->Add(id_, fd_.get(), EPOLLIN, shared_from_this()); !s.ok()) {
      home_->shared()->logger->error("{}: cannot listen on {}: {}", home_->shared()->name, address_, std::string(s.message()));
      return;
    }
    registered_ = true;
  }

  void OnEvents(uint32_t) override {
    for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
      sockaddr_storage storage{};
      socklen_t length = sizeof(storage);
      UniqueFd fd(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&storage), &length, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) {
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) return;
        if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
        if ((error == EMFILE || error == ENFILE) && Shed(error)) continue;
        const internal::ReactorShared& shared = *home_->shared();
        shared.logger->warn("{}: accept on {}: {}; pausing the listener for {} ms", shared.name, address_,
                            internal::ErrnoMessage(error), kAcceptPause.count());
        Pause();
        return;
      }
      internal::SetSocketOptions(fd.get(), options_.send_buffer_bytes, options_.receive_buffer_bytes);
      std::string peer = internal::FormatAddress(reinterpret_cast<const sockaddr*>(&storage), length);
      const std::shared_ptr<IoThread>& target = threads_[next_++ % threads_.size()];
      // If the target has exited the task is destroyed unrun, closing the fd.
      target->Post([target, fd = std::move(fd), peer = std::move(peer), options = options_,
                    on_accept = on_accept_]() mutable {
        ConnectionImpl::StartAccepted(target, std::move(fd), std::move(peer), options, *on_accept);
      });
    }
  }

  // Two deadlines share the one timer: the end of a pause, and the line
  // for connections shed since the last one.
  void OnTimer() override {
    if (!registered_) return;
    const Clock::time_point now = home_->now();
    if (paused_ && now >= resume_at_) {
      paused_ = false;
      if (!reserve_.valid()) reserve_ = OpenReserve();
      (void)home_->Modify(id_, fd_.get(), EPOLLIN);
    }
    if (shed_unlogged_ > 0 && now >= next_shed_line_) LogShed();
    if (paused_) home_->SetDeadline(id_, *this, resume_at_);
    if (shed_unlogged_ > 0) home_->SetDeadline(id_, *this, next_shed_line_);
  }

  void OnStop() override {
    std::shared_ptr<Listener> keep = shared_from_this();
    home_->Remove(id_, fd_.get());
    registered_ = false;
    fd_.Reset();
    reserve_.Reset();
    threads_.clear();
  }

 private:
  void Pause() {
    paused_ = true;
    resume_at_ = home_->now() + kAcceptPause;
    (void)home_->Modify(id_, fd_.get(), 0);
    home_->SetDeadline(id_, *this, resume_at_);
  }

  // Out of descriptors (`error`): sheds one pending connection through the
  // reserve (see the class comment). False if the reserve is gone: the
  // caller pauses.
  bool Shed(int error) {
    if (!reserve_.valid()) return false;
    reserve_.Reset();
    UniqueFd shed(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    const bool accepted = shed.valid();
    shed.Reset();  // the client sees EOF
    reserve_ = OpenReserve();
    if (accepted) {
      home_->shared()->shed_connections.fetch_add(1, std::memory_order_relaxed);
      ++shed_unlogged_;
      shed_error_ = error;
      if (home_->now() >= next_shed_line_) {
        LogShed();
      } else {
        home_->SetDeadline(id_, *this, next_shed_line_);
      }
    }
    return reserve_.valid();
  }

  void LogShed() {
    const internal::ReactorShared& shared = *home_->shared();
    shared.logger->warn("{}: accept on {}: {}; shed {} connections since the last report (each accepted and closed "
                        "at once)",
                        shared.name, address_, internal::ErrnoMessage(shed_error_), shed_unlogged_);
    shed_unlogged_ = 0;
    next_shed_line_ = home_->now() + kShedLogInterval;
  }

  const std::shared_ptr<IoThread> home_;
  std::vector<std::shared_ptr<IoThread>> threads_;
  const uint64_t id_;
  UniqueFd fd_;
  const std::string address_;
  const ConnectionOptions options_;
  const std::shared_ptr<const Reactor::AcceptFn> on_accept_;
  size_t next_ = 0;
  bool registered_ = false;
  bool paused_ = false;
  Clock::time_point resume_at_ = internal::kNever;
  // Held for shedding; invalid if it could not be (re)opened.
  UniqueFd reserve_;
  uint64_t shed_unlogged_ = 0;  // shed since the last line
  int shed_error_ = 0;
  Clock::time_point next_shed_line_ = Clock::time_point::min();
};

std::shared_ptr<spdlog::logger> DefaultLogger(const std::string& name) {
  return std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
}

}  // namespace

class Reactor::Impl {
 public:
  explicit Impl(ReactorOptions options) : shared_(std::make_shared<internal::ReactorShared>()) {
    shared_->name = options.name;
    shared_->logger = options.logger ? std::move(options.logger) : DefaultLogger(options.name);
    const int count = options.threads > 0 ? options.threads : 1;
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<std::shared_ptr<IoThread>> thread = IoThread::Create(shared_, i);
      if (!thread.ok()) {
        shared_->logger->critical("{}: cannot start I/O thread {}: {}", shared_->name, i, std::string(thread.status().message()));
        std::abort();
      }
      threads_.push_back(*std::move(thread));
    }
    for (auto& thread : threads_) thread->Start();
  }

  ~Impl() {
    for (auto& thread : threads_) {
      if (thread->OnThisThread()) {
        shared_->logger->critical("{}: Reactor destroyed on its own I/O thread", shared_->name);
        std::abort();
      }
    }
    Shutdown();
  }

  absl::StatusOr<std::string> Listen(std::string_view address, ConnectionOptions options, AcceptFn on_accept) {
    if (stopping_.load(std::memory_order_acquire)) {
      return absl::FailedPreconditionError(absl::StrCat("listen on ", std::string(address), ": the reactor is shut down"));
    }
    absl::StatusOr<internal::SocketAddress> parsed = internal::ParseAddress(address);
    if (!parsed.ok()) return parsed.status();
    UniqueFd fd(socket(parsed->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      return absl::UnavailableError(absl::StrCat("listen on ", std::string(address), ": socket: ", internal::ErrnoMessage(errno)));
    }
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd.get(), parsed->get(), parsed->length) != 0) {
      return absl::UnavailableError(absl::StrCat("listen on ", std::string(address), ": bind: ", internal::ErrnoMessage(errno)));
    }
    if (listen(fd.get(), SOMAXCONN) != 0) {
      return absl::UnavailableError(absl::StrCat("listen on ", std::string(address), ": listen: ", internal::ErrnoMessage(errno)));
    }
    absl::StatusOr<std::string> bound = internal::LocalAddress(fd.get());
    if (!bound.ok()) return bound.status();
    const std::shared_ptr<IoThread>& home = threads_[next_listener_.fetch_add(1, std::memory_order_relaxed) %
                                                     threads_.size()];
    auto listener =
        std::make_shared<Listener>(home, threads_, std::move(fd), *bound, options, std::move(on_accept));
    if (!home->Post([listener]() { listener->Register(); })) {
      return absl::FailedPreconditionError(absl::StrCat("listen on ", std::string(address), ": the reactor is shut down"));
    }
    return bound;
  }

  void Connect(std::string_view address, ConnectionOptions options, std::shared_ptr<ConnectionHandler> handler,
               ConnectFn done) {
    if (handler == nullptr) {
      Deliver(std::move(done), absl::InvalidArgumentError(absl::StrCat("connect to ", std::string(address), ": no handler")));
      return;
    }
    absl::StatusOr<internal::SocketAddress> parsed = internal::ParseAddress(address);
    if (!parsed.ok()) {
      Deliver(std::move(done), parsed.status());
      return;
    }
    // Owned by the task; if the task is never run (the thread has exited),
    // `done` is still here to be called.
    auto pending = std::make_shared<ConnectFn>(std::move(done));
    const std::shared_ptr<IoThread>& thread = NextThread();
    const bool posted = !stopping_.load(std::memory_order_acquire) &&
                        thread->Post([thread, address = *parsed, options, handler = std::move(handler),
                                      pending]() mutable {
                          ConnectionImpl::StartConnect(thread, address, options, std::move(handler),
                                                       std::move(*pending));
                        });
    if (!posted && *pending) {
      (*pending)(absl::CancelledError(absl::StrCat("connect to ", std::string(address), ": the reactor is shut down")));
    }
  }

  void Shutdown() {
    stopping_.store(true, std::memory_order_release);
    for (auto& thread : threads_) thread->RequestStop();
    for (auto& thread : threads_) {
      if (thread->OnThisThread()) {
        shared_->logger->warn("{}: Shutdown called on an I/O thread: the threads are joined later", shared_->name);
        return;
      }
    }
    // Concurrent Shutdowns: each joins; std::thread::join from two threads at
    // once is not allowed, so the joins are serialized.
    std::lock_guard<std::mutex> lock(join_mu_);
    for (auto& thread : threads_) thread->Join();
  }

  ReactorStats stats() const {
    ReactorStats s;
    s.accepted = shared_->accepted.load(std::memory_order_relaxed);
    s.connected = shared_->connected.load(std::memory_order_relaxed);
    s.closed = shared_->closed.load(std::memory_order_relaxed);
    s.oversized_frames = shared_->oversized_frames.load(std::memory_order_relaxed);
    s.timeouts = shared_->timeouts.load(std::memory_order_relaxed);
    s.rejected_sends = shared_->rejected_sends.load(std::memory_order_relaxed);
    s.shed_connections = shared_->shed_connections.load(std::memory_order_relaxed);
    s.tls_refused = shared_->tls_refused.load(std::memory_order_relaxed);
    s.tls_errors = shared_->tls_errors.load(std::memory_order_relaxed);
    return s;
  }

 private:
  const std::shared_ptr<IoThread>& NextThread() {
    return threads_[next_thread_.fetch_add(1, std::memory_order_relaxed) % threads_.size()];
  }

  // Runs `done` with `result` on an I/O thread, or here once they are gone.
  void Deliver(ConnectFn done, absl::Status result) {
    // The status is moved, never copied, to the thread that reports it, so
    // its representation is not shared across threads.
    auto pending = std::make_shared<std::pair<ConnectFn, absl::Status>>(std::move(done), std::move(result));
    if (!stopping_.load(std::memory_order_acquire) &&
        NextThread()->Post([pending, shared = shared_]() {
          internal::CallDone(pending->first, std::move(pending->second), *shared);
        })) {
      return;
    }
    pending->first(std::move(pending->second));
  }

  const std::shared_ptr<internal::ReactorShared> shared_;
  // Fixed after construction.
  std::vector<std::shared_ptr<IoThread>> threads_;
  // Round-robin counters: relaxed, any value spreads the load.
  std::atomic<size_t> next_thread_{0};
  std::atomic<size_t> next_listener_{0};
  // Set once by Shutdown. Release/acquire only so that Listen and Connect
  // starting after a Shutdown returned refuse early; correctness does not
  // depend on it (a thread that has exited refuses posts).
  std::atomic<bool> stopping_{false};
  std::mutex join_mu_;
};

Reactor::Reactor(ReactorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Reactor::~Reactor() = default;

absl::StatusOr<std::string> Reactor::Listen(std::string_view address, ConnectionOptions options,
                                            AcceptFn on_accept) {
  return impl_->Listen(address, options, std::move(on_accept));
}

void Reactor::Connect(std::string_view address, ConnectionOptions options,
                      std::shared_ptr<ConnectionHandler> handler, ConnectFn done) {
  impl_->Connect(address, options, std::move(handler), std::move(done));
}

void Reactor::Shutdown() { impl_->Shutdown(); }

ReactorStats Reactor::stats() const { return impl_->stats(); }

}  // namespace troupe::net
