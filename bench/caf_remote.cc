// The CAF 0.17 side of the remote workloads (bench/remote.h), over CAF's io
// module: the middleman and its BASP broker, CAF's own protocol over TCP.
//
// Two actor systems in this process, each with the middleman: the serving
// one spawns the echo or counting actor and publishes it on 127.0.0.1 port
// 0; the measuring one reaches it with remote_actor (the bound port passes
// in the process), so every message between them is serialized, crosses
// the loopback connection and is deserialized, as between two hosts. Both
// use the suite's CafConfig (Sizes::workers scheduler threads) plus the
// middleman, every other setting at CAF's default.
//
//   remote-rtt: an event-based client actor (as in ask-latency) requests
//     (ping, seq, value) from the remote echo actor, which returns
//     (seq, value); the next request starts in the response handler.
//   remote-oneway: a sender actor sends (work, seq, value) to the remote
//     counting actor n times from one handler; the counter, after the n-th,
//     sends (done, count, sum, wrong values) back to the sender.
//
// Every request has a timeout of kRemoteIoTimeout, so a lost message fails
// the workload instead of hanging it.

#include <chrono>
#include <cstdint>
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
using caf_side::CafError;
using caf_side::Clock;
using caf_side::DoneAtom;
using caf_side::GoAtom;
using caf_side::PingAtom;
using caf_side::RunRttClient;
using caf_side::SecondsSince;
using caf_side::WorkAtom;

// The suite's CAF configuration with the io module loaded.
class RemoteConfig : public CafConfig {
 public:
  explicit RemoteConfig(const Sizes& sizes) : CafConfig(sizes) { load<caf::io::middleman>(); }
};

const std::chrono::milliseconds kRequestTimeout{absl::ToInt64Milliseconds(kRemoteIoTimeout)};

// -- the served actors (on the serving system) -------------------------------------

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

// -- the measuring side ------------------------------------------------------------

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

// Runs `measure(sys, served)` on the measuring actor system, with `served`
// the serving system's actor reached through remote_actor.
template <class Result, class Measure>
absl::StatusOr<Result> WithServer(const Sizes& sizes, SpawnServed spawn, Measure measure) {
  RemoteConfig server_cfg(sizes);
  caf::actor_system server_sys(server_cfg);
  const caf::actor served = spawn(server_sys, sizes);
  absl::StatusOr<Result> result;
  const caf::expected<uint16_t> port = server_sys.middleman().publish(served, 0, "127.0.0.1");
  if (port) {
    // Declared after the serving system: destroyed first.
    RemoteConfig cfg(sizes);
    caf::actor_system sys(cfg);
    caf::expected<caf::actor> proxy = sys.middleman().remote_actor("127.0.0.1", *port);
    if (proxy) {
      result = measure(sys, *proxy);
    } else {
      result = CafError(sys, "remote_actor failed", proxy.error());
    }
  } else {
    result = CafError(server_sys, "publish failed", port.error());
  }
  caf::anon_send_exit(served, caf::exit_reason::user_shutdown);
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
        absl::StatusOr<std::vector<double>> micros = RunRttClient(sys, self, client, samples, "remote-rtt");
        if (!micros.ok()) return micros.status();
        return RttMeasurements(*micros);
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
