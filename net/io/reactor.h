// Reactor: epoll I/O threads that own TCP connections, read length-prefixed
// frames off them and write queued frames to them. The node layer
// (net/node.h) codes against this API. Design and figures: docs/net-io.md.
//
// Frames on the wire: a 4-byte little-endian payload length, then the
// payload (see frame.h). A length over the connection's frame limit
// (ConnectionOptions::max_frame_bytes at first, then SetMaxFrameBytes)
// closes the connection before anything is allocated for it; a frame being
// received holds storage for the bytes that arrived, not for its length.
//
// Threads: `threads` I/O threads, each with its own epoll set and an eventfd
// that wakes it; a connection belongs to one of them for life (accepted and
// connected sockets are dealt round-robin). A connection's handler runs on
// that thread, one call at a time; AcceptFn and ConnectFn run there too.
//
// Outbound: two lanes per connection. Send, from any thread, pushes the
// frame onto the data lane, SendControl onto the control lane (each a
// moodycamel ConcurrentQueue: many producers), and wakes the I/O thread only
// if no flush is already pending; the I/O thread drains both in bulk and
// writes with one gathered write (sendmsg with an iovec array, i.e. writev
// plus MSG_NOSIGNAL; up to IOV_MAX frames per call), so many small frames
// cost few system calls. A plaintext connection that is idle — nothing
// queued in either lane, and no send on it for the last 10 us — lets the
// sending thread write its frame itself with one non-blocking send (what
// it cannot write goes to the I/O thread, which writes the rest first):
// a lone request or reply then costs no wake-up of the I/O thread, and a
// stream of sends is still gathered. Within a lane, frames from one thread go out in
// send order; so do frames whose sends are ordered by happens-before across
// threads. Between lanes, control frames go first: a control frame is
// written before every data frame whose writing has not begun (a frame is
// never split), so a reply or heartbeat waits behind at most one partly
// written data frame, never behind megabytes of queued data. Each lane's
// queued bytes are bounded: past max_outbound_bytes Send returns
// ResourceExhausted and queues nothing (the caller decides: drop and count,
// wait for room with WhenQueuedAtMost, or close); past max_control_bytes
// the peer does not read even replies, and the connection is closed. An
// accepted send means queued, not delivered: frames still queued when the
// connection closes are dropped.
//
// Inbound: reads of up to 64 KiB, decoded by FrameDecoder; each payload is
// handed to OnFrame 8-byte aligned, valid only during the call.
//
// TLS (ConnectionOptions::tls, net/io/tls.h): the same frames inside TLS
// 1.3 records, both ends' certificates checked. Frames sent before the TLS
// handshake is done wait in their lanes; OnFrame starts after it, with
// tls_peer() set. The gathered write becomes one SSL_write of up to 64 KiB
// of frames (records of up to 16 KiB). A TLS failure — a refused
// certificate, an old version, a peer of the other mode, a record that
// fails its integrity check — closes the connection at once with a reason
// naming it (counted in ReactorStats::tls_refused or tls_errors).
//
// Timeouts, all on the I/O thread (epoll_wait sleeps until the nearest one):
// frame_timeout (a started frame must complete), idle_timeout (a complete
// frame must arrive), connect_timeout, close_timeout (how long Close keeps
// writing what is queued). Each closes with DeadlineExceeded except the
// close timeout, which closes with the reason already given.
//
// Closing: Close(reason) from any thread, or a cause the I/O thread finds:
// peer EOF (Unavailable "peer closed the connection"), a socket error
// (Unavailable, with strerror), an oversized frame (ResourceExhausted), a
// timeout (DeadlineExceeded), a handler exception (Internal), shutdown
// (Cancelled). The first reason wins. Reading stops, queued frames are
// written for up to close_timeout (not at all if the socket is dead), the fd
// is closed, OnClosed runs once with the reason, and the handler is released.
// Each close for an error is logged once, with the peer and the reason.
//
// Lifetime: connections are shared_ptr (Connection derives from
// enable_shared_from_this, so an AcceptFn can keep one). A Connection may be
// held and sent to from any thread after it closed, and after its Reactor is
// gone: Send then returns Unavailable.

#ifndef TROUPE_NET_IO_REACTOR_H_
#define TROUPE_NET_IO_REACTOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "net/io/frame.h"
#include "net/io/tls.h"
#include "spdlog/logger.h"

namespace troupe::net {

// Zero, negative or infinite durations disable a timeout.
struct ConnectionOptions {
  // Largest payload accepted from the peer at first (see
  // Connection::SetMaxFrameBytes); a bigger length prefix closes the
  // connection (ResourceExhausted) before allocating.
  size_t max_frame_bytes = size_t{16} << 20;
  // Data lane: bytes queued for writing and not yet written (prefixes
  // included); Send past it fails with ResourceExhausted.
  size_t max_outbound_bytes = size_t{64} << 20;
  // Control lane, the same count for SendControl; past it the connection is
  // closed (ResourceExhausted): the peer does not read.
  size_t max_control_bytes = size_t{16} << 20;
  // A frame whose first byte has arrived must be complete within this, or
  // the connection closes (DeadlineExceeded): a peer trickling bytes.
  absl::Duration frame_timeout = absl::Seconds(10);
  // No complete frame for this long closes the connection
  // (DeadlineExceeded); set it from the heartbeat timeout. Infinite: never.
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Connect only: the TCP handshake must complete within this
  // (DeadlineExceeded through the ConnectFn).
  absl::Duration connect_timeout = absl::Seconds(10);
  // How long a closing connection keeps writing what is queued before it
  // drops the rest and closes the socket.
  absl::Duration close_timeout = absl::Seconds(1);
  // SO_SNDBUF / SO_RCVBUF for the socket (the kernel doubles the value);
  // 0 keeps the kernel's autotuning, which lets a connection's kernel send
  // buffer grow to several MiB on top of max_outbound_bytes.
  int send_buffer_bytes = 0;
  int receive_buffer_bytes = 0;
  // TLS (net/io/tls.h): set, the connection runs TLS 1.3 with the config's
  // current context — as the server on an accepted connection, the client
  // on a connected one — and the peer must present a certificate the
  // context's CAs vouch for. Null: plaintext.
  std::shared_ptr<TlsConfig> tls;
  // TLS only: the TLS handshake must complete within this
  // (DeadlineExceeded).
  absl::Duration tls_handshake_timeout = absl::Seconds(10);
  // Plaintext only: a peer whose first bytes are a TLS record is refused
  // (FailedPrecondition, "the peer speaks TLS") instead of having them read
  // as a frame length. Off by default: a first frame of certain lengths
  // from 66,324 bytes up starts with such bytes. A TLS connection always
  // refuses a peer that does not speak TLS.
  bool refuse_tls_peers = false;
  // Written, as one plaintext frame, to a peer found speaking the other
  // mode — TLS to a plaintext connection, plaintext to a TLS one — before
  // the connection closes (FailedPrecondition), so that the peer can say
  // why. Empty: nothing is written.
  std::string mode_mismatch_reply;
};

class Connection;

// Called on the connection's I/O thread, one call at a time. Exceptions are
// caught: from OnFrame they close the connection (Internal).
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // One complete frame's payload (possibly empty); valid only during the
  // call, 8-byte aligned. Once the connection is closing (Close was called,
  // even from within OnFrame), no further OnFrame is made.
  virtual void OnFrame(Connection& connection, absl::Span<const uint8_t> payload) = 0;
  // After the OnFrame calls of one read (one or more), on the same thread:
  // a handler that gathers work across the frames of a read finishes it
  // here. Not called for a read that completed no frame.
  virtual void OnReadDone(Connection& connection) { (void)connection; }
  // Exactly once, after the last OnFrame: the peer closed (Unavailable),
  // a limit or timeout was hit, a socket error, or Close was called (its
  // reason). The connection sends nothing more. Not called for a
  // connection whose AcceptFn returned no handler, nor for a failed Connect.
  virtual void OnClosed(Connection& connection, const absl::Status& reason) = 0;
};

struct ConnectionStats {
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t control_frames_out = 0;  // of frames_out, those sent with SendControl
  uint64_t writev_calls = 0;    // the I/O thread's gathered write calls (sendmsg), EAGAIN ones included
  uint64_t direct_writes = 0;   // writes made by sending threads (see "Outbound"), EAGAIN ones included
  uint64_t rejected_sends = 0;  // Send refused: outbound bound reached
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  // Any thread. Queues one data frame (see OutFrame). ResourceExhausted if
  // max_outbound_bytes would be passed (nothing queued, counted);
  // Unavailable once the connection is closing or closed; InvalidArgument
  // for an empty OutFrame.
  virtual absl::Status Send(OutFrame frame) = 0;
  // Any thread. Queues a data frame that must not be refused for a full
  // data lane and must keep its place among data frames (a reply, a down
  // or stop after the sends before it): it may pass max_outbound_bytes by
  // up to max_control_bytes (a reserve); past that the connection is closed
  // with ResourceExhausted (the peer does not read) and this returns
  // ResourceExhausted. Unavailable once closing; InvalidArgument for an
  // empty frame.
  virtual absl::Status SendReserved(OutFrame frame) = 0;
  // Any thread. Queues a control frame (heartbeats, handshake frames):
  // written before every queued data frame whose writing has not begun
  // (a frame is never split), in SendControl order among themselves.
  // Bounded separately by ConnectionOptions::max_control_bytes; past it the
  // connection is closed with ResourceExhausted naming the peer (a peer
  // that does not read) and this returns ResourceExhausted. Unavailable once
  // closing; InvalidArgument for an empty frame.
  virtual absl::Status SendControl(OutFrame frame) = 0;
  // Any thread. Send and SendReserved for a frame written in place (see
  // FrameWriter): the same bounds, refusals and order. A small frame is
  // written straight into the lane's outbound batch; a larger one, or one
  // written by its sender, is taken as an OutFrame. By default: as an
  // OutFrame, through Send and SendReserved.
  virtual absl::Status SendInPlace(FrameWriter& frame) { return Send(frame.TakeOutFrame()); }
  virtual absl::Status SendReservedInPlace(FrameWriter& frame) { return SendReserved(frame.TakeOutFrame()); }
  // Any thread, idempotent (the first reason wins). Frames already queued
  // are still written, up to close_timeout, then the socket closes and
  // OnClosed runs with `reason`, on the I/O thread, never inside this call.
  virtual void Close(absl::Status reason) = 0;
  // I/O thread only: from the handler's OnFrame or the Connect callback.
  // Sets the largest payload accepted from the peer, for frames whose length
  // prefix has not yet been read (from OnFrame: the next frame on, even one
  // already in the same read). A frame over it closes the connection
  // (ResourceExhausted). E.g. a few KiB until a handshake completes.
  virtual void SetMaxFrameBytes(size_t bytes) = 0;
  // "ip:port" or "[ipv6]:port" of the peer.
  virtual const std::string& peer() const = 0;
  // A TLS connection's peer (its certificate's names, the exporter value),
  // set before the first OnFrame and unchanged after; null for a plaintext
  // connection. From the handler's calls, or any thread once a frame came.
  virtual const TlsPeer* tls_peer() const = 0;
  // Any thread; each counter is read on its own (not a snapshot).
  virtual ConnectionStats stats() const = 0;
  // Any thread: bytes queued on the data lane and not yet written (what
  // max_outbound_bytes bounds).
  virtual size_t outbound_bytes() const = 0;
  // Any thread. Runs `callback` once, on the connection's I/O thread (or at
  // once on the calling thread if the condition already holds), when the
  // data lane's queued bytes are at most `bytes`, or when the connection has
  // closed (the callback then finds Send failing with Unavailable).
  // Checked after each write that frees data bytes and when closing starts.
  // An exception from `callback` is logged and dropped.
  virtual void WhenQueuedAtMost(size_t bytes, absl::AnyInvocable<void() &&> callback) = 0;
};

struct ReactorOptions {
  int threads = 1;
  std::string name = "troupe-io";
  // Lines for closed connections, errors. Null: a logger to stderr.
  std::shared_ptr<spdlog::logger> logger;
};

struct ReactorStats {
  uint64_t accepted = 0, connected = 0, closed = 0;
  uint64_t oversized_frames = 0, timeouts = 0;
  uint64_t rejected_sends = 0;  // over all connections
  // Accepted and closed at once because the process was out of file
  // descriptors (EMFILE, ENFILE); see Reactor::Listen.
  uint64_t shed_connections = 0;
  // TLS: connections closed before any application data came, for a
  // refused certificate (either end's), an old TLS version, a peer of the
  // other mode (a plaintext connection counts a TLS peer here too) or a
  // failed handshake; and connections closed later for records that
  // failed their integrity check or were not TLS.
  uint64_t tls_refused = 0;
  uint64_t tls_errors = 0;
};

class Reactor {
 public:
  // Starts the I/O threads. Aborts, with a log line, if the kernel refuses
  // an epoll set or an eventfd (out of file descriptors).
  explicit Reactor(ReactorOptions options);
  // Shutdown(). Must not run on one of this reactor's I/O threads.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Called on the accepted connection's I/O thread before its first frame,
  // possibly on several I/O threads at once. Returning nullptr refuses the
  // connection (closed at once, no OnClosed).
  using AcceptFn = std::function<std::shared_ptr<ConnectionHandler>(Connection&)>;
  // Listens on "host:port" ("a.b.c.d:port", "[v6]:port", "localhost:port";
  // port 0 picks one). Returns the bound "host:port". InvalidArgument (with
  // the address) for an address that does not parse; the bind error
  // otherwise; FailedPrecondition after Shutdown.
  // Out of file descriptors, the listener sheds: it frees a reserve
  // descriptor it keeps, accepts the pending connection and closes it at
  // once (the client sees EOF, not a hang), takes the reserve back, counts
  // (ReactorStats::shed_connections), logs at most one line a second, and
  // goes on accepting. Only if the reserve cannot be taken back does it
  // pause for 100 ms.
  absl::StatusOr<std::string> Listen(std::string_view address, ConnectionOptions options, AcceptFn on_accept);

  // Connects to "host:port" without blocking the caller. `done` runs once,
  // on an I/O thread, with the connection (its handler attached, frames may
  // be sent; OnFrame starts after `done` returns) or the error:
  // InvalidArgument for a bad address, Unavailable for a refused or failed
  // connect, DeadlineExceeded past connect_timeout, Cancelled at shutdown.
  // After Shutdown, `done` runs on the calling thread (Cancelled).
  using ConnectFn = std::function<void(absl::StatusOr<std::shared_ptr<Connection>>)>;
  void Connect(std::string_view address, ConnectionOptions options, std::shared_ptr<ConnectionHandler> handler,
               ConnectFn done);

  // Stops accepting, closes all connections (Cancelled; each still writes
  // what is queued, up to its close_timeout), joins the threads. Idempotent
  // and safe while other threads Send (they get Unavailable). From an I/O
  // thread (a handler) it starts the shutdown and returns without joining.
  void Shutdown();
  ReactorStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::net

#endif  // TROUPE_NET_IO_REACTOR_H_
