// The CAF 0.17 side of the remote workloads (bench/remote.h), over CAF's io
// module: the middleman and its BASP broker, CAF's own protocol over TCP.
//
// CAF 0.17 names a node by its host and process id, so two actor systems of
// one process would take each other for themselves; the serving system
// therefore lives in a forked process (ServerProcess). Its lifecycle:
//   1. The workload forks before it builds any actor system (the suite's
//      child has no other threads then). The child builds an actor system
//      with the middleman, spawns the served actor, publishes it on
//      127.0.0.1 port 0, and writes the bound port into the ready pipe.
//   2. The parent reads the port (bounded by kRemoteIoTimeout), builds its
//      own actor system, and reaches the served actor with remote_actor.
//   3. After the measurement the parent destroys its system and closes the
//      stop pipe; the child sees EOF, stops its actor, destroys its system
//      and exits; the parent sees EOF on the ready pipe when it has (bounded
//      again; killed past the bound) and reaps it.
// The child dies with the parent (PR_SET_PDEATHSIG), writes nothing to the
// suite's stdout, and reports a failure on stderr and in its exit code.
//
// Both systems use the suite's CafConfig (Sizes::workers scheduler threads)
// plus the middleman, every other setting at CAF's default.
//
//   remote-rtt: an event-based client actor (as in ask-latency) requests
//     (ping, seq, value) from the remote echo actor, which returns
//     (seq, value); the next request starts in the response handler.
//   remote-oneway: a sender actor sends (work, seq, value) to the remote
//     counting actor n times from one handler; the counter, after the n-th,
//     sends (done, count, sum, wrong values) back to the sender.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/caf_common.h"
#include "bench/remote.h"
#include "bench/workload.h"
#include "caf/all.hpp"
#include "caf/io/all.hpp"

namespace troupe::bench {
namespace {

using caf_side::CafConfig;
using caf_side::Clock;
using caf_side::DoneAtom;
using caf_side::GoAtom;
using caf_side::PingAtom;
using caf_side::SecondsSince;
using caf_side::WorkAtom;

// The suite's CAF configuration with the io module loaded.
class RemoteConfig : public CafConfig {
 public:
  explicit RemoteConfig(const Sizes& sizes) : CafConfig(sizes) { load<caf::io::middleman>(); }
};

absl::Status CafError(const caf::actor_system& sys, const std::string& what, const caf::error& err) {
  return absl::InternalError(absl::StrCat(what, ": ", sys.render(err)));
}

const std::chrono::milliseconds kRequestTimeout{absl::ToInt64Milliseconds(kRemoteIoTimeout)};

// -- the served actors (in the server process) ---------------------------------

// remote-rtt: every request's payload back.
caf::behavior Echo(caf::event_based_actor*) {
  return {
      [](PingAtom, int64_t seq, int64_t value) { return std::make_tuple(seq, value); },
  };
}

struct CounterState {
  int64_t count = 0;
  uint64_t sum = 0;
  int64_t wrong_values = 0;
};

// remote-oneway: counts `messages` messages, then tells their sender.
caf::behavior Counter(caf::stateful_actor<CounterState>* self, int64_t messages) {
  return {
      [=](WorkAtom, int64_t seq, int64_t value) {
        CounterState& st = self->state;
        ++st.count;
        st.sum += static_cast<uint64_t>(seq);
        if (value != RemotePayloadValue(seq)) ++st.wrong_values;
        if (st.count == messages) {
          self->send(caf::actor_cast<caf::actor>(self->current_sender()), DoneAtom::value, st.count,
                     static_cast<int64_t>(st.sum), st.wrong_values);
        }
      },
  };
}

using SpawnServed = caf::actor (*)(caf::actor_system&, const Sizes&);

caf::actor SpawnEcho(caf::actor_system& sys, const Sizes&) { return sys.spawn(Echo); }
caf::actor SpawnCounter(caf::actor_system& sys, const Sizes& sizes) {
  return sys.spawn(Counter, sizes.remote_oneway_messages);
}

// -- the server process ----------------------------------------------------------

// Waits until `fd` is readable (data or EOF) for at most `timeout`.
bool WaitReadable(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// The child's side (step 1 of the lifecycle above); never returns.
[[noreturn]] void Serve(const Sizes& sizes, SpawnServed spawn, int ready_fd, int stop_fd) {
  int code = 0;
  {
    RemoteConfig cfg(sizes);
    caf::actor_system sys(cfg);
    const caf::actor served = spawn(sys, sizes);
    const caf::expected<uint16_t> port = sys.middleman().publish(served, 0, "127.0.0.1");
    uint16_t bound = 0;
    if (port) {
      bound = *port;
    } else {
      std::fprintf(stderr, "CAF server process: publish failed: %s\n", sys.render(port.error()).c_str());
      code = 1;
    }
    if (write(ready_fd, &bound, sizeof(bound)) != sizeof(bound)) code = 1;
    if (code == 0) {
      char c;
      while (read(stop_fd, &c, 1) < 0 && errno == EINTR) {
      }
    }
    caf::anon_send_exit(served, caf::exit_reason::user_shutdown);
  }
  _exit(code);
}

// A forked process serving one published actor; see the top of the file.
class ServerProcess {
 public:
  // Forks the server and waits for its port.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const Sizes& sizes, SpawnServed spawn) {
    int ready[2], stop[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "CAF server process: pipe");
    if (pipe2(stop, O_CLOEXEC) != 0) {
      const int err = errno;
      close(ready[0]);
      close(ready[1]);
      return absl::ErrnoToStatus(err, "CAF server process: pipe");
    }
    const pid_t parent = getpid();
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      // The suite reads this process's stdout (inherited) until EOF; the
      // server must neither write to it nor keep it open.
      const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null_fd >= 0) dup2(null_fd, STDOUT_FILENO);
      close(ready[0]);
      close(stop[1]);
      Serve(sizes, spawn, ready[1], stop[0]);
    }
    const int fork_errno = errno;
    close(ready[1]);
    close(stop[0]);
    auto server = std::unique_ptr<ServerProcess>(new ServerProcess(pid, ready[0], stop[1]));
    if (pid < 0) return absl::ErrnoToStatus(fork_errno, "CAF server process: fork");
    uint16_t port = 0;
    if (!WaitReadable(server->ready_fd_, kRemoteIoTimeout)) {
      return absl::DeadlineExceededError("CAF server process: no port from the server");
    }
    if (read(server->ready_fd_, &port, sizeof(port)) != sizeof(port) || port == 0) {
      return absl::InternalError("CAF server process: the server could not publish its actor (see its stderr)");
    }
    server->port_ = port;
    return server;
  }

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Stops a server that Stop did not (a failed start): kills it.
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (ready_fd_ >= 0) close(ready_fd_);
    if (stop_fd_ >= 0) close(stop_fd_);
  }

  uint16_t port() const { return port_; }

  // Tells the server to stop and reaps it (steps 3 of the lifecycle). An
  // error if it does not exit within kRemoteIoTimeout or exits unclean.
  absl::Status Stop() {
    close(stop_fd_);
    stop_fd_ = -1;
    // The server holds the ready pipe's write end until it exits.
    bool exited = false;
    while (!exited && WaitReadable(ready_fd_, kRemoteIoTimeout)) {
      char c;
      const ssize_t n = read(ready_fd_, &c, 1);
      if (n == 0) exited = true;
      if (n < 0 && errno != EINTR) break;
    }
    absl::Status status;
    if (!exited) {
      kill(pid_, SIGKILL);
      status = absl::DeadlineExceededError("CAF server process: did not exit after its stop; killed");
    }
    int wstatus = 0;
    waitpid(pid_, &wstatus, 0);
    if (status.ok() && (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)) {
      status = absl::InternalError(absl::StrCat("CAF server process: ended with status ", wstatus));
    }
    pid_ = -1;
    return status;
  }

 private:
  ServerProcess(pid_t pid, int ready_fd, int stop_fd) : pid_(pid), ready_fd_(ready_fd), stop_fd_(stop_fd) {}

  pid_t pid_;       // -1 once reaped
  int ready_fd_;    // read end: the port, then EOF when the server exits
  int stop_fd_;     // write end: closed to stop the server
  uint16_t port_ = 0;
};

// -- the measuring side (in the workload's own process) -----------------------------

struct RttClientState {
  caf::actor echo;
  int64_t total = 0;  // warm-up requests and samples
  int64_t next = 0;   // the next request's sequence number
  int64_t mismatches = 0;
  std::vector<double> micros;
  caf::response_promise done;
};

using RttClientActor = caf::stateful_actor<RttClientState>;

// One request to the echo, timed from before `request` to the response
// handler; the next starts from the handler.
void RequestOnce(RttClientActor* self) {
  const int64_t seq = self->state.next++;
  const int64_t value = RemotePayloadValue(seq);
  const Clock::time_point start = Clock::now();
  self->request(self->state.echo, kRequestTimeout, PingAtom::value, seq, value)
      .then(
          [=](int64_t reply_seq, int64_t reply_value) {
            const double micros = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
            RttClientState& st = self->state;
            if (reply_seq != seq || reply_value != value) ++st.mismatches;
            if (seq >= kRemoteRttWarmup) st.micros.push_back(micros);
            if (st.next < st.total) {
              RequestOnce(self);
            } else {
              st.done.deliver(st.mismatches, std::move(st.micros));
            }
          },
          [=](caf::error& err) { self->state.done.deliver(std::move(err)); });
}

caf::behavior RttClient(RttClientActor* self, caf::actor echo, int64_t samples) {
  RttClientState& st = self->state;
  st.echo = std::move(echo);
  st.total = kRemoteRttWarmup + samples;
  st.micros.reserve(static_cast<size_t>(samples));
  return {
      [=](GoAtom) {
        self->state.done = self->make_response_promise();
        RequestOnce(self);
      },
  };
}

struct SenderState {
  caf::response_promise done;
};

// Sends `messages` messages to the remote counter on go; answers the go
// with the counter's done.
caf::behavior OnewaySender(caf::stateful_actor<SenderState>* self, caf::actor counter, int64_t messages) {
  return {
      [=](GoAtom) {
        self->state.done = self->make_response_promise();
        for (int64_t seq = 0; seq < messages; ++seq) {
          self->send(counter, WorkAtom::value, seq, RemotePayloadValue(seq));
        }
      },
      [=](DoneAtom, int64_t count, int64_t sum, int64_t wrong_values) {
        self->state.done.deliver(count, sum, wrong_values);
      },
  };
}

// Runs `measure(sys, served)` on a fresh actor system of this process, with
// `served` the server's actor reached through remote_actor, then stops the
// server. The server's failure to stop fails the workload too.
template <class Result, class Measure>
absl::StatusOr<Result> WithServer(const Sizes& sizes, SpawnServed spawn, Measure measure) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(sizes, spawn);
  if (!server.ok()) return server.status();
  absl::StatusOr<Result> result;
  {
    RemoteConfig cfg(sizes);
    caf::actor_system sys(cfg);
    caf::expected<caf::actor> served = sys.middleman().remote_actor("127.0.0.1", (*server)->port());
    if (served) {
      result = measure(sys, *served);
    } else {
      result = CafError(sys, "remote_actor failed", served.error());
    }
  }
  const absl::Status stopped = (*server)->Stop();
  if (!result.ok()) return result;
  if (!stopped.ok()) return stopped;
  return result;
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> CafRemoteRtt(const Sizes& sizes) {
  const int64_t samples = sizes.remote_rtt_samples;
  if (samples <= 0) return absl::InvalidArgumentError("remote-rtt: samples must be positive");
  return WithServer<std::vector<Measurement>>(
      sizes, SpawnEcho,
      [samples](caf::actor_system& sys, const caf::actor& echo) -> absl::StatusOr<std::vector<Measurement>> {
        caf::scoped_actor self(sys);
        const caf::actor client = self->spawn(RttClient, echo, samples);
        absl::Status status;
        int64_t mismatches = -1;
        std::vector<double> micros;
        // Each of the client's requests is bounded by kRequestTimeout, so
        // its answer comes.
        self->request(client, caf::infinite, GoAtom::value)
            .receive(
                [&](int64_t m, std::vector<double>& us) {
                  mismatches = m;
                  micros = std::move(us);
                },
                [&](caf::error& err) { status = CafError(sys, "remote-rtt: the client failed", err); });
        self->send_exit(client, caf::exit_reason::user_shutdown);
        if (!status.ok()) return status;
        if (mismatches != 0 || static_cast<int64_t>(micros.size()) != samples) {
          return absl::InternalError(absl::StrCat("remote-rtt: ", mismatches, " replies did not match their request; ",
                                                  micros.size(), " samples, expected ", samples));
        }
        return RttMeasurements(micros);
      });
}

absl::StatusOr<std::vector<Measurement>> CafRemoteOneway(const Sizes& sizes) {
  const int64_t messages = sizes.remote_oneway_messages;
  if (messages <= 0) return absl::InvalidArgumentError("remote-oneway: messages must be positive");
  return WithServer<std::vector<Measurement>>(
      sizes, SpawnCounter,
      [messages](caf::actor_system& sys, const caf::actor& counter) -> absl::StatusOr<std::vector<Measurement>> {
        caf::scoped_actor self(sys);
        const caf::actor sender = self->spawn(OnewaySender, counter, messages);
        absl::Status status;
        int64_t count = -1, sum = 0, wrong_values = 0;
        const Clock::time_point start = Clock::now();
        self->request(sender, kRequestTimeout, GoAtom::value)
            .receive(
                [&](int64_t c, int64_t s, int64_t w) {
                  count = c;
                  sum = s;
                  wrong_values = w;
                },
                [&](caf::error& err) { status = CafError(sys, "remote-oneway: no done from the counter", err); });
        const double seconds = SecondsSince(start);
        self->send_exit(sender, caf::exit_reason::user_shutdown);
        if (!status.ok()) return status;
        if (wrong_values != 0) {
          return absl::InternalError(absl::StrCat("remote-oneway: ", wrong_values, " messages carried a wrong value"));
        }
        if (absl::Status s = CheckOneway(messages, count, static_cast<uint64_t>(sum)); !s.ok()) return s;
        return OnewayMeasurements(messages, seconds);
      });
}

}  // namespace troupe::bench
