// What the in-process node tests (node_test.cc, link_test.cc,
// tls_node_test.cc) share: test actors, node options, a system whose log
// lines a test can search, a log of NodeUp/NodeDown/NodeLeft to wait on,
// and a TCP relay whose connections a test can cut, to lose a link without
// stopping either node.
//
// Nothing here sleeps: waits are on futures or on a condition variable,
// each with a deadline.

#ifndef TROUPE_NET_NODE_TEST_UTIL_H_
#define TROUPE_NET_NODE_TEST_UTIL_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "net/node.h"
#include "net/testdata/node_test_messages.troupe.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"

namespace troupe::nettest {

inline constexpr char kSecret[] = "node-test-secret";
inline const absl::Duration kWait = absl::Seconds(20);

NodeOptions Options(std::string name, std::string secret = kSecret);

// Options with short heartbeats and redials, so that a lost link is noticed
// and healed within a test.
inline NodeOptions QuickOptions(std::string name) {
  NodeOptions o = Options(std::move(name));
  o.heartbeat_interval = absl::Milliseconds(50);
  o.heartbeat_timeout = absl::Milliseconds(400);
  o.handshake_timeout = absl::Seconds(2);
  o.reconnect_min = absl::Milliseconds(10);
  o.reconnect_max = absl::Milliseconds(100);
  return o;
}

// Polls `condition` every millisecond until it holds or `timeout` passes.
template <class Condition>
bool Eventually(Condition condition, absl::Duration timeout = kWait) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

struct Collector : Actor<Collector> {
  using Remote = Accepts<Note>;
  explicit Collector(Promise<std::string> first) : first(std::move(first)) {}
  void On(const Note& n) { first.SetValue(n.text); }
  Promise<std::string> first;
};

struct Counter : Actor<Counter> {
  using Remote = Accepts<Add, Get, Echo, Hold, Register, Quit>;
  Counter() = default;
  explicit Counter(const CounterArgs& args) : n(args.start) {}
  void On(const Add& m) { n += m.by; }
  int64_t On(const Get&) { return n; }
  std::string On(const Echo& e) { return "echo: " + e.text; }
  void On(const Hold&, Reply<int64_t> reply) { held.push_back(std::move(reply)); }
  void On(const Register& r) { r.who.Tell(Note{.text = "hello from the counter"}); }
  void On(const Quit&) { Stop(); }
  int64_t n = 0;
  std::vector<Reply<int64_t>> held;
};

// Handles what a Counter handles but accepts nothing from other nodes: it
// forgot its `using Remote = ...`.
struct Mute : Actor<Mute> {
  void On(const Add& m) { n += m.by; }
  int64_t On(const Get&) { return n; }
  int64_t n = 0;
};

// Checks that each sender's numbers arrive in order.
struct Sequencer : Actor<Sequencer> {
  using Remote = Accepts<Seq, Tally>;
  void On(const Seq& s) {
    int64_t& last = last_[s.sender];
    if (s.n != last + 1) ++out_of_order;
    last = s.n;
    ++total;
  }
  TallyResult On(const Tally&) { return {.total = total, .out_of_order = out_of_order}; }
  absl::flat_hash_map<uint32_t, int64_t> last_;
  int64_t total = 0, out_of_order = 0;
};

// Asked of a Watcher: monitor `target`. The answer comes once the watch
// request is queued ahead of anything the asker sends `target` afterwards.
struct Watch {
  ActorRef target;
};

// Monitors the actor it is asked to, and completes `down` with the Down's
// reason (as text: "OK" for a normal stop).
struct Watcher : Actor<Watcher> {
  explicit Watcher(Promise<std::string> down) : down(std::move(down)) {}
  bool On(const Watch& w) {
    Monitor(w.target);
    return true;
  }
  void On(const Down& d) { down.SetValue(d.reason.ToString()); }
  Promise<std::string> down;
};

// A system of one worker whose log lines (info and up, the last 4096) a
// test can search.
struct LoggedSystem {
  explicit LoggedSystem(const std::string& name);
  // The lines that contain every one of `parts`.
  int CountLines(const std::vector<std::string>& parts) const;
  std::string All() const;

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  ActorSystem system;
};

// The NodeUp/NodeDown/NodeLeft a node's subscriber saw, in order, as lines
// such as "up a reconnected", "down a", "down a replaced", "left a".
class EventLog {
 public:
  void Add(std::string line, uint64_t incarnation);
  // Waits until some line from `from` on equals `line`; its index, or -1
  // after `timeout`.
  int WaitFor(const std::string& line, absl::Duration timeout = kWait, size_t from = 0);
  std::vector<std::string> Lines();
  uint64_t IncarnationAt(size_t index);
  size_t size();

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::pair<std::string, uint64_t>> lines_;
};

struct Recorder : Actor<Recorder> {
  explicit Recorder(std::shared_ptr<EventLog> log) : log(std::move(log)) {}
  void On(const NodeUp& u) { log->Add("up " + u.node + (u.reconnected ? " reconnected" : ""), u.incarnation); }
  void On(const NodeDown& d) { log->Add("down " + d.node + (d.replaced ? " replaced" : ""), d.incarnation); }
  void On(const NodeLeft& l) { log->Add("left " + l.node, l.incarnation); }
  std::shared_ptr<EventLog> log;
};

// Subscribes a Recorder of `sys` to `node`; returns its log.
std::shared_ptr<EventLog> Record(ActorSystem& sys, Node& node);

// A TCP relay on loopback: every connection to address() is joined to a
// new one to the target. Pause() closes every joined pair at once (both ends
// see their connection end) and closes new connections as they come, until
// Resume().
class TcpRelay {
 public:
  TcpRelay();
  ~TcpRelay();
  const std::string& address() const { return address_; }
  // "127.0.0.1:port" to relay to; before the first connection comes.
  void SetTarget(const std::string& target);
  void Pause();
  void Resume();
  // Bytes relayed so far from accepting side to target, over all pairs.
  uint64_t forwarded() const { return forwarded_.load(); }
  // Flips (xor 0x01) the byte at `offset` of that count: an on-path
  // attacker altering one byte of the stream.
  void FlipByteAt(uint64_t offset) { flip_at_.store(offset); }

 private:
  void Run();
  void Wake();

  std::string address_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<int> target_port_{0};
  std::atomic<bool> paused_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> flip_at_{UINT64_MAX};
  std::thread thread_;
};

}  // namespace troupe::nettest

#endif  // TROUPE_NET_NODE_TEST_UTIL_H_
