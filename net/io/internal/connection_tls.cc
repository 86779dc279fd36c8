// ConnectionImpl's TLS path: the handshake driven by the connection's
// events, reading through the session, and the gathered writes handed to
// SSL_write. Design: connection_impl.h ("TLS").

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/io/internal/connection_impl.h"

namespace troupe::net::internal {

const TlsPeer* ConnectionImpl::tls_peer() const {
  return tls_ != nullptr && tls_->handshake_done() ? &tls_->peer() : nullptr;
}

absl::Status ConnectionImpl::StartTls(bool accept) {
  std::shared_ptr<const TlsContext> context = options_.tls->Current();
  if (context == nullptr) return absl::FailedPreconditionError("TLS: no credentials loaded");
  absl::StatusOr<std::unique_ptr<TlsSession>> session = TlsSession::Create(std::move(context), fd_.get(), accept);
  if (!session.ok()) return session.status();
  tls_ = *std::move(session);
  tls_handshaking_ = true;
  tls_deadline_ = After(options_.tls_handshake_timeout);
  return absl::OkStatus();
}

void ConnectionImpl::ContinueTlsHandshake() {
  if (absl::Status s = tls_->Handshake(); !s.ok()) {
    FailTls(std::move(s));
    return;
  }
  if (!tls_->handshake_done()) {
    SetInterest(tls_->want() == TlsSession::Want::kWrite ? EPOLLIN | EPOLLOUT : EPOLLIN);
    return;
  }
  tls_handshaking_ = false;
  tls_deadline_ = kNever;
  OpenDirect();  // from now on every session call holds write_mu_
  SetInterest(EPOLLIN);
  UpdateDeadline();
  Flush(/*writable=*/false);  // frames sent during the handshake
  // Records that came with the handshake's last flight are read now: the
  // socket may hold nothing more to wake epoll for them.
  if (!finished_ && !closing_started_) OnReadable();
}

void ConnectionImpl::ReadTls() {
  const uint64_t frames_before = decoder_.frames();
  uint8_t* const buffer = thread_->read_buffer();
  constexpr int kMaxReads = 4 * kMaxReadsPerEvent;
  int reads = 0;
  read_wants_write_ = false;
  for (; reads < kMaxReads; ++reads) {
    absl::StatusOr<size_t> n;
    bool wants_write = false, drained = false;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      n = tls_->Read(buffer, IoThread::kReadBufferBytes);
      wants_write = tls_->want() == TlsSession::Want::kWrite;
      drained = tls_->socket_drained() && !tls_->HasBufferedInput();
    }
    if (!n.ok()) {
      if (absl::IsUnavailable(n.status())) {
        Fail(n.status(), /*socket_dead=*/false);  // the peer closed; what is queued may still go out
      } else {
        FailTls(n.status());
      }
      return;
    }
    if (*n == 0) {
      if (wants_write) {
        read_wants_write_ = true;
        SetInterest(interest_ | EPOLLOUT);
      }
      break;
    }
    if (!Deliver(absl::Span<const uint8_t>(buffer, *n))) return;
    // The socket is empty and nothing waits in the session: another Read
    // would only cost a read that finds EAGAIN.
    if (drained) break;
  }
  // Stopped at the cap with decrypted bytes still in the session: epoll
  // will not report them, so come back after the other connections.
  bool buffered = false;
  if (reads == kMaxReads) {
    std::lock_guard<std::mutex> lock(write_mu_);
    buffered = tls_->HasBufferedInput();
  }
  if (buffered) {
    thread_->Post([self = self()]() {
      if (!self->finished_ && !self->closing_started_) self->OnReadable();
    });
  }
  AfterRead(frames_before);
  if (write_wants_read_ && !finished_) {
    write_wants_read_ = false;
    Flush(/*writable=*/true);
  }
}

void ConnectionImpl::FlushTls(bool writable) {
  // The socket is full (EPOLLOUT resumes), or the session waits for the
  // peer's bytes (the next read resumes).
  if (!writable && (write_wants_read_ || (interest_ & EPOLLOUT) != 0)) return;
  write_wants_read_ = false;
  iovec* const iov = thread_->iov();
  for (int round = 0; round < kMaxTlsWritesPerFlush; ++round) {
    if (tls_out_head_ == tls_out_.size()) {
      bool freed = false;
      {
        std::lock_guard<std::mutex> lock(write_mu_);
        freed = TakeRemainderTls();
      }
      if (freed) RunWaiters(/*closing=*/false);
    }
    if (tls_out_head_ == tls_out_.size()) {
      if (!RefillLanes()) {
        tls_out_.clear();
        tls_out_head_ = 0;
        AllWritten();
        return;
      }
      // Gather the next frames, in write order, into one buffer for
      // SSL_write; they are written off as soon as they are copied.
      size_t total = 0;
      const int count = Gather(iov, total);
      const size_t take = std::min(total, kTlsChunk);
      tls_out_.resize(take);
      size_t copied = 0;
      for (int i = 0; i < count && copied < take; ++i) {
        const size_t part = std::min(iov[i].iov_len, take - copied);
        std::memcpy(tls_out_.data() + copied, iov[i].iov_base, part);
        copied += part;
      }
      tls_out_head_ = 0;
      {
        // Before the frames are written off: a sender that then finds the
        // lanes empty must not write ahead of them.
        std::lock_guard<std::mutex> lock(write_mu_);
        io_partial_ = true;
      }
      if (Advance(copied)) RunWaiters(/*closing=*/false);
    }
    absl::StatusOr<size_t> n;
    bool wants_read = false;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      n = tls_->Write(tls_out_.data() + tls_out_head_, tls_out_.size() - tls_out_head_);
      wants_read = tls_->want() == TlsSession::Want::kRead;
      if (n.ok()) io_partial_ = tls_out_head_ + *n != tls_out_.size();
    }
    Bump(writev_calls_);
    if (!n.ok()) {
      if (absl::IsUnavailable(n.status())) {
        Fail(n.status(), /*socket_dead=*/true);
      } else {
        FailTls(n.status());
      }
      return;
    }
    if (*n == 0) {
      if (wants_read) {
        write_wants_read_ = true;  // EPOLLIN is on while open: the next read resumes
      } else {
        SetInterest(interest_ | EPOLLOUT);
      }
      return;
    }
    tls_out_head_ += *n;
  }
  ScheduleFlush();  // more to write: let other connections run first
}

void ConnectionImpl::FailTls(absl::Status reason) {
  ReactorShared& shared = *thread_->shared();
  // A peer that closed or reset is a lost connection, not a TLS failure
  // (a port probe, a node giving up its attempt).
  bool received_data = false, plaintext_peer = false;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    received_data = tls_->received_data();
    plaintext_peer = tls_->plaintext_peer();
  }
  if (!absl::IsUnavailable(reason)) {
    (received_data ? shared.tls_errors : shared.tls_refused).fetch_add(1, std::memory_order_relaxed);
  }
  if (!plaintext_peer) {
    Fail(std::move(reason), /*socket_dead=*/true);
    return;
  }
  // A plaintext peer (or one that gave up on TLS) hears why in its framing.
  FailMismatch(std::move(reason));
}

void ConnectionImpl::FailMismatch(absl::Status reason) {
  if (tls_ == nullptr) thread_->shared()->tls_refused.fetch_add(1, std::memory_order_relaxed);
  if (!options_.mode_mismatch_reply.empty()) {
    // One plaintext frame, straight to the socket, best effort: the
    // connection ends either way.
    const std::string& payload = options_.mode_mismatch_reply;
    const OutFrame frame = OutFrame::Copy(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    (void)send(fd_.get(), frame.bytes().data(), frame.bytes().size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  Fail(std::move(reason), /*socket_dead=*/true);
}

}  // namespace troupe::net::internal
