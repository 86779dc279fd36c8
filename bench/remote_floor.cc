// The raw TCP floor of the remote workloads (bench/remote.h): what a framed
// request/response and a framed one-way stream cost over loopback TCP with
// nothing above the sockets: no actors, no serialization library, no
// scheduler.
//
// Both workloads connect two blocking sockets of one process over
// 127.0.0.1 (listen on port 0, connect, accept, all on the calling thread)
// and run one endpoint on a second thread. Each frame is a 4-byte length
// (host order; both ends are this process) and a kRemotePayloadBytes
// payload: the sequence number and RemotePayloadValue(seq), 8 bytes each.
// TCP_NODELAY is set on both sockets, so a small frame leaves at once.
//
//   remote-rtt: the calling thread writes one frame and reads the echo
//     (one send, usually one recv); the echo thread reads frames and writes
//     each back, until the requester shuts its side down.
//   remote-oneway: the calling thread encodes frames into 64 KiB batches and
//     sends each batch with one send; the receiver thread reads into a
//     256 KiB buffer, decodes and counts every frame, and after the last
//     answers with a done frame (count, sum of sequence numbers).
//
// Each endpoint runs on a core of its own (the first two CPUs this process
// may use; unpinned on a single CPU), like two hosts, and for a figure that
// holds from run to run: left to the kernel, the two threads sometimes
// share a core, where a wake-up is a plain context switch, and sometimes do
// not, where it is an inter-processor interrupt (on the KVM development
// machine 12.5 us vs 55 us per round trip, chosen anew in every run).
//
// Every socket has SO_RCVTIMEO and SO_SNDTIMEO of kRemoteIoTimeout, so a
// stuck peer fails the workload instead of hanging it; a failing side shuts
// its socket down, which ends the other side's blocking call.

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/remote.h"
#include "bench/workload.h"

namespace troupe::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kHeaderBytes = sizeof(uint32_t);
constexpr size_t kFrameBytes = kHeaderBytes + kRemotePayloadBytes;

// Owns one socket.
class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  // Ends the peer's blocking reads and this side's (EOF).
  void Shutdown() const {
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  }

 private:
  int fd_;
};

absl::Status SocketError(const char* what) { return absl::ErrnoToStatus(errno, absl::StrCat("remote floor: ", what)); }

// TCP_NODELAY and the send and receive timeouts.
absl::Status Configure(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) return SocketError("TCP_NODELAY");
  const timeval timeout = absl::ToTimeval(kRemoteIoTimeout);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
    return SocketError("socket timeouts");
  }
  return absl::OkStatus();
}

struct SocketPair {
  Socket near;  // the calling thread's end
  Socket far;   // the second thread's end
};

// Two connected TCP sockets over 127.0.0.1, through a listener on an
// ephemeral port that is closed again once they are connected.
absl::StatusOr<SocketPair> ConnectLoopback() {
  Socket listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.fd() < 0) return SocketError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return SocketError("bind");
  if (listen(listener.fd(), 1) != 0) return SocketError("listen");
  if (getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return SocketError("getsockname");
  SocketPair pair{Socket(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), Socket()};
  if (pair.near.fd() < 0) return SocketError("socket");
  // A blocking connect to a listening loopback socket completes from the
  // backlog, before the accept.
  if (connect(pair.near.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return SocketError("connect");
  pair.far = Socket(accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (pair.far.fd() < 0) return SocketError("accept");
  if (absl::Status s = Configure(pair.near.fd()); !s.ok()) return s;
  if (absl::Status s = Configure(pair.far.fd()); !s.ok()) return s;
  return pair;
}

// Sends all of [data, data + size), retrying short sends.
absl::Status SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SocketError(errno == EAGAIN ? "send timed out" : "send");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Writes one frame (header and payload) at `out`.
void EncodeFrame(char* out, int64_t seq, int64_t value) {
  const uint32_t length = kRemotePayloadBytes;
  std::memcpy(out, &length, kHeaderBytes);
  std::memcpy(out + kHeaderBytes, &seq, sizeof(seq));
  std::memcpy(out + kHeaderBytes + sizeof(seq), &value, sizeof(value));
}

struct Payload {
  int64_t seq;
  int64_t value;
};

// Reads frames from a socket through a buffer: one recv takes as many
// frames as have arrived, and Next hands them out one at a time.
class FrameReader {
 public:
  FrameReader(int fd, size_t capacity) : fd_(fd), buffer_(capacity) {}

  // The next frame's payload. NotFound at a clean end of the stream (the
  // peer shut down between frames); another error for a timeout, a broken
  // connection, a stream that ends inside a frame, or a frame of a length
  // other than kRemotePayloadBytes.
  absl::StatusOr<Payload> Next() {
    while (end_ - begin_ < kFrameBytes) {
      if (absl::Status s = Fill(); !s.ok()) return s;
    }
    uint32_t length;
    std::memcpy(&length, &buffer_[begin_], kHeaderBytes);
    if (length != kRemotePayloadBytes) {
      return absl::DataLossError(absl::StrCat("remote floor: a frame of ", length, " bytes"));
    }
    Payload p;
    std::memcpy(&p.seq, &buffer_[begin_ + kHeaderBytes], sizeof(p.seq));
    std::memcpy(&p.value, &buffer_[begin_ + kHeaderBytes + sizeof(p.seq)], sizeof(p.value));
    begin_ += kFrameBytes;
    return p;
  }

 private:
  // Receives more bytes after the ones not yet handed out.
  absl::Status Fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    for (;;) {
      const ssize_t n = recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
      if (n > 0) {
        end_ += static_cast<size_t>(n);
        return absl::OkStatus();
      }
      if (n == 0) {
        if (end_ == 0) return absl::NotFoundError("remote floor: the peer closed the connection");
        return absl::DataLossError("remote floor: the connection ended inside a frame");
      }
      if (errno == EINTR) continue;
      return SocketError(errno == EAGAIN ? "recv timed out" : "recv");
    }
  }

  const int fd_;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // the first byte not yet handed out
  size_t end_ = 0;    // one past the last byte received
};

// remote-rtt's echo: every frame back as it is, until the requester ends
// the stream. OK at a clean end.
absl::Status Echo(const Socket& socket) {
  FrameReader reader(socket.fd(), 4096);
  char frame[kFrameBytes];
  for (;;) {
    absl::StatusOr<Payload> p = reader.Next();
    if (absl::IsNotFound(p.status())) return absl::OkStatus();
    if (!p.ok()) return p.status();
    EncodeFrame(frame, p->seq, p->value);
    if (absl::Status s = SendAll(socket.fd(), frame, kFrameBytes); !s.ok()) return s;
  }
}

// remote-oneway's receiver: counts `messages` frames, checks each value,
// then answers with a done frame (count, sum of sequence numbers).
absl::Status Count(const Socket& socket, int64_t messages) {
  FrameReader reader(socket.fd(), 256 * 1024);
  int64_t count = 0;
  uint64_t sum = 0;
  int64_t wrong_values = 0;
  while (count < messages) {
    absl::StatusOr<Payload> p = reader.Next();
    if (!p.ok()) return p.status();
    ++count;
    sum += static_cast<uint64_t>(p->seq);
    if (p->value != RemotePayloadValue(p->seq)) ++wrong_values;
  }
  if (wrong_values != 0) {
    return absl::DataLossError(absl::StrCat("remote-oneway: ", wrong_values, " messages carried a wrong value"));
  }
  char done[kFrameBytes];
  EncodeFrame(done, count, static_cast<int64_t>(sum));
  return SendAll(socket.fd(), done, kFrameBytes);
}

// Pins the calling thread to one CPU (nothing with fewer than two CPUs);
// see the top of the file. `which`: 0 for the calling thread's endpoint, 1
// for the second thread's.
void PinEndpoint(int which) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed) || seen++ != which) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof(one), &one);  // best effort: unpinned if refused
    return;
  }
}

// Runs `body` on a second thread, pinned as endpoint 1; Join waits for it
// and returns its status. Pins the calling thread as endpoint 0 until
// destroyed.
class Peer {
 public:
  template <class F>
  explicit Peer(F body)
      : caller_affinity_ok_(sched_getaffinity(0, sizeof(caller_affinity_), &caller_affinity_) == 0),
        thread_([this, body = std::move(body)]() mutable {
          PinEndpoint(1);
          status_ = body();
        }) {
    PinEndpoint(0);
  }
  ~Peer() {
    if (caller_affinity_ok_) sched_setaffinity(0, sizeof(caller_affinity_), &caller_affinity_);
  }
  absl::Status Join() {
    thread_.join();
    return status_;
  }

 private:
  cpu_set_t caller_affinity_;  // the calling thread's, restored at the end
  const bool caller_affinity_ok_;
  absl::Status status_;  // written by the thread before it ends; read after join
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::vector<Measurement>> FloorRemoteRtt(const Sizes& sizes) {
  const int64_t samples = sizes.remote_rtt_samples;
  if (samples <= 0) return absl::InvalidArgumentError("remote-rtt: samples must be positive");
  absl::StatusOr<SocketPair> pair = ConnectLoopback();
  if (!pair.ok()) return pair.status();
  const Socket& far = pair->far;
  Peer echo([&far] {
    absl::Status s = Echo(far);
    if (!s.ok()) far.Shutdown();
    return s;
  });

  FrameReader reader(pair->near.fd(), 4096);
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(samples));
  absl::Status status;
  char frame[kFrameBytes];
  for (int64_t seq = 0; seq < kRemoteRttWarmup + samples; ++seq) {
    const int64_t value = RemotePayloadValue(seq);
    EncodeFrame(frame, seq, value);
    const Clock::time_point start = Clock::now();
    status = SendAll(pair->near.fd(), frame, kFrameBytes);
    if (!status.ok()) break;
    absl::StatusOr<Payload> reply = reader.Next();
    const Clock::time_point end = Clock::now();
    if (!reply.ok()) {
      status = reply.status();
      break;
    }
    if (reply->seq != seq || reply->value != value) {
      status = absl::DataLossError(absl::StrCat("remote-rtt: request ", seq, " got the reply (", reply->seq, ", ",
                                                reply->value, ")"));
      break;
    }
    if (seq >= kRemoteRttWarmup) micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  // The echo thread sees the end of the stream (or, after a failure here, a
  // broken connection) and returns.
  if (status.ok()) {
    shutdown(pair->near.fd(), SHUT_WR);
  } else {
    pair->near.Shutdown();
  }
  const absl::Status echo_status = echo.Join();
  if (!status.ok()) return status;
  if (!echo_status.ok()) return echo_status;
  return RttMeasurements(micros);
}

absl::StatusOr<std::vector<Measurement>> FloorRemoteOneway(const Sizes& sizes) {
  const int64_t messages = sizes.remote_oneway_messages;
  if (messages <= 0) return absl::InvalidArgumentError("remote-oneway: messages must be positive");
  absl::StatusOr<SocketPair> pair = ConnectLoopback();
  if (!pair.ok()) return pair.status();
  const Socket& far = pair->far;
  Peer receiver([&far, messages] {
    absl::Status s = Count(far, messages);
    if (!s.ok()) far.Shutdown();
    return s;
  });

  constexpr size_t kBatchFrames = 64 * 1024 / kFrameBytes;
  std::vector<char> batch(kBatchFrames * kFrameBytes);
  absl::Status status;
  Payload done{-1, 0};
  const Clock::time_point start = Clock::now();
  for (int64_t seq = 0; seq < messages && status.ok();) {
    size_t frames = 0;
    for (; frames < kBatchFrames && seq < messages; ++frames, ++seq) {
      EncodeFrame(&batch[frames * kFrameBytes], seq, RemotePayloadValue(seq));
    }
    status = SendAll(pair->near.fd(), batch.data(), frames * kFrameBytes);
  }
  if (status.ok()) {
    FrameReader reader(pair->near.fd(), 64);
    absl::StatusOr<Payload> reply = reader.Next();
    if (reply.ok()) {
      done = *reply;
    } else {
      status = reply.status();
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!status.ok()) pair->near.Shutdown();
  const absl::Status receiver_status = receiver.Join();
  if (!receiver_status.ok()) return receiver_status;
  if (!status.ok()) return status;
  if (absl::Status s = CheckOneway(messages, done.seq, static_cast<uint64_t>(done.value)); !s.ok()) return s;
  return OnewayMeasurements(messages, seconds);
}

}  // namespace troupe::bench
