// The benchmark suite: every workload on troupe and on CAF in one run.
//
//   ./tools/bazel run -c opt //bench:suite                       # the table
//   ./tools/bazel run -c opt //bench:suite -- --only=skynet,pingpong
//   ./tools/bazel run -c opt //bench:suite -- --json             # JSON lines
//   ./tools/bazel run -c opt //bench:suite -- --scale --json_out=scale.jsonl   # cost curves
//
// Each (workload, system) pair runs in a child process (this binary again,
// with --run_one), so threads, heap and resident memory of one never reach
// another's figures. A child prints its measurements as tab-separated lines;
// a failed check or a crash fails the suite, loudly, with the child's error.
// See docs/benchmarks.md.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/remote.h"
#include "bench/workload.h"

ABSL_FLAG(std::vector<std::string>, only, {}, "comma-separated workloads to run (default: all)");
ABSL_FLAG(bool, json, false, "print one JSON object per measurement instead of the table");
ABSL_FLAG(std::string, json_out, "", "also write the JSON lines to this file (the table still prints)");
ABSL_FLAG(std::string, run_one, "", "internal: run <workload>:<troupe|troupe-tls|caf|floor> in this process");
ABSL_FLAG(absl::Duration, child_timeout, absl::Minutes(3), "kill a workload that runs longer");
ABSL_FLAG(bool, list, false, "list the workloads and exit");

ABSL_FLAG(int, workers, 0, "scheduler threads for both systems (0: hardware threads)");
ABSL_FLAG(int64_t, skynet_leaves, 1000000, "skynet: leaf actors (a power of 10)");
ABSL_FLAG(int64_t, pingpong_round_trips, 1000000, "pingpong: round trips of the one pair");
ABSL_FLAG(int, pingpong_pairs, 100, "pingpong-pairs: pairs at once");
ABSL_FLAG(int64_t, pingpong_pairs_round_trips, 20000, "pingpong-pairs: round trips per pair");
ABSL_FLAG(int, fanin_senders, 20, "fan-in: sending threads");
ABSL_FLAG(int64_t, fanin_messages, 500000, "fan-in: messages per sender");
ABSL_FLAG(int, forkjoin_actors, 60, "forkjoin-throughput: actors");
ABSL_FLAG(int64_t, forkjoin_messages, 10000, "forkjoin-throughput: messages per actor");
ABSL_FLAG(int64_t, forkjoin_creation_actors, 40000, "forkjoin-creation: actors");
ABSL_FLAG(int, threadring_actors, 100, "threadring: actors in the ring");
ABSL_FLAG(int64_t, threadring_hops, 1000000, "threadring: hops of the token");
ABSL_FLAG(int, chameneos_creatures, 100, "chameneos: creatures");
ABSL_FLAG(int64_t, chameneos_meetings, 200000, "chameneos: meetings");
ABSL_FLAG(int, big_actors, 120, "big: actors");
ABSL_FLAG(int64_t, big_pings, 20000, "big: pings per actor");
ABSL_FLAG(int64_t, spawn_idle_actors, 1000000, "spawn-idle: actors");
ABSL_FLAG(int, ask_latency_samples, 20000, "ask-latency: timed round trips");
ABSL_FLAG(double, idle_seconds, 2.0, "idle-cpu: seconds measured");
ABSL_FLAG(int64_t, restart_failures, 100000, "restart: failures (and restarts) of the one child");
ABSL_FLAG(int64_t, link_fanout_actors, 100000, "link-fanout: actors linked to the one that fails");
ABSL_FLAG(int64_t, remote_rtt_samples, 20000, "remote-rtt: timed round trips");
ABSL_FLAG(int64_t, entity_rtt_samples, 5000, "entity-rtt: timed asks of each kind (and keys activated)");
ABSL_FLAG(int64_t, entity_handoff_entities, 100000, "entity-handoff: entities active when the fourth member joins");
ABSL_FLAG(int64_t, remote_oneway_messages, 1000000, "remote-oneway: messages");
ABSL_FLAG(int, oneway_peers, 1, "remote-oneway-peers: sender processes");
ABSL_FLAG(int64_t, oneway_peer_messages, 250000, "remote-oneway-peers: messages per sender process");
ABSL_FLAG(int, ask_load_percent, 0, "ask-under-load: background load in % of the saturated rate");

ABSL_FLAG(bool, scale, false, "print the cost curves (each point a child run) instead of the table");
ABSL_FLAG(std::vector<std::string>, scale_skynet_leaves, std::vector<std::string>({"100000", "1000000", "10000000"}),
          "--scale: skynet's leaf counts");
ABSL_FLAG(std::vector<std::string>, scale_peers, std::vector<std::string>({"1", "4", "16"}),
          "--scale: remote-oneway-peers' sender process counts");
ABSL_FLAG(std::vector<std::string>, scale_loads, std::vector<std::string>({"0", "50", "90"}),
          "--scale: ask-under-load's load levels, % of saturated");
ABSL_FLAG(std::string, oneway_peer_sender, "", "internal: be a remote-oneway-peers sender of host:port/name");

namespace troupe::bench {
namespace {

Sizes SizesFromFlags() {
  Sizes s;
  s.workers = absl::GetFlag(FLAGS_workers);
  s.skynet_leaves = absl::GetFlag(FLAGS_skynet_leaves);
  s.pingpong_round_trips = absl::GetFlag(FLAGS_pingpong_round_trips);
  s.pingpong_pairs = absl::GetFlag(FLAGS_pingpong_pairs);
  s.pingpong_pairs_round_trips = absl::GetFlag(FLAGS_pingpong_pairs_round_trips);
  s.fanin_senders = absl::GetFlag(FLAGS_fanin_senders);
  s.fanin_messages = absl::GetFlag(FLAGS_fanin_messages);
  s.forkjoin_actors = absl::GetFlag(FLAGS_forkjoin_actors);
  s.forkjoin_messages = absl::GetFlag(FLAGS_forkjoin_messages);
  s.forkjoin_creation_actors = absl::GetFlag(FLAGS_forkjoin_creation_actors);
  s.threadring_actors = absl::GetFlag(FLAGS_threadring_actors);
  s.threadring_hops = absl::GetFlag(FLAGS_threadring_hops);
  s.chameneos_creatures = absl::GetFlag(FLAGS_chameneos_creatures);
  s.chameneos_meetings = absl::GetFlag(FLAGS_chameneos_meetings);
  s.big_actors = absl::GetFlag(FLAGS_big_actors);
  s.big_pings = absl::GetFlag(FLAGS_big_pings);
  s.spawn_idle_actors = absl::GetFlag(FLAGS_spawn_idle_actors);
  s.ask_latency_samples = absl::GetFlag(FLAGS_ask_latency_samples);
  s.idle_seconds = absl::GetFlag(FLAGS_idle_seconds);
  s.restart_failures = absl::GetFlag(FLAGS_restart_failures);
  s.link_fanout_actors = absl::GetFlag(FLAGS_link_fanout_actors);
  s.remote_rtt_samples = absl::GetFlag(FLAGS_remote_rtt_samples);
  s.remote_oneway_messages = absl::GetFlag(FLAGS_remote_oneway_messages);
  s.entity_rtt_samples = absl::GetFlag(FLAGS_entity_rtt_samples);
  s.entity_handoff_entities = absl::GetFlag(FLAGS_entity_handoff_entities);
  s.oneway_peers = absl::GetFlag(FLAGS_oneway_peers);
  s.oneway_peer_messages = absl::GetFlag(FLAGS_oneway_peer_messages);
  s.ask_load_percent = absl::GetFlag(FLAGS_ask_load_percent);
  return s;
}

// Size flags passed on to every child, so it runs at the parent's sizes.
std::vector<std::string> SizeFlagsForChild() {
  std::vector<std::string> args;
  for (const char* name :
       {"workers", "skynet_leaves", "pingpong_round_trips", "pingpong_pairs", "pingpong_pairs_round_trips",
        "fanin_senders", "fanin_messages", "forkjoin_actors", "forkjoin_messages", "forkjoin_creation_actors",
        "threadring_actors", "threadring_hops", "chameneos_creatures", "chameneos_meetings", "big_actors",
        "big_pings", "spawn_idle_actors", "ask_latency_samples", "idle_seconds", "restart_failures",
        "link_fanout_actors", "remote_rtt_samples", "remote_oneway_messages", "entity_rtt_samples",
        "entity_handoff_entities", "oneway_peers", "oneway_peer_messages", "ask_load_percent"}) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    args.push_back(absl::StrCat("--", name, "=", flag->CurrentValue()));
  }
  return args;
}

// A workload of the table or of the cost curves, by name.
const Workload* FindWorkload(const std::string& name) {
  for (const std::vector<Workload>* list : {&AllWorkloads(), &ScaleWorkloads()}) {
    for (const Workload& w : *list) {
      if (name == w.name) return &w;
    }
  }
  return nullptr;
}

// The function that runs `w` on `system` ("troupe", "troupe-tls", "caf" or
// "floor"); nullptr if there is none (yet).
WorkloadFn SystemFn(const Workload& w, const std::string& system) {
  if (system == "troupe") return w.troupe;
  if (system == "troupe-tls") return w.troupe_tls;
  if (system == "caf") return w.caf;
  if (system == "floor") return w.floor;
  return nullptr;
}

// Child mode: run one workload on one system, print "metric\tvalue\tunit\thigher".
int RunOne(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  const Workload* w = parts.size() == 2 ? FindWorkload(parts[0]) : nullptr;
  WorkloadFn fn = w != nullptr ? SystemFn(*w, parts[1]) : nullptr;
  if (fn == nullptr) {
    std::fprintf(stderr, "--run_one wants <workload>:<troupe|troupe-tls|caf|floor> that exists, got '%s'\n",
                 spec.c_str());
    return 2;
  }
  absl::StatusOr<std::vector<Measurement>> result = fn(SizesFromFlags());
  if (!result.ok()) {
    std::fprintf(stderr, "%s on %s failed: %s\n", w->name, parts[1].c_str(), result.status().ToString().c_str());
    return 1;
  }
  for (const Measurement& m : *result) {
    std::printf("%s\t%.9g\t%s\t%d\n", m.metric.c_str(), m.value, m.unit.c_str(), m.higher_is_better ? 1 : 0);
  }
  std::fflush(stdout);
  return 0;
}

struct ChildResult {
  bool ok = false;
  bool absent = false;  // the system has no such workload (yet): n/a, not a failure
  std::string error;
  std::vector<Measurement> measurements;
};

// Runs this binary with --run_one=<spec>, collecting its stdout; stderr
// passes through. Kills it after --child_timeout.
ChildResult RunChild(const std::string& self, const std::string& spec) {
  ChildResult out;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    out.error = "pipe failed";
    return out;
  }
  std::vector<std::string> args = {self, "--run_one=" + spec};
  for (std::string& a : SizeFlagsForChild()) args.push_back(std::move(a));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  pid_t pid;
  const int spawned = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    out.error = absl::StrCat("could not start ", self);
    return out;
  }
  std::string text;
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_child_timeout);
  bool timed_out = false;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out) {
    out.error = absl::StrCat("timed out after ", absl::FormatDuration(absl::GetFlag(FLAGS_child_timeout)));
    return out;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.error = WIFSIGNALED(status) ? absl::StrCat("killed by signal ", WTERMSIG(status))
                                    : absl::StrCat("exit code ", WEXITSTATUS(status));
    return out;
  }
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    Measurement m;
    if (f.size() != 4 || !absl::SimpleAtod(f[1], &m.value)) {
      out.error = absl::StrCat("unreadable line from the workload: ", line);
      return out;
    }
    m.metric = f[0];
    m.unit = f[2];
    m.higher_is_better = f[3] == "1";
    out.measurements.push_back(std::move(m));
  }
  out.ok = true;
  return out;
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// How many times better troupe is than CAF on one measurement (> 1: better).
double Advantage(const Measurement& troupe, const Measurement& caf) {
  if (troupe.value <= 0 || caf.value <= 0) return 0;
  return troupe.higher_is_better ? troupe.value / caf.value : caf.value / troupe.value;
}

// The system troupe's target on a workload is set against: "caf", or for
// remote-rtt "floor" (the raw TCP floor, bench/remote.h).
const char* Baseline(absl::string_view workload) { return workload == "remote-rtt" ? "floor" : "caf"; }

// The target for one (workload, metric), as "troupe at least N times better
// than the baseline" (below 1: at most 1/N times worse); 0 when the target
// is not a ratio. Written into the JSON lines, which is where bench/chart.sh
// reads it.
double Target(absl::string_view workload, absl::string_view metric) {
  if (workload == "remote-rtt") return metric == "p50" ? 1 / 1.3 : 0;  // at most 1.3x the floor
  if (workload == "remote-oneway") return metric == "throughput" ? 20 : 0;
  if (workload == "skynet") return 8;
  if (workload == "spawn-idle") return metric == "bytes_per_actor" ? 8 : 10;
  if (workload == "pingpong" || workload == "pingpong-pairs" || workload == "fan-in") {
    return metric == "throughput" ? 5 : 0;
  }
  if (workload == "ask-latency") return metric == "p50" ? 4 : 0;
  if (workload == "idle-cpu") return 0;
  return 3;  // the Savina workloads
}

// The target of troupe over TLS ("troupe-tls") against troupe's plaintext
// figure of the same run, in Target's terms (times better; below 1: at most
// 1/N times worse); 0 when there is none. The rtt p50 at most 1.2x
// plaintext's, the one-way throughput at most 1.5x lower.
double TlsTarget(absl::string_view workload, absl::string_view metric) {
  if (workload == "remote-rtt") return metric == "p50" ? 1 / 1.2 : 0;
  if (workload == "remote-oneway") return metric == "throughput" ? 1 / 1.5 : 0;
  return 0;
}

std::string FormatValue(double v, const std::string& unit) {
  if (unit == "msg/s") return absl::StrFormat("%.2f M/s", v / 1e6);
  if (unit == "s") return v < 1 ? absl::StrFormat("%.1f ms", v * 1e3) : absl::StrFormat("%.3f s", v);
  if (unit == "us") return absl::StrFormat("%.2f us", v);
  if (unit == "B") return absl::StrFormat("%.0f B", v);
  if (unit == "%") return absl::StrFormat("%.3f %%", v);
  return absl::StrFormat("%.4g %s", v, unit);
}

// The measurement of `metric` in `result`, or nullptr.
const Measurement* FindMetric(const ChildResult& result, const std::string& metric) {
  for (const Measurement& m : result.measurements) {
    if (m.metric == metric) return &m;
  }
  return nullptr;
}

// The remote workloads (those with a floor) print in a table of their own,
// with the floor as a third figure and the ratio against the baseline. Where
// troupe also ran over TLS, rows "<workload>-tls" follow: troupe's TLS
// figures, and as the ratio what TLS costs against troupe's plaintext
// figures of the same run.
void PrintRemoteHeader() {
  std::printf("%-20s %-16s %14s %14s %14s %10s %14s\n", "remote workload", "metric", "troupe", "CAF", "TCP floor",
              "ratio", "target");
}

void PrintRemoteRows(const Workload& w, const ChildResult& troupe, const ChildResult& troupe_tls,
                     const ChildResult& caf, const ChildResult& floor) {
  const bool against_floor = std::string(Baseline(w.name)) == "floor";
  const ChildResult& base = against_floor ? floor : caf;
  // The rows: every metric any of the three reported, in the order of the
  // first that reported any.
  const ChildResult& rows = !troupe.measurements.empty() ? troupe : !caf.measurements.empty() ? caf : floor;
  auto figure = [](const ChildResult& r, const std::string& metric) -> std::string {
    if (r.absent) return "n/a";
    const Measurement* m = FindMetric(r, metric);
    return m != nullptr ? FormatValue(m->value, m->unit) : "failed";
  };
  for (const Measurement& row : rows.measurements) {
    const Measurement* t = FindMetric(troupe, row.metric);
    const Measurement* b = FindMetric(base, row.metric);
    const double target = Target(w.name, row.metric);
    std::string ratio = "-", goal;
    double advantage = 0;  // times better than the baseline
    if (t != nullptr && b != nullptr) {
      advantage = Advantage(*t, *b);
      ratio = absl::StrFormat("%.2fx", against_floor ? (advantage > 0 ? 1 / advantage : 0) : advantage);
    }
    if (target > 0) {
      goal = against_floor ? absl::StrFormat("<=%.3gx floor", 1 / target) : absl::StrFormat(">=%.3gx CAF", target);
      if (advantage > 0 && advantage >= target * (1 - 1e-9)) goal = "met " + goal;
    }
    std::printf("%-20s %-16s %14s %14s %14s %10s %14s\n", w.name, row.metric.c_str(), figure(troupe, row.metric).c_str(),
                figure(caf, row.metric).c_str(), figure(floor, row.metric).c_str(), ratio.c_str(), goal.c_str());
  }
  if (w.troupe_tls == nullptr) {
    std::fflush(stdout);
    return;
  }
  const std::string tls_name = absl::StrCat(w.name, "-tls");
  for (const Measurement& row : rows.measurements) {
    const Measurement* t = FindMetric(troupe_tls, row.metric);
    const Measurement* plain = FindMetric(troupe, row.metric);
    const double target = TlsTarget(w.name, row.metric);
    std::string ratio = "-", goal;
    double advantage = 0;  // times better than plaintext: below 1
    if (t != nullptr && plain != nullptr) {
      advantage = Advantage(*t, *plain);
      ratio = absl::StrFormat("%.2fx", advantage > 0 ? 1 / advantage : 0);
    }
    if (target > 0) {
      goal = absl::StrFormat("<=%.3gx plain", 1 / target);
      if (advantage > 0 && advantage >= target * (1 - 1e-9)) goal = "met " + goal;
    }
    std::printf("%-20s %-16s %14s %14s %14s %10s %14s\n", tls_name.c_str(), row.metric.c_str(),
                figure(troupe_tls, row.metric).c_str(), "-", "-", ratio.c_str(), goal.c_str());
  }
  std::fflush(stdout);
}

// Opens --json_out for writing, if given (`file` stays null if not); false,
// saying why, if it cannot be written.
bool OpenJsonOut(FILE*& file) {
  const std::string path = absl::GetFlag(FLAGS_json_out);
  if (path.empty()) return true;
  file = std::fopen(path.c_str(), "w");
  if (file != nullptr) return true;
  std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return false;
}

int RunSuite(const std::string& self) {
  std::vector<const Workload*> chosen;
  const std::vector<std::string> only = absl::GetFlag(FLAGS_only);
  for (const std::string& name : only) {
    if (std::none_of(AllWorkloads().begin(), AllWorkloads().end(),
                     [&name](const Workload& w) { return name == w.name; })) {
      std::fprintf(stderr, "unknown workload '%s'; --list shows them\n", name.c_str());
      return 2;
    }
  }
  for (const Workload& w : AllWorkloads()) {
    if (only.empty() || std::find(only.begin(), only.end(), w.name) != only.end()) chosen.push_back(&w);
  }
  const bool json = absl::GetFlag(FLAGS_json);
  FILE* json_file = nullptr;
  if (!OpenJsonOut(json_file)) return 2;
  int failures = 0;
  bool table_header = false, remote_header = false;
  auto end_table = [&table_header] {
    if (!table_header) return;
    std::printf("advantage: how many times better troupe is (CAF time / troupe time, or troupe rate / CAF rate)\n");
    table_header = false;
  };
  for (const Workload* w : chosen) {
    // troupe, CAF, and for the remote workloads troupe over TLS (run right
    // after plaintext troupe, so the two are measured close together) and
    // the floor; a system without the workload (a nullptr) is absent.
    std::vector<std::pair<const char*, ChildResult>> results;
    for (const char* system : {"troupe", "troupe-tls", "caf", "floor"}) {
      if (std::string(system) == "floor" && w->floor == nullptr) continue;
      if (std::string(system) == "troupe-tls" && w->troupe_tls == nullptr) continue;
      ChildResult r;
      r.absent = SystemFn(*w, system) == nullptr;
      if (!r.absent) r = RunChild(self, absl::StrCat(w->name, ":", system));
      results.emplace_back(system, std::move(r));
    }
    for (const auto& [system, result] : results) {
      if (!result.ok && !result.absent) {
        ++failures;
        std::fprintf(stderr, "FAILED: %s on %s: %s\n", w->name, system, result.error.c_str());
      }
    }
    for (const auto& [system, result] : results) {
      // troupe-tls's target is set against plaintext troupe (TlsTarget).
      const bool tls = std::string(system) == "troupe-tls";
      for (const Measurement& m : result.measurements) {
        const std::string line =
            absl::StrFormat("{\"workload\": %s, \"system\": %s, \"metric\": %s, \"value\": %.9g, \"unit\": %s, "
                            "\"target\": %g, \"baseline\": %s}\n",
                            JsonString(w->name), JsonString(system), JsonString(m.metric), m.value,
                            JsonString(m.unit), tls ? TlsTarget(w->name, m.metric) : Target(w->name, m.metric),
                            JsonString(tls ? "troupe" : Baseline(w->name)));
        if (json) std::fputs(line.c_str(), stdout);
        if (json_file != nullptr) std::fputs(line.c_str(), json_file);
      }
    }
    if (json) {
      std::fflush(stdout);
      continue;
    }
    auto result_of = [&results](absl::string_view system) -> const ChildResult& {
      static const ChildResult kNone;
      for (const auto& [name, result] : results) {
        if (system == name) return result;
      }
      return kNone;
    };
    const ChildResult& troupe = result_of("troupe");
    const ChildResult& caf = result_of("caf");
    if (w->floor != nullptr) {
      if (!remote_header) {
        if (table_header) {
          end_table();
          std::printf("\n");
        }
        PrintRemoteHeader();
        remote_header = true;
      }
      PrintRemoteRows(*w, troupe, result_of("troupe-tls"), caf, result_of("floor"));
      continue;
    }
    if (!table_header) {
      std::printf("%-20s %-16s %14s %14s %10s %8s\n", "workload", "metric", "troupe", "CAF", "advantage", "target");
      table_header = true;
    }
    for (const Measurement& t : troupe.measurements) {
      const Measurement* c = FindMetric(caf, t.metric);
      const double target = Target(w->name, t.metric);
      std::string advantage = "-", met = "";
      if (c != nullptr) {
        const double a = Advantage(t, *c);
        advantage = absl::StrFormat("%.2fx", a);
        if (target > 0) met = absl::StrFormat("%s%.0fx", a >= target ? "met " : "", target);
      }
      if (std::string(w->name) == "idle-cpu") met = t.value < 1.0 ? "met <1%" : "<1%";
      std::printf("%-20s %-16s %14s %14s %10s %8s\n", w->name, t.metric.c_str(), FormatValue(t.value, t.unit).c_str(),
                  c ? FormatValue(c->value, c->unit).c_str() : "-", advantage.c_str(), met.c_str());
    }
    std::fflush(stdout);
  }
  if (!json) {
    end_table();
    if (remote_header) {
      std::printf("ratio: against the floor, troupe / floor (lower is better); against CAF, how many times better\n"
                  "troupe is; n/a: troupe's side of the workload is not written yet\n"
                  "-tls rows: troupe with TLS 1.3 links; ratio: what TLS costs against troupe's plaintext figure\n"
                  "above (TLS time / plaintext time, plaintext rate / TLS rate; lower is better)\n");
    }
  }
  if (json_file != nullptr) std::fclose(json_file);
  if (failures > 0) {
    std::fprintf(stderr, "%d workload run(s) FAILED\n", failures);
    return 1;
  }
  return 0;
}

// --scale: the cost curves. Each curve runs one workload at several values
// of one size flag, each point in its own child process (as in the table),
// on every system the workload has.
struct Curve {
  const char* name;
  const char* workload;    // in ScaleWorkloads()
  const char* size_flag;   // the Sizes flag the points set
  const char* x_unit;
  std::vector<std::string> points;
};

int RunScale(const std::string& self) {
  const std::vector<Curve> curves = {
      {"skynet", "skynet-peak", "skynet_leaves", "leaves", absl::GetFlag(FLAGS_scale_skynet_leaves)},
      {"oneway-peers", "remote-oneway-peers", "oneway_peers", "senders", absl::GetFlag(FLAGS_scale_peers)},
      {"ask-load", "ask-under-load", "ask_load_percent", "% load", absl::GetFlag(FLAGS_scale_loads)},
  };
  FILE* json_file = nullptr;
  if (!OpenJsonOut(json_file)) return 2;
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) {
    std::printf("%-14s %10s %-8s %-9s %-22s %14s %12s\n", "curve", "x", "", "system", "metric", "value",
                "value ratio");
  }
  int failures = 0;
  for (const Curve& curve : curves) {
    const Workload* w = FindWorkload(curve.workload);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(curve.size_flag);
    const std::string saved = flag->CurrentValue();
    for (const char* system : {"troupe", "caf"}) {
      if (SystemFn(*w, system) == nullptr) continue;
      std::vector<Measurement> previous;
      for (const std::string& x : curve.points) {
        std::string error;
        if (!flag->ParseFrom(x, &error)) {
          std::fprintf(stderr, "--scale: %s=%s: %s\n", curve.size_flag, x.c_str(), error.c_str());
          return 2;
        }
        ChildResult r = RunChild(self, absl::StrCat(w->name, ":", system));
        if (!r.ok) {
          ++failures;
          std::fprintf(stderr, "FAILED: %s on %s at %s=%s: %s\n", w->name, system, curve.size_flag, x.c_str(),
                       r.error.c_str());
          continue;
        }
        for (const Measurement& m : r.measurements) {
          const std::string line = absl::StrFormat(
              "{\"curve\": %s, \"x\": %s, \"x_unit\": %s, \"workload\": %s, \"system\": %s, \"metric\": %s, "
              "\"value\": %.9g, \"unit\": %s}\n",
              JsonString(curve.name), x, JsonString(curve.x_unit), JsonString(w->name), JsonString(system),
              JsonString(m.metric), m.value, JsonString(m.unit));
          if (json) std::fputs(line.c_str(), stdout);
          if (json_file != nullptr) std::fputs(line.c_str(), json_file);
          if (json) continue;
          // How much the figure grew since the curve's previous point.
          std::string ratio = "-";
          for (const Measurement& p : previous) {
            if (p.metric == m.metric && p.value > 0) ratio = absl::StrFormat("%.2fx", m.value / p.value);
          }
          std::printf("%-14s %10s %-8s %-9s %-22s %14s %12s\n", curve.name, x.c_str(), curve.x_unit, system,
                      m.metric.c_str(), FormatValue(m.value, m.unit).c_str(), ratio.c_str());
        }
        std::fflush(stdout);
        previous = std::move(r.measurements);
      }
    }
    std::string error;
    flag->ParseFrom(saved, &error);
  }
  if (!json) std::printf("value ratio: the figure against the curve's previous point (x grows by the x column)\n");
  if (json_file != nullptr) std::fclose(json_file);
  if (failures > 0) {
    std::fprintf(stderr, "%d curve point(s) FAILED\n", failures);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace troupe::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_list)) {
    for (const troupe::bench::Workload& w : troupe::bench::AllWorkloads()) {
      std::printf("%-20s %s\n", w.name, w.description);
    }
    return 0;
  }
  const std::string run_one = absl::GetFlag(FLAGS_run_one);
  if (!run_one.empty()) return troupe::bench::RunOne(run_one);
  if (const std::string target = absl::GetFlag(FLAGS_oneway_peer_sender); !target.empty()) {
    return troupe::bench::RunOnewayPeerSender(target, absl::GetFlag(FLAGS_oneway_peer_messages));
  }
  // The children are this same binary.
  const std::string self = troupe::bench::SelfExecutable();
  if (self.empty()) {
    std::fprintf(stderr, "cannot find my own executable\n");
    return 1;
  }
  if (absl::GetFlag(FLAGS_scale)) return troupe::bench::RunScale(self);
  return troupe::bench::RunSuite(self);
}
