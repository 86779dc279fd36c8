// ConnectionImpl's outbound path: Send and SendControl, and the I/O thread's
// flush that writes what the two lanes hold. Design: connection_impl.h.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/io/internal/connection_impl.h"

namespace troupe::net::internal {

// ---------------------------------------------------------------------------
// Any thread.

absl::Status ConnectionImpl::CheckSendable(const OutFrame& frame, const char* call) const {
  if (frame.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(call, " of an empty OutFrame (use OutFrame::WithPayload)"));
  }
  return CheckOpen();
}

absl::Status ConnectionImpl::CheckOpen() const {
  // Relaxed: a gate only, see "Memory ordering".
  if (state_.load(std::memory_order_relaxed) != State::kOpen) {
    return absl::UnavailableError(absl::StrCat("connection to ", peer_, " is closed"));
  }
  return absl::OkStatus();
}

bool ConnectionImpl::Reserve(Lane& lane, size_t size, size_t limit, size_t& queued) {
  queued = lane.queued_bytes.load(std::memory_order_relaxed);
  // Bounded in practice: it retries only while other senders or the I/O
  // thread change the count between the load and the CAS.
  do {
    if (size > limit || queued > limit - size) return false;
  } while (!lane.queued_bytes.compare_exchange_weak(queued, queued + size, std::memory_order_relaxed,
                                                    std::memory_order_relaxed));
  return true;
}

absl::Status ConnectionImpl::Push(Lane& lane, FrameWriter& frame, size_t size) {
  OutFrame own;  // a large frame, queued by itself
  if (size > kBatchFrameBytes) own = frame.TakeOutFrame();
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    if (size <= kBatchFrameBytes) {
      // No room: sealed, and a new batch below (if the seal fails, the room
      // check below refuses the frame).
      if (lane.open != nullptr && kBatchBytes - lane.open->size < size) (void)SealLocked(lane);
      if (lane.open == nullptr) {
        // acquire: the I/O thread's reset of the spare happens before its reuse.
        for (std::atomic<Batch*>& spare : lane.spares) {
          if (spare.load(std::memory_order_relaxed) == nullptr) continue;
          lane.open.reset(spare.exchange(nullptr, std::memory_order_acquire));
          if (lane.open != nullptr) break;
        }
        if (lane.open == nullptr) {
          lane.open = std::make_unique<Batch>();
          lane.open->words = std::make_unique_for_overwrite<uint64_t[]>(kBatchBytes / 8);
        }
      }
      if (kBatchBytes - lane.open->size >= size) {
        uint8_t* const at = reinterpret_cast<uint8_t*>(lane.open->words.get()) + lane.open->size;
        WriteFramePrefix(at, size - kFramePrefixBytes);
        frame.Write(at + kFramePrefixBytes);
        lane.open->size += size;
        ++lane.open->frames;
        queued = true;
      }
    } else if (SealLocked(lane)) {
      // Behind the frames batched before it.
      queued = lane.queue.enqueue(
          Queued{lane.next_ticket.fetch_add(1, std::memory_order_relaxed), std::move(own), nullptr});
    }
  }
  if (!queued) {
    lane.queued_bytes.fetch_sub(size, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat("outbound queue to ", peer_, ": out of memory"));
  }
  // A load first: see "Memory ordering" on why a flag already set needs no post.
  if (!flush_scheduled_.load(std::memory_order_acquire)) ScheduleFlush();
  return absl::OkStatus();
}

bool ConnectionImpl::SealLocked(Lane& lane) {
  if (lane.open == nullptr) return true;
  Queued item;
  item.ticket = lane.next_ticket.fetch_add(1, std::memory_order_relaxed);
  item.batch = std::move(lane.open);
  if (lane.queue.enqueue(std::move(item))) return true;
  lane.open = std::move(item.batch);  // moodycamel leaves the item untouched when it fails
  return false;
}

void ConnectionImpl::Release(Lane& lane, Queued& item) {
  if (item.batch == nullptr) {
    item.frame = OutFrame();  // frees the buffer now
    return;
  }
  item.batch->size = 0;
  item.batch->frames = 0;
  // release: pairs with the sender's acquire exchange.
  for (std::atomic<Batch*>& spare : lane.spares) {
    Batch* empty = nullptr;
    if (spare.compare_exchange_strong(empty, item.batch.get(), std::memory_order_acq_rel, std::memory_order_relaxed)) {
      (void)item.batch.release();
      return;
    }
  }
  item.batch.reset();  // every slot holds one
}

absl::Status ConnectionImpl::Submit(Lane& lane, FrameWriter& frame, size_t size, size_t queued) {
  // Relaxed: a hint (see "Memory ordering"); the clock is the vDSO's.
  const int64_t previous = last_send_ns_.load(std::memory_order_relaxed);
  if (queued != 0) {
    // A stream: no clock read; the next send that finds the lane empty
    // counts this one as just before it.
    if (previous != kStreaming) last_send_ns_.store(kStreaming, std::memory_order_relaxed);
    return Push(lane, frame, size);
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  last_send_ns_.store(now, std::memory_order_relaxed);
  if (previous == kStreaming || now - previous < kDirectAfterNs) return Push(lane, frame, size);
  OutFrame own = frame.TakeOutFrame();
  if (TryWriteDirect(lane, own)) return absl::OkStatus();
  OutFrameWriter rest(own);
  return Push(lane, rest, size);
}

bool ConnectionImpl::TryWriteDirect(Lane& lane, OutFrame& frame) {
  Lane& other = &lane == &data_ ? control_ : data_;
  if (other.queued_bytes.load(std::memory_order_relaxed) != 0 || thread_->OnThisThread()) return false;
  std::unique_lock<std::mutex> lock(write_mu_, std::try_to_lock);
  if (!lock.owns_lock() || !direct_open_ || io_partial_ || !remainder_.empty()) return false;
  const absl::Span<const uint8_t> bytes = frame.bytes();
  size_t written = 0;
  Bump(direct_writes_);
  if (tls_ != nullptr) {
    // The session's socket is non-blocking: a full one is "taken 0".
    absl::StatusOr<size_t> n = tls_->Write(bytes.data(), bytes.size());
    if (!n.ok()) return false;  // the I/O thread's write meets the failure
    written = *n;
  } else {
    ssize_t n = send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;  // the I/O thread meets it
      n = 0;
    }
    written = static_cast<size_t>(n);
  }
  Bump(direct_bytes_out_, written);
  if (written == bytes.size()) {
    Bump(direct_frames_out_);
    if (&lane == &control_) Bump(direct_control_frames_out_);
    lane.queued_bytes.fetch_sub(bytes.size(), std::memory_order_relaxed);
    lock.unlock();
    frame = OutFrame();  // freed here, on the thread that made it
    if (&lane == &data_) RunWaitersFromSender();
    return true;
  }
  remainder_ = std::move(frame);
  remainder_written_ = written;
  remainder_lane_ = &lane;
  lock.unlock();
  ScheduleFlush();
  return true;
}

absl::Status ConnectionImpl::Send(OutFrame frame) {
  if (absl::Status s = CheckSendable(frame, "Send"); !s.ok()) return s;
  OutFrameWriter writer(frame);
  return SendData(writer);
}

absl::Status ConnectionImpl::SendInPlace(FrameWriter& frame) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return SendData(frame);
}

absl::Status ConnectionImpl::SendData(FrameWriter& frame) {
  const size_t size = kFramePrefixBytes + frame.payload_size();
  const size_t limit = options_.max_outbound_bytes;
  size_t queued = 0;
  if (!Reserve(data_, size, limit, queued)) {
    rejected_sends_.fetch_add(1, std::memory_order_relaxed);
    thread_->shared()->rejected_sends.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat("outbound queue to ", peer_, " is full: ", queued,
                                                     " bytes queued, frame of ", size, " bytes, limit ", limit,
                                                     " bytes (the peer reads too slowly)"));
  }
  return Submit(data_, frame, size, queued);
}

absl::Status ConnectionImpl::SendOrClose(Lane& lane, FrameWriter& frame, size_t limit, const char* what) {
  const size_t size = kFramePrefixBytes + frame.payload_size();
  size_t queued = 0;
  if (!Reserve(lane, size, limit, queued)) {
    const std::string message =
        absl::StrCat(what, " queue to ", peer_, " is full: ", queued, " bytes queued, frame of ", size,
                     " bytes, limit ", limit, " bytes (the peer does not read)");
    // Two statuses, not one copied: the close reason goes to the I/O thread
    // (see docs/net-io.md on TSan).
    Close(absl::ResourceExhaustedError(message));
    return absl::ResourceExhaustedError(message);
  }
  return Submit(lane, frame, size, queued);
}

absl::Status ConnectionImpl::SendReserved(OutFrame frame) {
  if (absl::Status s = CheckSendable(frame, "SendReserved"); !s.ok()) return s;
  OutFrameWriter writer(frame);
  return SendReservedData(writer);
}

absl::Status ConnectionImpl::SendReservedInPlace(FrameWriter& frame) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return SendReservedData(frame);
}

absl::Status ConnectionImpl::SendReservedData(FrameWriter& frame) {
  return SendOrClose(data_, frame, options_.max_outbound_bytes + options_.max_control_bytes, "outbound");
}

absl::Status ConnectionImpl::SendControl(OutFrame frame) {
  if (absl::Status s = CheckSendable(frame, "SendControl"); !s.ok()) return s;
  OutFrameWriter writer(frame);
  return SendOrClose(control_, writer, options_.max_control_bytes, "control");
}

void ConnectionImpl::WhenQueuedAtMost(size_t bytes, absl::AnyInvocable<void() &&> callback) {
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    // Checked under the lock: see "Waiting for room" and "Memory ordering".
    const bool now = waiters_released_ || state_.load(std::memory_order_relaxed) != State::kOpen ||
                     data_.queued_bytes.load(std::memory_order_relaxed) <= bytes;
    if (!now) {
      waiters_.push_back(Waiter{bytes, std::move(callback)});
      return;
    }
  }
  CallWaiter(std::move(callback));
}

void ConnectionImpl::RunWaitersFromSender() {
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (waiters_.empty()) return;
  }
  // Waiters run on the I/O thread (see WhenQueuedAtMost).
  thread_->Post([self = self()]() { self->RunWaiters(/*closing=*/false); });
}

void ConnectionImpl::CallWaiter(absl::AnyInvocable<void() &&> callback) const {
  const ReactorShared& shared = *thread_->shared();
  try {
    std::move(callback)();
  } catch (const std::exception& e) {
    shared.logger->error("{}: WhenQueuedAtMost callback for {} threw: {}", shared.name, peer_, e.what());
  } catch (...) {
    shared.logger->error("{}: WhenQueuedAtMost callback for {} threw", shared.name, peer_);
  }
}

// ---------------------------------------------------------------------------
// I/O thread: writing.

void ConnectionImpl::RunWaiters(bool closing) {
  std::vector<absl::AnyInvocable<void() &&>> ready;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (closing) waiters_released_ = true;
    const size_t queued = data_.queued_bytes.load(std::memory_order_relaxed);
    auto kept = waiters_.begin();
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (closing || queued <= it->bytes) {
        ready.push_back(std::move(it->callback));
      } else {
        if (kept != it) *kept = std::move(*it);
        ++kept;
      }
    }
    waiters_.erase(kept, waiters_.end());
  }
  // Outside the lock: a callback may Send or wait again.
  for (auto& callback : ready) CallWaiter(std::move(callback));
}

void ConnectionImpl::RunScheduledFlush() {
  // acq_rel: see "Memory ordering" (pairs with the exchange in ScheduleFlush).
  flush_scheduled_.exchange(false, std::memory_order_acq_rel);
  if (finished_) {
    DropQueued();  // frames of sends that raced with the close
    return;
  }
  Flush(/*writable=*/false);
}

void ConnectionImpl::ScheduleFlush() {
  // acq_rel: see "Memory ordering" (pairs with RunScheduledFlush's exchange).
  if (!flush_scheduled_.exchange(true, std::memory_order_acq_rel)) thread_->PostFlush(self());
}

void ConnectionImpl::Refill(Lane& lane) {
  {
    // What was batched since the last refill goes out now (see "Batching").
    std::lock_guard<std::mutex> lock(lane.mu);
    (void)SealLocked(lane);  // out of memory: it stays open for the next refill
  }
  // Until a full pass finds nothing: see "Why tickets" in the header.
  batch_.clear();
  for (;;) {
    const size_t got = lane.queue.try_dequeue_bulk(std::back_inserter(batch_), kBulk);
    if (got == 0) break;
  }
  if (batch_.empty()) return;
  auto by_ticket = [](const Queued& a, const Queued& b) { return a.ticket < b.ticket; };
  if (!std::is_sorted(batch_.begin(), batch_.end(), by_ticket)) std::sort(batch_.begin(), batch_.end(), by_ticket);
  if (lane.unwritten() == 0) {
    lane.pending.clear();
    lane.head = 0;
    lane.pending.swap(batch_);
  } else {
    std::move(batch_.begin(), batch_.end(), std::back_inserter(lane.pending));
    batch_.clear();
  }
}

int ConnectionImpl::Gather(iovec* iov, size_t& total) {
  int count = 0;
  total = 0;
  auto add = [&](Lane& lane, size_t from, size_t to) {
    for (size_t i = from; i < to && count < IoThread::kMaxIov; ++i, ++count) {
      absl::Span<const uint8_t> bytes = lane.pending[i].bytes();
      if (&lane == partial_ && i == lane.head) bytes.remove_prefix(head_written_);
      iov[count].iov_base = const_cast<uint8_t*>(bytes.data());
      iov[count].iov_len = bytes.size();
      total += bytes.size();
    }
  };
  // The write order (see "Outbound path"); Advance walks the same.
  const size_t data_from = partial_ == &data_ ? data_.head + 1 : data_.head;
  if (partial_ == &data_) add(data_, data_.head, data_from);
  add(control_, control_.head, control_.pending.size());
  add(data_, data_from, data_.pending.size());
  return count;
}

size_t ConnectionImpl::AdvanceLane(Lane& lane, size_t written, size_t max_frames) {
  for (; written > 0 && max_frames > 0 && lane.head < lane.pending.size(); --max_frames) {
    Queued& head = lane.pending[lane.head];
    const size_t size = head.bytes().size();
    const size_t done = partial_ == &lane ? head_written_ : 0;
    if (written < size - done) {
      partial_ = &lane;
      head_written_ = done + written;
      return 0;
    }
    written -= size - done;
    partial_ = nullptr;
    head_written_ = 0;
    const uint64_t frames = head.frames();
    Release(lane, head);
    ++lane.head;
    Bump(frames_out_, frames);
    if (&lane == &control_) Bump(control_frames_out_, frames);
    lane.queued_bytes.fetch_sub(size, std::memory_order_relaxed);
  }
  return written;
}

bool ConnectionImpl::Advance(size_t written) {
  Bump(bytes_out_, written);
  const size_t data_head = data_.head;
  if (partial_ == &data_) written = AdvanceLane(data_, written, 1);
  written = AdvanceLane(control_, written, control_.unwritten());
  AdvanceLane(data_, written, data_.unwritten());
  return data_.head != data_head;
}

bool ConnectionImpl::TakeRemainderTls() {
  if (remainder_.empty()) return false;
  const absl::Span<const uint8_t> rest = remainder_.bytes().subspan(remainder_written_);
  tls_out_.assign(rest.begin(), rest.end());
  tls_out_head_ = 0;
  io_partial_ = true;  // before the bytes are given back: a sender must not overtake them
  Lane& lane = *remainder_lane_;
  lane.queued_bytes.fetch_sub(remainder_.bytes().size(), std::memory_order_relaxed);
  remainder_ = OutFrame();
  remainder_written_ = 0;
  remainder_lane_ = nullptr;
  return &lane == &data_;
}

void ConnectionImpl::TakeRemainder() {
  if (remainder_.empty()) return;
  Lane& lane = *remainder_lane_;
  // Nothing of the lane is partly written (a direct write needs that), so
  // the rest goes first: the head of its lane, as the partial frame.
  lane.pending.insert(lane.pending.begin() + static_cast<std::ptrdiff_t>(lane.head),
                      Queued{0, std::move(remainder_), nullptr});
  remainder_ = OutFrame();
  partial_ = &lane;
  head_written_ = remainder_written_;
  remainder_written_ = 0;
  remainder_lane_ = nullptr;
  io_partial_ = true;
}

bool ConnectionImpl::RefillLanes() {
  // Control first: frames sent to it since the last write go out ahead of
  // every data frame not yet begun.
  if (control_.unwritten() < static_cast<size_t>(IoThread::kMaxIov)) Refill(control_);
  if (data_.unwritten() < static_cast<size_t>(IoThread::kMaxIov)) Refill(data_);
  if (control_.unwritten() != 0 || data_.unwritten() != 0) return true;
  for (Lane* lane : {&control_, &data_}) {
    lane->pending.clear();
    lane->head = 0;
    if (lane->pending.capacity() > 4 * kBulk) lane->pending.shrink_to_fit();
  }
  return false;
}

void ConnectionImpl::AllWritten() {
  if (closing_started_) {
    if (tls_ != nullptr) {
      std::lock_guard<std::mutex> lock(write_mu_);
      tls_->Shutdown();  // close_notify
    }
    Finish();
  } else if ((interest_ & EPOLLOUT) != 0) {
    SetInterest(interest_ & ~EPOLLOUT);
  }
}

void ConnectionImpl::Flush(bool writable) {
  if (finished_ || connecting_ || tls_handshaking_) return;  // with TLS, frames wait for its handshake
  if (tls_ != nullptr) {
    FlushTls(writable);
    return;
  }
  if (!writable && (interest_ & EPOLLOUT) != 0) return;  // the socket is full; EPOLLOUT resumes
  iovec* const iov = thread_->iov();
  for (int round = 0; round < kMaxWritevPerFlush; ++round) {
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      TakeRemainder();
    }
    if (!RefillLanes()) {
      AllWritten();
      return;
    }
    size_t total = 0;
    const int count = Gather(iov, total);
    // writev with flags: MSG_NOSIGNAL turns a write to a peer that has gone
    // into EPIPE instead of a process-killing SIGPIPE.
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = 0;
    int error = 0;
    bool freed = false;
    {
      // With the accounting, so that a sender sees a partly written frame
      // (see "Writing from the sender").
      std::lock_guard<std::mutex> lock(write_mu_);
      n = sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
      error = errno;
      if (n > 0) freed = Advance(static_cast<size_t>(n));
      io_partial_ = partial_ != nullptr;
    }
    Bump(writev_calls_);
    if (n < 0) {
      if (error == EINTR) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        SetInterest(interest_ | EPOLLOUT);
        return;
      }
      Fail(absl::UnavailableError(absl::StrCat("write: ", ErrnoMessage(error))), /*socket_dead=*/true);
      return;
    }
    if (freed) RunWaiters(/*closing=*/false);
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

// ---------------------------------------------------------------------------
// I/O thread: closing.

size_t ConnectionImpl::DropLane(Lane& lane) {
  size_t dropped = 0;
  for (size_t i = lane.head; i < lane.pending.size(); ++i) {
    lane.queued_bytes.fetch_sub(lane.pending[i].bytes().size(), std::memory_order_relaxed);
    dropped += lane.pending[i].frames();
  }
  lane.pending.clear();
  lane.pending.shrink_to_fit();
  lane.head = 0;
  std::unique_ptr<Batch> open;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    open = std::move(lane.open);
  }
  for (std::atomic<Batch*>& spare : lane.spares) delete spare.exchange(nullptr, std::memory_order_acq_rel);
  if (open != nullptr) {
    lane.queued_bytes.fetch_sub(open->size, std::memory_order_relaxed);
    dropped += open->frames;
  }
  // Bounded: senders see kClosed and queue nothing more, except sends that
  // passed the state check before it, at most one frame each.
  Queued item;
  while (lane.queue.try_dequeue(item)) {
    lane.queued_bytes.fetch_sub(item.bytes().size(), std::memory_order_relaxed);
    dropped += item.frames();
  }
  return dropped;
}

size_t ConnectionImpl::DropQueued() {
  partial_ = nullptr;
  head_written_ = 0;
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    io_partial_ = false;
    if (!remainder_.empty()) {
      remainder_lane_->queued_bytes.fetch_sub(remainder_.bytes().size(), std::memory_order_relaxed);
      remainder_ = OutFrame();
      remainder_lane_ = nullptr;
      remainder_written_ = 0;
      ++dropped;
    }
  }
  return dropped + DropLane(control_) + DropLane(data_);
}

}  // namespace troupe::net::internal
