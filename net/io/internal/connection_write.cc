// ConnectionImpl's outbound path: Send, and the I/O thread's flush that
// writes what is queued. Design: connection_impl.h.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/io/internal/connection_impl.h"

namespace troupe::net::internal {

// ---------------------------------------------------------------------------
// Any thread.

absl::Status ConnectionImpl::Send(OutFrame frame) {
  if (frame.empty()) return absl::InvalidArgumentError("Send of an empty OutFrame (use OutFrame::WithPayload)");
  // Relaxed: a gate only, see "Memory ordering".
  if (state_.load(std::memory_order_relaxed) != State::kOpen) {
    return absl::UnavailableError(absl::StrCat("connection to ", peer_, " is closed"));
  }
  const size_t size = frame.bytes().size();
  const size_t limit = options_.max_outbound_bytes;
  size_t queued = queued_bytes_.load(std::memory_order_relaxed);
  // Bounded in practice: it retries only while other Sends or the I/O thread
  // change the count between the load and the CAS.
  do {
    if (size > limit || queued > limit - size) {
      rejected_sends_.fetch_add(1, std::memory_order_relaxed);
      thread_->shared()->rejected_sends.fetch_add(1, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(absl::StrCat("outbound queue to ", peer_, " is full: ", queued,
                                                       " bytes queued, frame of ", size, " bytes, limit ", limit,
                                                       " bytes (the peer reads too slowly)"));
    }
  } while (!queued_bytes_.compare_exchange_weak(queued, queued + size, std::memory_order_relaxed,
                                                std::memory_order_relaxed));
  Queued item{next_ticket_.fetch_add(1, std::memory_order_relaxed), std::move(frame)};
  if (!queue_.enqueue(std::move(item))) {
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat("outbound queue to ", peer_, ": out of memory"));
  }
  // acq_rel: see "Memory ordering" (pairs with RunScheduledFlush's exchange).
  if (!flush_scheduled_.exchange(true, std::memory_order_acq_rel)) thread_->PostFlush(self());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// I/O thread: writing.

void ConnectionImpl::RunScheduledFlush() {
  // acq_rel: see "Memory ordering" (pairs with Send's exchange).
  flush_scheduled_.exchange(false, std::memory_order_acq_rel);
  if (finished_) {
    DropQueued();  // frames of Sends that raced with the close
    return;
  }
  Flush(/*writable=*/false);
}

void ConnectionImpl::ScheduleFlush() {
  if (!flush_scheduled_.exchange(true, std::memory_order_acq_rel)) thread_->PostFlush(self());
}

void ConnectionImpl::Refill() {
  // Until a full pass finds nothing: see "Why tickets" in the header.
  batch_.clear();
  for (;;) {
    const size_t got = queue_.try_dequeue_bulk(std::back_inserter(batch_), kBulk);
    if (got == 0) break;
  }
  if (batch_.empty()) return;
  auto by_ticket = [](const Queued& a, const Queued& b) { return a.ticket < b.ticket; };
  if (!std::is_sorted(batch_.begin(), batch_.end(), by_ticket)) std::sort(batch_.begin(), batch_.end(), by_ticket);
  if (pending_head_ == pending_.size()) {
    pending_.clear();
    pending_head_ = 0;
    pending_.swap(batch_);
  } else {
    std::move(batch_.begin(), batch_.end(), std::back_inserter(pending_));
    batch_.clear();
  }
}

void ConnectionImpl::Advance(size_t written) {
  Bump(bytes_out_, written);
  while (written > 0) {
    Queued& head = pending_[pending_head_];
    const size_t size = head.frame.bytes().size();
    const size_t left = size - head_written_;
    if (written < left) {
      head_written_ += written;
      return;
    }
    written -= left;
    head_written_ = 0;
    head.frame = OutFrame();  // frees the buffer now
    ++pending_head_;
    Bump(frames_out_);
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
  }
}

void ConnectionImpl::Flush(bool writable) {
  if (finished_ || connecting_) return;
  if (!writable && (interest_ & EPOLLOUT) != 0) return;  // the socket is full; EPOLLOUT resumes
  iovec* const iov = thread_->iov();
  for (int round = 0; round < kMaxWritevPerFlush; ++round) {
    if (pending_.size() - pending_head_ < static_cast<size_t>(IoThread::kMaxIov)) Refill();
    if (pending_head_ == pending_.size()) {
      // Everything is written.
      pending_.clear();
      pending_head_ = 0;
      if (pending_.capacity() > 4 * kBulk) pending_.shrink_to_fit();
      if (closing_started_) {
        Finish();
      } else if ((interest_ & EPOLLOUT) != 0) {
        SetInterest(interest_ & ~EPOLLOUT);
      }
      return;
    }
    int count = 0;
    size_t total = 0;
    for (size_t i = pending_head_; i < pending_.size() && count < IoThread::kMaxIov; ++i, ++count) {
      absl::Span<const uint8_t> bytes = pending_[i].frame.bytes();
      if (i == pending_head_) bytes.remove_prefix(head_written_);
      iov[count].iov_base = const_cast<uint8_t*>(bytes.data());
      iov[count].iov_len = bytes.size();
      total += bytes.size();
    }
    // writev with flags: MSG_NOSIGNAL turns a write to a peer that has gone
    // into EPIPE instead of a process-killing SIGPIPE.
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
    Bump(writev_calls_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        SetInterest(interest_ | EPOLLOUT);
        return;
      }
      Fail(absl::UnavailableError(absl::StrCat("write: ", ErrnoMessage(errno))), /*socket_dead=*/true);
      return;
    }
    Advance(static_cast<size_t>(n));
    if (static_cast<size_t>(n) < total) {
      // The socket buffer is full: wait for room instead of a writev that
      // would fail with EAGAIN.
      SetInterest(interest_ | EPOLLOUT);
      return;
    }
  }
  // More to write after this many calls: let other connections run first.
  ScheduleFlush();
}

size_t ConnectionImpl::DropQueued() {
  size_t dropped = 0;
  for (size_t i = pending_head_; i < pending_.size(); ++i) {
    queued_bytes_.fetch_sub(pending_[i].frame.bytes().size(), std::memory_order_relaxed);
    ++dropped;
  }
  pending_.clear();
  pending_.shrink_to_fit();
  pending_head_ = 0;
  head_written_ = 0;
  // Bounded: producers see kClosed and queue nothing more, except Sends that
  // passed the state check before it, at most one frame each.
  Queued item;
  while (queue_.try_dequeue(item)) {
    queued_bytes_.fetch_sub(item.frame.bytes().size(), std::memory_order_relaxed);
    ++dropped;
  }
  return dropped;
}

}  // namespace troupe::net::internal
