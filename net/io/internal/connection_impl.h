// ConnectionImpl: one TCP connection, owned by one IoThread for life.
//
// States (state_), and who may act in each:
//   kOpen     Send and SendControl queue frames (any thread); the I/O thread
//             reads frames
//             and writes what is queued. Close (any thread) or a cause found
//             by the I/O thread (peer EOF, socket error, limit, timeout,
//             reactor shutdown) moves it to kClosing, recording the reason.
//   kClosing  Send and SendControl refuse (Unavailable). The I/O thread stops reading and
//             writes what is still queued, until the queue is empty, the
//             close timeout passes or the socket fails; then it finishes.
//   kClosed   Finished: the fd is closed, queued frames are dropped, the
//             handler has heard OnClosed (exactly once) and is released.
//
//   kOpen --Close / cause--> kClosing --drained / timeout / error--> kClosed
//
// Before kOpen matters to anyone, a connection made by Reactor::Connect is
// `connecting_` (I/O-thread private): it waits for the socket to become
// writable, then hands itself to the Connect callback.
//
// TLS (ConnectionOptions::tls; connection_tls.cc): the connection holds a
// TlsSession and is `tls_handshaking_` (I/O-thread private) from accept, or
// from the Connect callback, until the TLS handshake is done: events drive
// the handshake, frames sent meanwhile wait in their lanes, and nothing is
// read for the handler. Then OpenSSL reads the socket and decrypts into the
// thread's read buffer, which goes to the frame decoder, and Flush gathers frames into tls_out_
// (up to kTlsChunk bytes) and hands that buffer to SSL_write, which writes
// it as records of up to 16 KiB — the frames are written off (Advance) when
// copied, and the buffer is written out before the next gather. Once the
// handshake is done a sender may write to the session itself (see "Writing
// from the sender"); every call into the session after that holds
// write_mu_, the I/O thread's reads included, since an OpenSSL session
// takes one call at a time. A closing
// connection whose queue is drained sends close_notify before the fd
// closes. A TLS failure (a refused certificate, an alert, a bad record)
// leaves no session to write with: the connection finishes at once. A
// plaintext connection with refuse_tls_peers watches its first three
// bytes: a TLS record there means a peer of the other mode (FailMismatch).
//
// Closing sequence, on the I/O thread:
//   1. Fail(reason) or a posted BeginClose (from Close): the first reason
//      wins; the state becomes kClosing under close_mu_.
//   2. BeginClose: stop reading (EPOLLIN off), arm the close deadline, flush.
//   3. Finish, when the queue is drained, the deadline passes, or the socket
//      is dead: deregister and close the fd, drop what is queued (bytes given
//      back to the bound), count, log a line if the reason is an error, call
//      OnClosed, release the handler (breaking any handler <-> connection
//      reference cycle), remove the connection from its thread.
//
// Outbound path: two lanes, each a Lane (a moodycamel queue, its tickets,
// its byte count and the frames the I/O thread has taken from it):
//   data_     Send; bounded by max_outbound_bytes. A full data lane refuses
//             the Send (ResourceExhausted) and the caller decides.
//   control_  SendControl (replies, heartbeats, down/stop/leave); bounded by
//             max_control_bytes. A full control lane means a peer that does
//             not read: the connection is closed (ResourceExhausted).
//   Send / SendControl (any thread): reserve the frame's bytes against the
//   lane's bound (CAS on the lane's queued_bytes), then, under the lane's
//   mu, copy a small frame into the lane's open batch, or seal the open
//   batch and enqueue a large frame with a ticket of its own (see
//   "Batching"), then set flush_scheduled_ (shared by the lanes); only the
//   call that flips it from false to true posts the connection to its
//   thread's flush list, so a burst of sends wakes the thread once.
//   RunScheduledFlush (I/O thread): clear flush_scheduled_, then Flush.
//   Flush: move everything queued into each lane's pending (Refill: seal
//   the open batch, dequeue in bulk until the queue reads empty, then sort
//   by ticket, see below),
//   gather up to IOV_MAX frames in write order into one sendmsg (a writev
//   with MSG_NOSIGNAL, so a vanished peer is EPIPE, not SIGPIPE), drop
//   written frames (bytes given back to their lane), and on EAGAIN or a short
//   write arm EPOLLOUT and wait; EPOLLOUT resumes the Flush.
//   Write order: the partly written frame, if any (partial_; a frame is
//   never split by another), then every pending control frame, then the data
//   frames. Advance walks the same order. Every Flush refills the control
//   lane first, so a control frame waits behind at most one partly written
//   data frame, never behind the data queued before it; between the lanes
//   there is no other order.
//
// Batching: frames up to kBatchFrameBytes are copied back to back (prefix
// and payload, as on the wire) into the lane's open Batch, or written there
// by their FrameWriter (SendInPlace); an OutFrame's own buffer is freed by
// the sender. A batch is sealed (given a ticket and
// enqueued as one item) when it has no room for the next frame, before a
// large frame is enqueued (so the large one stays behind it), and by
// Refill, so every flush takes what was batched up to then: batching adds
// no wait. A sealed batch is written, advanced and freed as one item whose
// bytes are its frames' (AdvanceLane counts its frames); once written it
// becomes the lane's spare (an atomic pointer: the I/O thread puts it with
// an exchange, a sender under mu takes it with one; kSpareBatches slots),
// so a stream reuses a few buffers per lane instead of allocating.
//
// Writing from the sender: a send that finds the
// connection idle writes its frame itself, on the sending thread, instead
// of waking the I/O thread for it; that wake-up is most of a lone frame's
// latency. Idle means: the frame's lane held nothing before its bytes were
// reserved, the other lane holds nothing, the previous send on the
// connection was at least kDirectAfterNs ago (a stream of sends goes
// through the lanes and is written in bulk, as before), the caller is not
// the I/O thread (its flush is about to run anyway), and, under write_mu_,
// the connection is open for it (direct_open_), the I/O thread has no frame
// partly written and no earlier direct frame is left over. The write is one
// non-blocking send; a frame it writes only in part is left in remainder_
// with its bytes still reserved, and the I/O thread writes the rest before
// anything else (it moves it to the head of its lane as the partial frame).
// With TLS the write is one SSL_write (after the handshake, which opens the
// connection for it); io_partial_ is then "tls_out_ holds bytes the session
// has not taken", set before the gathered frames are written off, and a
// frame the session took only in part (or not at all: it may hold a record
// of it, to be finished by a call with the same bytes) goes, from the first
// byte not taken, into tls_out_ ahead of the next gather.
// A send error leaves the frame to the queue: the I/O thread's own write
// meets the error and closes. Every write to the socket holds write_mu_
// (the I/O thread's sendmsg and the frame accounting after it), and the fd
// is closed under it, so the bytes of two frames never interleave and a
// sender never writes to a closed or reused descriptor. Order: the "lane
// was empty" test is on the lane's reserved bytes, which a frame keeps
// until it is fully written, so a send never overtakes a frame whose send
// happened before it; sends that race are unordered anyway.
//
// Why tickets (each lane on its own): moodycamel keeps one sub-queue per
// producing thread and a bulk dequeue visits them in any order, so without
// help two sends to one lane ordered by happens-before but made from two
// threads (an actor that moved between workers) could be written out of
// order. Each send takes a ticket from its lane's next_ticket before
// enqueueing, so ticket order extends happens-before within the lane. The
// dequeue loop runs until a full pass finds nothing: any frame whose send
// happens-before the send of a frame already taken is then taken too (it was
// visible before that frame was). Sorting the batch by ticket restores send
// order; a later batch only holds frames not ordered before any taken frame.
// The loop is bounded: frames taken still count against their lane's bound
// until written, so producers cannot add more than the bound while it runs.
// The lanes' tickets are unrelated: a control frame is meant to overtake.
//
// Waiting for room (WhenQueuedAtMost): waiters_ is a small list under
// waiters_mu_. A caller checks the condition (closing, or the data lane's
// queued bytes at most the waiter's) and either runs the callback at once or
// adds the waiter, in one critical section. The I/O thread, after each write
// that frees data bytes, takes the waiters whose condition holds under the
// lock and runs them after releasing it; when closing starts it marks the
// list released and runs them all. No callback runs under the lock, so a
// callback may Send, Close or wait again.
//
// Memory ordering:
// - state_: written under close_mu_ (Close, Fail, Finish) with relaxed
//   stores; the mutex orders writers and the reason they record. Send reads
//   it with a relaxed load: it is a gate, nothing is read through it, and
//   coherence makes a Send that happens-after Close see kClosing.
// - Lane::queued_bytes: the sender's CAS adds (relaxed), the I/O thread
//   subtracts (relaxed fetch_sub) when a frame is written or dropped,
//   outbound_bytes() reads the data lane's (relaxed). A count for the bound
//   only; the frames themselves are published by the queue.
// - Lane::next_ticket: relaxed fetch_add by the sender. The modification
//   order of one atomic is consistent with happens-before, which is all the
//   sort needs.
// - Lane::mu orders every push onto the lane and every seal of its open
//   batch: tickets are taken under it, so ticket order is mu's order. A
//   send that finds flush_scheduled_ already true after its push (an
//   acquire load) posts nothing: the I/O thread's exchange(false) that a
//   later flush needs comes before that flush's Refill locks mu, so if the
//   load saw true from before the exchange, the push came before that lock
//   and the Refill takes it.
// - Lane::spares: each slot exchanged with acq_rel by the I/O thread and
//   acquire by the sender, so the batch's reset (size 0) happens before its reuse.
// - flush_scheduled_: a send's exchange(true) is acq_rel: its release half,
//   after the enqueue, pairs with the acquire half of the I/O thread's
//   exchange(false) in RunScheduledFlush, so a Send that finds the flag
//   already true (and posts nothing) has its frame visible to the dequeue
//   that follows that exchange. The I/O thread's exchange(false) is acq_rel
//   too: its release half is what the next Send's acquire reads, so that Send
//   posts again for frames the running dequeue may miss.
// - waiters_mu_ orders the waiter check against the I/O thread's: the I/O
//   thread's fetch_sub on the data lane precedes its critical section, so a
//   caller whose critical section comes later sees the freed bytes in its
//   (relaxed) load, and one whose critical section comes first has its
//   waiter seen. No wake-up is lost. (A failed enqueue also gives bytes back;
//   its waiters run at the next write.)
// - write_mu_ guards direct_open_, io_partial_, remainder_ and the direct_*
//   counters (written under it with a plain load and store), and orders the
//   socket writes. last_send_ns_ is a relaxed hint: a stale value only
//   moves one frame between the two paths.
// - Counters (frames_*, control_frames_out_, bytes_*, writev_calls_):
//   written only by the I/O
//   thread (relaxed load + store, no read-modify-write needed with one
//   writer), read by stats() anywhere (relaxed): statistics only.
//   rejected_sends_ is a relaxed fetch_add by Send threads.
// - Everything else is touched by the I/O thread only.

#ifndef TROUPE_NET_IO_INTERNAL_CONNECTION_IMPL_H_
#define TROUPE_NET_IO_INTERNAL_CONNECTION_IMPL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "concurrentqueue/concurrentqueue.h"
#include "net/io/frame.h"
#include "net/io/internal/io_thread.h"
#include "net/io/internal/socket.h"
#include "net/io/internal/tls_session.h"
#include "net/io/reactor.h"

namespace troupe::net::internal {

// Adds to a counter that only the I/O thread writes: a plain load and store,
// no locked instruction (see "Memory ordering").
inline void Bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// Runs a Connect callback; an exception from it is logged, not let into the
// I/O loop.
void CallDone(Reactor::ConnectFn& done, absl::StatusOr<std::shared_ptr<Connection>> result,
              const ReactorShared& shared);

class ConnectionImpl final : public Connection, public Pollable {
 public:
  ConnectionImpl(std::shared_ptr<IoThread> thread, UniqueFd fd, std::string peer, const ConnectionOptions& options,
                 std::shared_ptr<ConnectionHandler> handler);
  ~ConnectionImpl() override;

  // --- I/O thread: starting. ---
  // An accepted socket: registers it, asks `on_accept` for the handler, and
  // starts reading (or closes at once if on_accept returns none).
  static void StartAccepted(const std::shared_ptr<IoThread>& thread, UniqueFd fd, std::string peer,
                            const ConnectionOptions& options, const Reactor::AcceptFn& on_accept);
  // Connects to `address` and calls `done` once with the outcome.
  static void StartConnect(const std::shared_ptr<IoThread>& thread, const SocketAddress& address,
                           const ConnectionOptions& options, std::shared_ptr<ConnectionHandler> handler,
                           Reactor::ConnectFn done);

  // --- Connection (any thread). ---
  absl::Status Send(OutFrame frame) override;
  absl::Status SendReserved(OutFrame frame) override;
  absl::Status SendControl(OutFrame frame) override;
  absl::Status SendInPlace(FrameWriter& frame) override;
  absl::Status SendReservedInPlace(FrameWriter& frame) override;
  void Close(absl::Status reason) override;
  void SetMaxFrameBytes(size_t bytes) override { decoder_.set_max_payload_bytes(bytes); }
  const std::string& peer() const override { return peer_; }
  const TlsPeer* tls_peer() const override;
  ConnectionStats stats() const override;
  size_t outbound_bytes() const override { return data_.queued_bytes.load(std::memory_order_relaxed); }
  void WhenQueuedAtMost(size_t bytes, absl::AnyInvocable<void() &&> callback) override;

  // --- I/O thread. ---
  void OnEvents(uint32_t events) override;
  void OnTimer() override;
  void OnStop() override;
  // The flush a Send posted.
  void RunScheduledFlush();

 private:
  enum class State : uint8_t { kOpen, kClosing, kClosed };

  // Small frames copied back to back into one buffer (see "Batching").
  struct Batch {
    std::unique_ptr<uint64_t[]> words;  // kBatchBytes
    size_t size = 0;                    // bytes used
    uint64_t frames = 0;
  };

  // One frame, or a batch of them.
  struct Queued {
    uint64_t ticket = 0;
    OutFrame frame;
    std::unique_ptr<Batch> batch;

    absl::Span<const uint8_t> bytes() const {
      if (batch == nullptr) return frame.bytes();
      return {reinterpret_cast<const uint8_t*>(batch->words.get()), batch->size};
    }
    uint64_t frames() const { return batch == nullptr ? 1 : batch->frames; }
  };

  struct Waiter {
    size_t bytes = 0;
    absl::AnyInvocable<void() &&> callback;
  };

  // Written batches a lane keeps for reuse.
  static constexpr size_t kSpareBatches = 4;

  // One outbound lane (see "Outbound path").
  struct Lane {
    // Shared with senders; see "Memory ordering".
    moodycamel::ConcurrentQueue<Queued> queue{size_t{0}};
    std::atomic<size_t> queued_bytes{0};
    std::atomic<uint64_t> next_ticket{0};
    // Every push onto the lane, and the seal of its open batch, holds mu
    // (see "Batching"). A line of their own: the I/O thread writes
    // queued_bytes for every item it writes.
    alignas(64) std::mutex mu;
    std::unique_ptr<Batch> open ABSL_GUARDED_BY(mu);
    // Written batches for the next ones: the I/O thread puts one into an
    // empty slot, a sender under mu takes one (exchanges, no lock on the
    // I/O thread's side). A few, as several batches may be in flight.
    std::array<std::atomic<Batch*>, kSpareBatches> spares{};

    ~Lane() {
      for (std::atomic<Batch*>& spare : spares) delete spare.exchange(nullptr, std::memory_order_acquire);
    }
    // I/O thread only: taken from the queue, sorted by ticket, not yet
    // written from `head` on.
    alignas(64) std::vector<Queued> pending;
    size_t head = 0;

    size_t unwritten() const { return pending.size() - head; }
  };

  // Frames up to this size are copied into the lane's open batch; a batch
  // holds this many bytes.
  static constexpr size_t kBatchFrameBytes = size_t{2} << 10;
  static constexpr size_t kBatchBytes = size_t{16} << 10;
  // A send this long after the previous one on the connection may write
  // its frame itself (see "Writing from the sender"); sends closer together
  // are a stream, written in bulk by the I/O thread.
  static constexpr int64_t kDirectAfterNs = 10'000;
  // last_send_ns_ after a send that found its lane holding frames.
  static constexpr int64_t kStreaming = INT64_MIN;
  // Frames moved from the queue per bulk dequeue call.
  static constexpr size_t kBulk = 256;
  // writev calls per Flush before the connection yields to others.
  static constexpr int kMaxWritevPerFlush = 16;
  // reads per readable event before the connection yields to others.
  static constexpr int kMaxReadsPerEvent = 16;
  // TLS: plaintext bytes gathered per SSL_write, and SSL_write calls (each
  // one record) per Flush.
  static constexpr size_t kTlsChunk = size_t{64} << 10;
  static constexpr int kMaxTlsWritesPerFlush = 64;

  std::shared_ptr<ConnectionImpl> self() {
    return std::static_pointer_cast<ConnectionImpl>(shared_from_this());
  }
  uint64_t id() const { return id_; }

  // Reading.
  void OnReadable();
  void ReadPlain();
  // Hands read bytes to the decoder (and the handler); false if the
  // connection failed.
  bool Deliver(absl::Span<const uint8_t> bytes);
  // After a read: the idle and frame deadlines.
  void AfterRead(uint64_t frames_before);
  // TLS (connection_tls.cc).
  absl::Status StartTls(bool accept);
  void ContinueTlsHandshake();
  void ReadTls();
  void FlushTls(bool writable);
  // A TLS failure: counted (unless the peer just closed), and the
  // connection finishes (no session left to write with).
  void FailTls(absl::Status reason);
  // A peer of the other mode: the mismatch reply, counted, closed.
  void FailMismatch(absl::Status reason);
  // Sending (any thread). Refusals of an empty frame or a closing
  // connection; OK if `frame` may be queued.
  absl::Status CheckSendable(const OutFrame& frame, const char* call) const;
  absl::Status CheckOpen() const;
  // Send and SendInPlace: reserves on the data lane within its bound.
  absl::Status SendData(FrameWriter& frame);
  // SendReserved and SendReservedInPlace.
  absl::Status SendReservedData(FrameWriter& frame);
  // Reserves `size` bytes on `lane` against `limit`; false, reserving
  // nothing, past it. `queued` is left at the count last seen.
  static bool Reserve(Lane& lane, size_t size, size_t limit, size_t& queued);
  // Queues `frame` on `lane` within `limit`, or closes the connection
  // (ResourceExhausted: the peer does not read). `what` names the queue.
  absl::Status SendOrClose(Lane& lane, FrameWriter& frame, size_t limit, const char* what);
  // Queues a frame of `size` bytes (prefix included) reserved on `lane` (a
  // small one written into the open batch), and asks for a flush.
  absl::Status Push(Lane& lane, FrameWriter& frame, size_t size);
  // Queues the lane's open batch, if any; false if the queue is out of
  // memory (the batch stays open).
  bool SealLocked(Lane& lane) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu);
  // I/O thread: frees a written item's buffer, keeping a batch as the
  // lane's spare.
  static void Release(Lane& lane, Queued& item);
  // Writes or queues a frame whose bytes are reserved on `lane`; `queued`
  // is the lane's count before the reservation.
  absl::Status Submit(Lane& lane, FrameWriter& frame, size_t size, size_t queued);
  // Writes `frame` on the sending thread if the connection is idle (see
  // "Writing from the sender"); true if it is written or left for the I/O
  // thread as the remainder, false (the frame untouched) to queue it.
  bool TryWriteDirect(Lane& lane, OutFrame& frame);
  // TLS, I/O thread, under write_mu_, with tls_out_ empty: a direct frame's
  // rest becomes tls_out_. True if that gave data-lane bytes back.
  bool TakeRemainderTls();
  // I/O thread: moves a direct frame's unwritten rest to the head of its
  // lane as the partial frame.
  void TakeRemainder() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Writing. `writable`: called for EPOLLOUT (otherwise a write is skipped
  // while EPOLLOUT is armed: the socket is known to be full).
  void Flush(bool writable);
  // Refills both lanes; false if nothing is left to write (then the lanes
  // are reset, and a closing connection finishes: see AllWritten).
  bool RefillLanes();
  void AllWritten();
  void Refill(Lane& lane);
  // Fills `iov` in write order; returns the count and sets `total` (bytes).
  int Gather(iovec* iov, size_t& total);
  // True if data frames were written off (their bytes freed).
  bool Advance(size_t written);
  // Writes off up to `max_frames` frames of `lane` from its head; returns
  // the bytes of `written` left for the next lane.
  size_t AdvanceLane(Lane& lane, size_t written, size_t max_frames);
  void ScheduleFlush();
  // Waiting for room: runs the waiters whose condition holds; with
  // `closing`, all of them, and later ones run at once.
  void RunWaiters(bool closing);
  void CallWaiter(absl::AnyInvocable<void() &&> callback) const;
  // After a direct write freed data bytes: has the I/O thread check the
  // waiters, if there are any.
  void RunWaitersFromSender();
  // Closing.
  void Fail(absl::Status reason, bool socket_dead);
  void BeginClose(bool socket_dead);
  void Finish();
  size_t DropQueued();
  size_t DropLane(Lane& lane);
  // A plaintext connection, open: senders may write to it themselves.
  void OpenDirect();
  // Connecting.
  void CompleteConnect();
  void FailConnect(absl::Status reason);

  void SetInterest(uint32_t events);
  void UpdateDeadline();
  Clock::time_point After(absl::Duration d) const;
  void LogClose(const absl::Status& reason, size_t dropped) const;

  // Set at construction, read-only after.
  const std::shared_ptr<IoThread> thread_;
  const uint64_t id_;
  const std::string peer_;
  const ConnectionOptions options_;

  // Shared with Send / Close callers; see "Memory ordering" above.
  std::atomic<State> state_{State::kOpen};
  std::mutex close_mu_;
  absl::Status close_reason_ ABSL_GUARDED_BY(close_mu_);
  Lane control_;
  Lane data_;
  std::atomic<bool> flush_scheduled_{false};
  std::atomic<uint64_t> rejected_sends_{0};
  std::mutex waiters_mu_;
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool waiters_released_ ABSL_GUARDED_BY(waiters_mu_) = false;  // closing started
  std::atomic<uint64_t> frames_in_{0}, frames_out_{0}, control_frames_out_{0}, bytes_in_{0}, bytes_out_{0},
      writev_calls_{0};
  // Writing from the sender; see "Writing from the sender".
  std::atomic<int64_t> last_send_ns_{0};
  std::mutex write_mu_;
  bool direct_open_ ABSL_GUARDED_BY(write_mu_) = false;  // plaintext, connected, fd open
  bool io_partial_ ABSL_GUARDED_BY(write_mu_) = false;   // the I/O thread has a frame partly written (TLS: tls_out_ not empty)
  OutFrame remainder_ ABSL_GUARDED_BY(write_mu_);        // a direct frame written in part
  size_t remainder_written_ ABSL_GUARDED_BY(write_mu_) = 0;
  Lane* remainder_lane_ ABSL_GUARDED_BY(write_mu_) = nullptr;
  std::atomic<uint64_t> direct_frames_out_{0}, direct_control_frames_out_{0}, direct_bytes_out_{0},
      direct_writes_{0};

  // I/O thread only.
  UniqueFd fd_;
  std::shared_ptr<ConnectionHandler> handler_;
  Reactor::ConnectFn connect_done_;
  FrameDecoder decoder_;
  Lane* partial_ = nullptr;    // the lane whose head frame is partly written
  size_t head_written_ = 0;    // bytes of partial_->pending[partial_->head] written
  std::vector<Queued> batch_;  // scratch for Refill
  uint32_t interest_ = 0;  // epoll events registered
  bool registered_ = false;
  bool connecting_ = false;
  bool tls_handshaking_ = false;
  bool read_wants_write_ = false;  // TLS: a read wants the socket writable
  bool write_wants_read_ = false;  // TLS: a write wants the socket readable
  bool closing_started_ = false;
  bool finished_ = false;
  Clock::time_point connect_deadline_ = kNever;
  Clock::time_point frame_deadline_ = kNever;
  Clock::time_point idle_deadline_ = kNever;
  Clock::time_point close_deadline_ = kNever;
  Clock::time_point tls_deadline_ = kNever;
  std::unique_ptr<TlsSession> tls_;
  std::vector<uint8_t> tls_out_;  // gathered plaintext not yet taken by SSL_write, from tls_out_head_
  size_t tls_out_head_ = 0;
  uint8_t first_bytes_[3] = {0, 0, 0};  // plaintext: the peer's first bytes
  size_t first_seen_ = 0;
};

}  // namespace troupe::net::internal

#endif  // TROUPE_NET_IO_INTERNAL_CONNECTION_IMPL_H_
