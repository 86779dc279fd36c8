#include "net/io/internal/connection_impl.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace troupe::net::internal {
namespace {

constexpr uint32_t kReadEvents = EPOLLIN;

}  // namespace

void CallDone(Reactor::ConnectFn& done, absl::StatusOr<std::shared_ptr<Connection>> result,
              const ReactorShared& shared) {
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    shared.logger->error("{}: Connect callback threw: {}", shared.name, e.what());
  } catch (...) {
    shared.logger->error("{}: Connect callback threw", shared.name);
  }
}

ConnectionImpl::ConnectionImpl(std::shared_ptr<IoThread> thread, UniqueFd fd, std::string peer,
                               const ConnectionOptions& options, std::shared_ptr<ConnectionHandler> handler)
    : thread_(std::move(thread)),
      id_(thread_->NewId()),
      peer_(std::move(peer)),
      options_(options),
      fd_(std::move(fd)),
      handler_(std::move(handler)),
      decoder_(options.max_frame_bytes) {}

ConnectionImpl::~ConnectionImpl() = default;

// ---------------------------------------------------------------------------
// Starting.

void ConnectionImpl::StartAccepted(const std::shared_ptr<IoThread>& thread, UniqueFd fd, std::string peer,
                                   const ConnectionOptions& options, const Reactor::AcceptFn& on_accept) {
  if (thread->stopping()) return;  // the fd closes here
  auto connection = std::make_shared<ConnectionImpl>(thread, std::move(fd), std::move(peer), options, nullptr);
  ReactorShared& shared = *thread->shared();
  if (absl::Status s = thread->Add(connection->id_, connection->fd_.get(), kReadEvents, connection); !s.ok()) {
    shared.logger->error("{}: dropping connection from {}: {}", shared.name, connection->peer_, std::string(s.message()));
    return;
  }
  connection->registered_ = true;
  connection->interest_ = kReadEvents;
  shared.accepted.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<ConnectionHandler> handler;
  try {
    handler = on_accept(*connection);
  } catch (const std::exception& e) {
    shared.logger->error("{}: accept handler threw for {}: {}", shared.name, connection->peer_, e.what());
  } catch (...) {
    shared.logger->error("{}: accept handler threw for {}", shared.name, connection->peer_);
  }
  if (handler == nullptr) {
    // Refused: closed at once, and no handler hears of it.
    connection->Fail(absl::CancelledError("refused by the accept handler"), /*socket_dead=*/true);
    return;
  }
  connection->handler_ = std::move(handler);
  connection->idle_deadline_ = connection->After(options.idle_timeout);
  if (options.tls != nullptr) {
    if (absl::Status s = connection->StartTls(/*accept=*/true); !s.ok()) {
      connection->Fail(std::move(s), /*socket_dead=*/true);
      return;
    }
  } else {
    connection->OpenDirect();
  }
  connection->UpdateDeadline();
}

void ConnectionImpl::StartConnect(const std::shared_ptr<IoThread>& thread, const SocketAddress& address,
                                  const ConnectionOptions& options, std::shared_ptr<ConnectionHandler> handler,
                                  Reactor::ConnectFn done) {
  const std::string peer = FormatAddress(address.get(), address.length);
  const ReactorShared& shared = *thread->shared();
  if (thread->stopping()) {
    CallDone(done, absl::CancelledError(absl::StrCat("connect to ", peer, ": the reactor is shutting down")), shared);
    return;
  }
  UniqueFd fd(socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    CallDone(done, absl::UnavailableError(absl::StrCat("connect to ", peer, ": socket: ", ErrnoMessage(errno))),
             shared);
    return;
  }
  SetSocketOptions(fd.get(), options.send_buffer_bytes, options.receive_buffer_bytes);
  if (connect(fd.get(), address.get(), address.length) != 0 && errno != EINPROGRESS) {
    CallDone(done, absl::UnavailableError(absl::StrCat("connect to ", peer, ": ", ErrnoMessage(errno))), shared);
    return;
  }
  // Even an immediate success completes through EPOLLOUT: `done` gets the
  // connection only once it is registered with its thread.
  auto connection = std::make_shared<ConnectionImpl>(thread, std::move(fd), peer, options, std::move(handler));
  connection->connecting_ = true;
  connection->connect_done_ = std::move(done);
  if (absl::Status s = thread->Add(connection->id_, connection->fd_.get(), EPOLLOUT, connection); !s.ok()) {
    Reactor::ConnectFn callback = std::move(connection->connect_done_);
    CallDone(callback, absl::UnavailableError(absl::StrCat("connect to ", peer, ": ", s.message())), shared);
    return;
  }
  connection->registered_ = true;
  connection->interest_ = EPOLLOUT;
  connection->connect_deadline_ = connection->After(options.connect_timeout);
  connection->UpdateDeadline();
}

void ConnectionImpl::CompleteConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    FailConnect(absl::UnavailableError(absl::StrCat("connect to ", peer_, ": ", ErrnoMessage(error))));
    return;
  }
  const bool tls = options_.tls != nullptr;
  if (tls) {
    if (absl::Status s = StartTls(/*accept=*/false); !s.ok()) {
      FailConnect(absl::UnavailableError(absl::StrCat("connect to ", peer_, ": ", s.message())));
      return;
    }
  }
  connecting_ = false;
  connect_deadline_ = kNever;
  SetInterest(kReadEvents);
  thread_->shared()->connected.fetch_add(1, std::memory_order_relaxed);
  idle_deadline_ = After(options_.idle_timeout);
  UpdateDeadline();
  if (!tls) OpenDirect();
  Reactor::ConnectFn done = std::move(connect_done_);
  connect_done_ = nullptr;
  // Frames may be sent from here on (with TLS they wait for its
  // handshake); reading starts when this returns.
  std::shared_ptr<ConnectionImpl> keep = self();
  CallDone(done, std::static_pointer_cast<Connection>(keep), *thread_->shared());
  if (tls && !finished_ && !closing_started_) ContinueTlsHandshake();  // the ClientHello
}

void ConnectionImpl::OpenDirect() {
  std::lock_guard<std::mutex> lock(write_mu_);
  direct_open_ = true;
}

void ConnectionImpl::FailConnect(absl::Status reason) {
  connecting_ = false;
  finished_ = true;
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    state_.store(State::kClosed, std::memory_order_relaxed);
  }
  Reactor::ConnectFn done = std::move(connect_done_);
  connect_done_ = nullptr;
  handler_.reset();
  std::shared_ptr<ConnectionImpl> keep = self();
  thread_->Remove(id_, fd_.get());
  fd_.Reset();
  CallDone(done, std::move(reason), *thread_->shared());
}

// ---------------------------------------------------------------------------
// Any thread.

void ConnectionImpl::Close(absl::Status reason) {
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    if (state_.load(std::memory_order_relaxed) != State::kOpen) return;
    close_reason_ = std::move(reason);
    state_.store(State::kClosing, std::memory_order_relaxed);
  }
  // Always through the loop, also from this thread: Close inside OnFrame
  // must not run OnClosed inside OnFrame. A failed post means the thread has
  // exited, and every connection finished before it did.
  thread_->Post([self = self()]() { self->BeginClose(/*socket_dead=*/false); });
}

ConnectionStats ConnectionImpl::stats() const {
  ConnectionStats s;
  s.frames_in = frames_in_.load(std::memory_order_relaxed);
  s.frames_out = frames_out_.load(std::memory_order_relaxed) + direct_frames_out_.load(std::memory_order_relaxed);
  s.control_frames_out =
      control_frames_out_.load(std::memory_order_relaxed) + direct_control_frames_out_.load(std::memory_order_relaxed);
  s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  s.bytes_out = bytes_out_.load(std::memory_order_relaxed) + direct_bytes_out_.load(std::memory_order_relaxed);
  s.writev_calls = writev_calls_.load(std::memory_order_relaxed);
  s.direct_writes = direct_writes_.load(std::memory_order_relaxed);
  s.rejected_sends = rejected_sends_.load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------
// I/O thread: events and timers.

void ConnectionImpl::OnEvents(uint32_t events) {
  if (finished_) return;
  if (connecting_) {
    CompleteConnect();
    return;
  }
  if (tls_handshaking_ && !closing_started_) {
    ContinueTlsHandshake();
    return;
  }
  if (!closing_started_ && ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 ||
                            (read_wants_write_ && (events & EPOLLOUT) != 0))) {
    OnReadable();
  }
  if (finished_) return;
  if (closing_started_ && (events & (EPOLLHUP | EPOLLERR)) != 0) {
    // Nothing more can be written.
    Finish();
    return;
  }
  if ((events & EPOLLOUT) != 0) Flush(/*writable=*/true);
}

void ConnectionImpl::OnTimer() {
  if (finished_) return;
  const Clock::time_point now = thread_->now();
  ReactorShared& shared = *thread_->shared();
  if (connecting_) {
    if (now >= connect_deadline_) {
      FailConnect(absl::DeadlineExceededError(absl::StrCat("connect to ", peer_, ": no answer within ",
                                                           absl::FormatDuration(options_.connect_timeout))));
      return;
    }
  } else if (closing_started_) {
    if (now >= close_deadline_) {
      Finish();
      return;
    }
  } else if (now >= tls_deadline_) {
    shared.timeouts.fetch_add(1, std::memory_order_relaxed);
    shared.tls_refused.fetch_add(1, std::memory_order_relaxed);
    Fail(absl::DeadlineExceededError(absl::StrCat("the TLS handshake did not complete within ",
                                                  absl::FormatDuration(options_.tls_handshake_timeout))),
         /*socket_dead=*/true);
    return;
  } else if (now >= frame_deadline_) {
    shared.timeouts.fetch_add(1, std::memory_order_relaxed);
    Fail(absl::DeadlineExceededError(absl::StrCat("peer sends too slowly: a frame was not complete within ",
                                                  absl::FormatDuration(options_.frame_timeout))),
         /*socket_dead=*/false);
    return;
  } else if (now >= idle_deadline_) {
    shared.timeouts.fetch_add(1, std::memory_order_relaxed);
    Fail(absl::DeadlineExceededError(
             absl::StrCat("no frame from the peer for ", absl::FormatDuration(options_.idle_timeout))),
         /*socket_dead=*/false);
    return;
  }
  UpdateDeadline();
}

void ConnectionImpl::OnStop() {
  if (finished_) return;
  if (connecting_) {
    FailConnect(absl::CancelledError(absl::StrCat("connect to ", peer_, ": the reactor is shutting down")));
    return;
  }
  Fail(absl::CancelledError("the reactor is shutting down"), /*socket_dead=*/false);
}

// ---------------------------------------------------------------------------
// I/O thread: reading.

void ConnectionImpl::OnReadable() {
  if (state_.load(std::memory_order_relaxed) != State::kOpen) {
    BeginClose(/*socket_dead=*/false);  // Close was called; its task is posted
    return;
  }
  if (tls_ != nullptr) {
    ReadTls();
  } else {
    ReadPlain();
  }
}

bool ConnectionImpl::Deliver(absl::Span<const uint8_t> bytes) {
  Bump(bytes_in_, bytes.size());
  if (tls_ == nullptr && options_.refuse_tls_peers && first_seen_ < sizeof(first_bytes_)) {
    for (size_t i = 0; i < bytes.size() && first_seen_ < sizeof(first_bytes_); ++i) {
      first_bytes_[first_seen_++] = bytes[i];
    }
    if (first_seen_ == sizeof(first_bytes_) && LooksLikeTls(absl::MakeConstSpan(first_bytes_))) {
      FailMismatch(absl::FailedPreconditionError(
          "the peer speaks TLS (its first bytes are a TLS record) and this connection has no TLS configured"));
      return false;
    }
  }
  const uint64_t frames_before = decoder_.frames();
  absl::Status s = decoder_.Feed(bytes, [this](absl::Span<const uint8_t> payload) -> absl::Status {
    // Closed from a handler or another thread (its BeginClose is posted,
    // not yet run): deliver no more.
    if (state_.load(std::memory_order_relaxed) != State::kOpen) return absl::CancelledError();
    Bump(frames_in_);
    try {
      handler_->OnFrame(*this, payload);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("the connection handler threw: ", e.what()));
    } catch (...) {
      return absl::InternalError("the connection handler threw");
    }
    return absl::OkStatus();
  });
  if (decoder_.frames() != frames_before) {
    try {
      handler_->OnReadDone(*this);
    } catch (const std::exception& e) {
      if (s.ok()) s = absl::InternalError(absl::StrCat("the connection handler threw: ", e.what()));
    } catch (...) {
      if (s.ok()) s = absl::InternalError("the connection handler threw");
    }
  }
  if (s.ok()) return true;
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    thread_->shared()->oversized_frames.fetch_add(1, std::memory_order_relaxed);
  }
  // A Cancelled from the callback means a Close is already recorded; Fail
  // keeps the first reason.
  Fail(std::move(s), /*socket_dead=*/false);
  return false;
}

void ConnectionImpl::ReadPlain() {
  const uint64_t frames_before = decoder_.frames();
  uint8_t* const buffer = thread_->read_buffer();
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    const ssize_t n = read(fd_.get(), buffer, IoThread::kReadBufferBytes);
    if (n > 0) {
      if (!Deliver(absl::Span<const uint8_t>(buffer, static_cast<size_t>(n)))) return;
      if (static_cast<size_t>(n) < IoThread::kReadBufferBytes) break;  // drained
      continue;
    }
    if (n == 0) {
      Fail(absl::UnavailableError("peer closed the connection"), /*socket_dead=*/false);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Fail(absl::UnavailableError(absl::StrCat("read: ", ErrnoMessage(errno))), /*socket_dead=*/true);
    return;
  }
  AfterRead(frames_before);
}

void ConnectionImpl::AfterRead(uint64_t frames_before) {
  const bool got_frames = decoder_.frames() != frames_before;
  if (got_frames) idle_deadline_ = After(options_.idle_timeout);
  if (!decoder_.mid_frame()) {
    frame_deadline_ = kNever;
  } else if (got_frames || frame_deadline_ == kNever) {
    // The partial frame started in this read.
    frame_deadline_ = After(options_.frame_timeout);
  }
  UpdateDeadline();
}

// ---------------------------------------------------------------------------
// I/O thread: closing.

void ConnectionImpl::Fail(absl::Status reason, bool socket_dead) {
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    if (state_.load(std::memory_order_relaxed) == State::kOpen) {
      close_reason_ = std::move(reason);
      state_.store(State::kClosing, std::memory_order_relaxed);
    }
  }
  BeginClose(socket_dead);
}

void ConnectionImpl::BeginClose(bool socket_dead) {
  if (finished_) return;
  if (!closing_started_) {
    closing_started_ = true;
    frame_deadline_ = kNever;
    idle_deadline_ = kNever;
    close_deadline_ = After(options_.close_timeout);
    SetInterest(interest_ & EPOLLOUT);  // stop reading
    UpdateDeadline();
    RunWaiters(/*closing=*/true);  // Send already refuses: no point waiting
  }
  if (socket_dead || tls_handshaking_) {
    Finish();  // nothing can be written (no TLS session yet to write with)
    return;
  }
  Flush(/*writable=*/false);  // finishes once drained
}

void ConnectionImpl::Finish() {
  if (finished_) return;
  finished_ = true;
  absl::Status reason;
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    state_.store(State::kClosed, std::memory_order_relaxed);
    // Moved out: the connection keeps no reference to the reason's shared
    // representation once OnClosed has run (see docs/net-io.md on TSan).
    reason = std::move(close_reason_);
  }
  std::shared_ptr<ConnectionImpl> keep = self();  // Remove drops the thread's reference
  thread_->Remove(id_, fd_.get());
  registered_ = false;
  {
    // Under write_mu_: a sender writing directly holds it (see "Writing
    // from the sender").
    std::lock_guard<std::mutex> lock(write_mu_);
    direct_open_ = false;
    if (fd_.valid()) {
      shutdown(fd_.get(), SHUT_RDWR);
      fd_.Reset();
    }
  }
  const size_t dropped = DropQueued();
  thread_->shared()->closed.fetch_add(1, std::memory_order_relaxed);
  if (handler_ != nullptr) {
    LogClose(reason, dropped);
    std::shared_ptr<ConnectionHandler> handler = std::move(handler_);
    try {
      handler->OnClosed(*this, reason);
    } catch (const std::exception& e) {
      thread_->shared()->logger->error("{}: OnClosed for {} threw: {}", thread_->shared()->name, peer_, e.what());
    } catch (...) {
      thread_->shared()->logger->error("{}: OnClosed for {} threw", thread_->shared()->name, peer_);
    }
  }
}

void ConnectionImpl::LogClose(const absl::Status& reason, size_t dropped) const {
  const ReactorShared& shared = *thread_->shared();
  const std::string extra = dropped > 0 ? absl::StrCat(" (", dropped, " queued frames dropped)") : "";
  switch (reason.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kCancelled:
      shared.logger->debug("{}: connection with {} closed: {}{}", shared.name, peer_, reason.ToString(), extra);
      break;
    case absl::StatusCode::kUnavailable:
      shared.logger->info("{}: connection with {} closed: {}{}", shared.name, peer_, reason.ToString(), extra);
      break;
    default:
      shared.logger->warn("{}: connection with {} closed: {}{}", shared.name, peer_, reason.ToString(), extra);
      break;
  }
}

// ---------------------------------------------------------------------------
// I/O thread: helpers.

void ConnectionImpl::SetInterest(uint32_t events) {
  if (events == interest_ || !registered_) return;
  if (absl::Status s = thread_->Modify(id_, fd_.get(), events); !s.ok()) {
    thread_->shared()->logger->error("{}: {} for {}", thread_->shared()->name, std::string(s.message()), peer_);
  }
  interest_ = events;
}

Clock::time_point ConnectionImpl::After(absl::Duration d) const {
  // Zero, negative and very long durations mean "no deadline".
  if (d <= absl::ZeroDuration() || d >= absl::Hours(24 * 365)) return kNever;
  return thread_->now() + std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

void ConnectionImpl::UpdateDeadline() {
  Clock::time_point next = kNever;
  if (connecting_) {
    next = connect_deadline_;
  } else if (closing_started_) {
    next = close_deadline_;
  } else {
    next = std::min({frame_deadline_, idle_deadline_, tls_deadline_});
  }
  thread_->SetDeadline(id_, *this, next);
}

}  // namespace troupe::net::internal
