// mailbox_bench: troupe's Inbox (mailbox/inbox.h) against moodycamel
// ConcurrentQueue used as a per-actor mailbox, both in the same run.
//
// Measurements (docs/mailbox.md has the figures and the decision):
//  1. Bytes per idle mailbox: sizeof plus the heap bytes moodycamel asks for
//     through its Traits::malloc/free hooks, fresh, after one producer thread
//     has enqueued and the consumer drained, and after a second, different
//     producer thread has done the same. The Inbox never allocates.
//  2. Throughput, 1 producer -> 1 consumer and 2 producers -> 1 consumer: the
//     producers send heap-allocated Message nodes (as troupe does), the
//     consumer checks them and deletes them. Median of --reps repetitions, the
//     designs back to back within each repetition so they see the same noise,
//     their order rotating from one repetition to the next.
//     Then the two sides apart: one thread pushes --messages with no consumer
//     running, then the consumer drains them (ns per message for each).
//  3. Many idle mailboxes: --mailboxes of each kind, each sent one message by
//     one of two threads and drained; counted bytes and growth of resident
//     anonymous memory (/proc/self/statm), each kind in a child process of
//     its own.
//
// Every measurement checks its result (every message received exactly once,
// per-producer order, no heap bytes left after destruction) and exits 1 with
// a "FAILED" line if anything is wrong. The throughput figures depend on the
// machine and its load; nothing here asserts a speed.
//
//   ./tools/bazel run -c opt //mailbox:mailbox_bench [-- --messages=N --reps=N --mailboxes=N]
//
// The heap counters are process-wide because moodycamel's Traits hooks are
// static functions; this binary measures one thing at a time.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "concurrentqueue/concurrentqueue.h"
#include "mailbox/inbox.h"

ABSL_FLAG(int64_t, messages, 4'000'000,
          "Messages per throughput run, split evenly between the producers.");
ABSL_FLAG(int, reps, 8,
          "Timed repetitions of each throughput run, after one untimed; the median is "
          "reported. A multiple of 4 gives each design each place in the order equally.");
ABSL_FLAG(int, mailboxes, 100'000, "Mailboxes of each kind in the many-idle-mailboxes test.");

namespace troupe {
namespace {

template <typename... Args>
[[noreturn]] void Fail(const absl::FormatSpec<Args...>& format, const Args&... args) {
  absl::FPrintF(stderr, "mailbox_bench: FAILED: %s\n", absl::StrFormat(format, args...));
  std::exit(1);
}

// ---------------------------------------------------------------------------
// Counting the heap bytes moodycamel allocates.

struct HeapCount {
  // Written by whichever thread moodycamel allocates or frees on; read by the
  // main thread only after those threads have synchronized with it (semaphore,
  // latch or join), so relaxed increments are enough.
  static inline std::atomic<int64_t> bytes{0};
  static inline std::atomic<int64_t> allocations{0};

  static int64_t Bytes() { return bytes.load(std::memory_order_relaxed); }
};

// moodycamel's traits with the sizes as parameters and malloc/free that count
// the bytes asked for (not the allocator's own overhead; the resident-memory
// figure of measurement 3 includes that).
template <size_t kBlockSize, size_t kIndexSize, size_t kProducerHashSize>
struct CountingTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const size_t BLOCK_SIZE = kBlockSize;
  static const size_t EXPLICIT_INITIAL_INDEX_SIZE = kIndexSize;
  static const size_t IMPLICIT_INITIAL_INDEX_SIZE = kIndexSize;
  static const size_t INITIAL_IMPLICIT_PRODUCER_HASH_SIZE = kProducerHashSize;

  // The size is kept in front of the block; 16 bytes keep malloc's alignment.
  static constexpr size_t kHeader = 16;

  static void* malloc(size_t size) {
    void* raw = std::malloc(size + kHeader);
    if (raw == nullptr) return nullptr;
    std::memcpy(raw, &size, sizeof(size));
    HeapCount::bytes.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
    HeapCount::allocations.fetch_add(1, std::memory_order_relaxed);
    return static_cast<char*>(raw) + kHeader;
  }

  static void free(void* p) {
    if (p == nullptr) return;
    void* raw = static_cast<char*>(p) - kHeader;
    size_t size;
    std::memcpy(&size, raw, sizeof(size));
    HeapCount::bytes.fetch_sub(static_cast<int64_t>(size), std::memory_order_relaxed);
    HeapCount::allocations.fetch_sub(1, std::memory_order_relaxed);
    std::free(raw);
  }
};

// moodycamel's own defaults, counted.
using DefaultTraits = CountingTraits<32, 32, 32>;
static_assert(DefaultTraits::BLOCK_SIZE == moodycamel::ConcurrentQueueDefaultTraits::BLOCK_SIZE);
static_assert(DefaultTraits::IMPLICIT_INITIAL_INDEX_SIZE ==
              moodycamel::ConcurrentQueueDefaultTraits::IMPLICIT_INITIAL_INDEX_SIZE);
static_assert(DefaultTraits::INITIAL_IMPLICIT_PRODUCER_HASH_SIZE ==
              moodycamel::ConcurrentQueueDefaultTraits::INITIAL_IMPLICIT_PRODUCER_HASH_SIZE);

// Shrunk to the minimum moodycamel accepts for a mailbox with a few producers:
// 2-element blocks and 2-entry block indexes. The producer hash stays at 8: a
// smaller one makes the empty queue smaller but is reallocated when the first
// or second producer arrives, and is then larger after two producers.
using TinyTraits = CountingTraits<2, 2, 8>;

// ---------------------------------------------------------------------------
// The message and the mailboxes under test.

struct BenchMessage final : Message {
  BenchMessage(uint32_t p, uint64_t s) noexcept : Message(Kind::kUser), producer(p), seq(s) {}
  void Deliver(void*) override {}
  bool Bounce(const absl::Status&) noexcept override { return true; }

  uint32_t producer;
  uint64_t seq;
};

// Each mailbox: Push from any thread, Pop from the one consumer.

class InboxMailbox {
 public:
  void Push(BenchMessage* m) noexcept {
    // Started as scheduled and never blocked, so every push finds the
    // consumer running.
    if (inbox_.Push(m) != Inbox::PushResult::kQueued) Fail("inbox: push not queued");
  }
  BenchMessage* Pop() noexcept { return static_cast<BenchMessage*>(inbox_.Pop()); }

 private:
  Inbox inbox_{/*scheduled=*/true};
};

template <typename Traits, size_t kCapacity>
class MoodyMailbox {
 public:
  MoodyMailbox() : queue_(kCapacity) {}
  void Push(BenchMessage* m) noexcept {
    if (!queue_.enqueue(m)) Fail("moodycamel: enqueue failed");
  }
  BenchMessage* Pop() noexcept {
    BenchMessage* m = nullptr;
    return queue_.try_dequeue(m) ? m : nullptr;
  }

 private:
  moodycamel::ConcurrentQueue<BenchMessage*, Traits> queue_;
};

// The consumer takes up to kBatch messages per dequeue, as the Inbox takes
// everything at once.
template <typename Traits, size_t kCapacity, size_t kBatch>
class MoodyBulkMailbox {
 public:
  MoodyBulkMailbox() : queue_(kCapacity) {}
  void Push(BenchMessage* m) noexcept {
    if (!queue_.enqueue(m)) Fail("moodycamel: enqueue failed");
  }
  BenchMessage* Pop() noexcept {
    if (next_ == size_) {
      next_ = 0;
      size_ = queue_.try_dequeue_bulk(batch_, kBatch);
      if (size_ == 0) return nullptr;
    }
    return batch_[next_++];
  }

 private:
  moodycamel::ConcurrentQueue<BenchMessage*, Traits> queue_;
  BenchMessage* batch_[kBatch];
  size_t size_ = 0;
  size_t next_ = 0;
};

constexpr size_t kDefaultCapacity = 6 * moodycamel::ConcurrentQueueDefaultTraits::BLOCK_SIZE;

using MoodyDefault = MoodyMailbox<DefaultTraits, kDefaultCapacity>;
using MoodyEmpty = MoodyMailbox<DefaultTraits, 0>;
using MoodyTiny = MoodyMailbox<TinyTraits, 0>;
using MoodyDefaultBulk = MoodyBulkMailbox<DefaultTraits, kDefaultCapacity, 64>;

// ---------------------------------------------------------------------------
// Checks.

// Consumer side: each producer's messages arrive once each, in send order.
class OrderCheck {
 public:
  OrderCheck(const char* what, int producers) : what_(what), next_(producers, 0) {}

  void Take(const BenchMessage& m) {
    if (m.producer >= next_.size()) Fail("%s: message from unknown producer %u", what_, m.producer);
    if (m.seq != next_[m.producer]) {
      Fail("%s: producer %u: got message %u, expected %u", what_, m.producer, m.seq,
           next_[m.producer]);
    }
    ++next_[m.producer];
  }

  void ExpectAll(uint64_t per_producer) const {
    for (size_t p = 0; p < next_.size(); ++p) {
      if (next_[p] != per_producer) {
        Fail("%s: producer %u: received %u of %u", what_, p, next_[p], per_producer);
      }
    }
  }

 private:
  const char* what_;
  std::vector<uint64_t> next_;
};

template <typename Box>
void ExpectEmpty(Box& box, const char* what) {
  if (BenchMessage* m = box.Pop(); m != nullptr) {
    Fail("%s: unexpected message from producer %u", what, m->producer);
  }
}

// A producer thread that runs `push` and then stays alive until destroyed, so
// that two producers are two live threads at once (moodycamel tells threads
// apart by the address of a thread-local, which a later thread may reuse).
class ParkedProducer {
 public:
  template <typename Fn>
  explicit ParkedProducer(Fn push)
      : thread_([this, push] {
          push();
          pushed_.release();
          leave_.acquire();
        }) {
    pushed_.acquire();  // pairs with the release above: the push is visible
  }
  ~ParkedProducer() {
    leave_.release();
    thread_.join();
  }

 private:
  std::binary_semaphore pushed_{0};
  std::binary_semaphore leave_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// 1. Bytes per idle mailbox.

struct IdleBytes {
  int64_t fresh;
  int64_t one_producer;
  int64_t two_producers;
};

template <typename Box>
IdleBytes MeasureIdle(const char* what) {
  const int64_t base = HeapCount::Bytes();
  auto box = std::make_unique<Box>();
  const auto total = [&] { return static_cast<int64_t>(sizeof(Box)) + HeapCount::Bytes() - base; };
  IdleBytes r;
  r.fresh = total();
  {
    OrderCheck check(what, 2);
    ParkedProducer first([&] { box->Push(new BenchMessage(0, 0)); });
    BenchMessage* m = box->Pop();
    if (m == nullptr) Fail("%s: first producer's message missing", what);
    check.Take(*m);
    delete m;
    ExpectEmpty(*box, what);
    r.one_producer = total();

    ParkedProducer second([&] { box->Push(new BenchMessage(1, 0)); });
    m = box->Pop();
    if (m == nullptr) Fail("%s: second producer's message missing", what);
    check.Take(*m);
    delete m;
    ExpectEmpty(*box, what);
    r.two_producers = total();
    check.ExpectAll(1);
  }
  box.reset();
  if (HeapCount::Bytes() != base) Fail("%s: %d heap bytes left", what, HeapCount::Bytes() - base);
  return r;
}

// ---------------------------------------------------------------------------
// 2. Throughput.

template <typename Box>
double MessagesPerSecond(const char* what, int producers, uint64_t per_producer) {
  auto box = std::make_unique<Box>();
  std::latch start(producers + 1);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      for (uint64_t s = 0; s < per_producer; ++s) {
        box->Push(new BenchMessage(static_cast<uint32_t>(p), s));
      }
    });
  }
  OrderCheck check(what, producers);
  const uint64_t total = per_producer * static_cast<uint64_t>(producers);
  start.arrive_and_wait();
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t got = 0; got < total;) {
    BenchMessage* m = box->Pop();
    if (m == nullptr) {
      std::this_thread::yield();  // both designs: poll, yield when empty
      continue;
    }
    check.Take(*m);
    delete m;
    ++got;
  }
  const absl::Duration elapsed = absl::FromChrono(std::chrono::steady_clock::now() - t0);
  for (std::thread& t : threads) t.join();
  ExpectEmpty(*box, what);
  check.ExpectAll(per_producer);
  return static_cast<double>(total) / absl::ToDoubleSeconds(elapsed);
}

// The two sides apart: one producer thread pushes `n` messages with no
// consumer running, then the consumer drains them. Nanoseconds per message
// for each phase (allocation and deletion included, as above).
struct PhaseCosts {
  double push_ns;
  double drain_ns;
};

template <typename Box>
PhaseCosts PushThenDrain(const char* what, uint64_t n) {
  auto box = std::make_unique<Box>();
  absl::Duration push_time;
  std::thread producer([&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t s = 0; s < n; ++s) box->Push(new BenchMessage(0, s));
    push_time = absl::FromChrono(std::chrono::steady_clock::now() - t0);
  });
  producer.join();
  OrderCheck check(what, 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t got = 0; got < n; ++got) {
    BenchMessage* m = box->Pop();
    if (m == nullptr) Fail("%s: message %u of %u missing", what, got, n);
    check.Take(*m);
    delete m;
  }
  const absl::Duration drain_time = absl::FromChrono(std::chrono::steady_clock::now() - t0);
  ExpectEmpty(*box, what);
  check.ExpectAll(n);
  const double count = static_cast<double>(n);
  return {absl::ToDoubleNanoseconds(push_time) / count,
          absl::ToDoubleNanoseconds(drain_time) / count};
}

struct Spread {
  double min;
  double median;
  double max;
};

Spread SpreadOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {v.front(), median, v.back()};
}

// ---------------------------------------------------------------------------
// 3. Many idle mailboxes.

// Resident anonymous memory (heap, stacks): statm's resident minus its shared
// (file-backed) pages, so library code paged in meanwhile does not count.
int64_t ResidentAnonBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  int64_t shared_pages = 0;
  if (!(statm >> size_pages >> resident_pages >> shared_pages)) {
    Fail("cannot read /proc/self/statm");
  }
  return (resident_pages - shared_pages) * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

struct ManyBytes {
  double counted;   // sizeof + heap bytes asked for, per mailbox
  double resident;  // anonymous resident growth per mailbox
  double allocations;  // heap blocks moodycamel holds per mailbox
};

template <typename Box>
ManyBytes MeasureMany(const char* what, int count) {
  // The messages exist before the baseline and after the last reading, so
  // only the mailboxes (and what they allocate) are in the growth.
  std::vector<BenchMessage*> messages;
  messages.reserve(count);
  for (int i = 0; i < count; ++i) {
    messages.push_back(new BenchMessage(static_cast<uint32_t>(i % 2), static_cast<uint64_t>(i)));
  }
  const int64_t heap0 = HeapCount::Bytes();
  const int64_t allocations0 = HeapCount::allocations.load(std::memory_order_relaxed);
  const int64_t rss0 = ResidentAnonBytes();

  std::unique_ptr<Box[]> boxes(new Box[count]);
  {
    // Two live producer threads; mailbox i hears from thread i % 2.
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < count; i += 2) boxes[i].Push(messages[i]);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (int i = 0; i < count; ++i) {
    if (boxes[i].Pop() != messages[i]) Fail("%s: mailbox %d lost its message", what, i);
    ExpectEmpty(boxes[i], what);
  }

  const int64_t rss1 = ResidentAnonBytes();
  const int64_t heap1 = HeapCount::Bytes();
  const int64_t allocations1 = HeapCount::allocations.load(std::memory_order_relaxed);
  boxes.reset();
  if (HeapCount::Bytes() != heap0) Fail("%s: %d heap bytes left", what, HeapCount::Bytes() - heap0);
  for (BenchMessage* m : messages) delete m;
  return {static_cast<double>(sizeof(Box)) + static_cast<double>(heap1 - heap0) / count,
          static_cast<double>(rss1 - rss0) / count,
          static_cast<double>(allocations1 - allocations0) / count};
}

// Runs MeasureMany<Box> in a child process, so that memory one measurement
// freed (and the allocator kept) cannot be reused unseen by the next. Called
// while the process has no other threads.
template <typename Box>
ManyBytes MeasureManyInChild(const char* what, int count) {
  std::fflush(stdout);  // or the child's exit would print the parent's buffer again
  std::fflush(stderr);
  int fds[2];
  if (pipe(fds) != 0) Fail("%s: pipe failed", what);
  const pid_t pid = fork();
  if (pid < 0) Fail("%s: fork failed", what);
  if (pid == 0) {
    close(fds[0]);
    const ManyBytes r = MeasureMany<Box>(what, count);
    const bool sent = write(fds[1], &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  ManyBytes r{};
  const ssize_t got = read(fds[0], &r, sizeof(r));  // one small write: arrives whole
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      got != static_cast<ssize_t>(sizeof(r))) {
    Fail("%s: the measuring child process failed", what);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Report.

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

void Row(const std::string& measurement, const std::string& inbox, const std::string& moody,
         double ratio) {
  absl::PrintF("| %s | %s | %s | %.2f |\n", measurement, inbox, moody, ratio);
}

void BytesRow(const std::string& measurement, double inbox, double moody) {
  Row(measurement, absl::StrFormat("%.0f", inbox), absl::StrFormat("%.0f", moody), moody / inbox);
}

// Medians of each design's samples; the ratio is the median of the ratios
// within each repetition, where the designs ran back to back.
void TimedRow(const std::string& measurement, const std::vector<double>& inbox,
              const std::vector<double>& moody, double scale, const char* unit) {
  std::vector<double> ratios;
  for (size_t i = 0; i < inbox.size(); ++i) ratios.push_back(moody[i] / inbox[i]);
  Row(measurement, absl::StrFormat("%.1f %s", SpreadOf(inbox).median / scale, unit),
      absl::StrFormat("%.1f %s", SpreadOf(moody).median / scale, unit), SpreadOf(ratios).median);
}

int Main() {
  const int64_t messages = absl::GetFlag(FLAGS_messages);
  const int reps = absl::GetFlag(FLAGS_reps);
  const int mailboxes = absl::GetFlag(FLAGS_mailboxes);
  if (messages < 2 || reps < 1 || mailboxes < 2) Fail("need --messages>=2 --reps>=1 --mailboxes>=2");

  absl::PrintF("mailbox_bench %s UTC\n", absl::FormatTime("%Y-%m-%d %H:%M", absl::Now(),
                                                          absl::UTCTimeZone()));
  absl::PrintF("cpu: %s, %u hardware threads\n", CpuModel(), std::thread::hardware_concurrency());
  absl::PrintF("--messages=%d --reps=%d --mailboxes=%d; sizeof(message node) = %u\n", messages,
               reps, mailboxes, sizeof(BenchMessage));
  absl::PrintF("moodycamel: default traits (block 32, index 32, producer hash 32); "
               "tiny traits (block 2, index 2, producer hash 8)\n\n");

  // 3 first, each in its own process forked before this one has run threads.
  const ManyBytes inbox_many = MeasureManyInChild<InboxMailbox>("inbox many", mailboxes);
  const ManyBytes empty_many =
      MeasureManyInChild<MoodyEmpty>("moodycamel capacity-0 many", mailboxes);
  const ManyBytes tiny_many = MeasureManyInChild<MoodyTiny>("moodycamel tiny many", mailboxes);
  const ManyBytes default_many =
      MeasureManyInChild<MoodyDefault>("moodycamel default many", mailboxes);

  // 1.
  const IdleBytes inbox_idle = MeasureIdle<InboxMailbox>("inbox idle");
  const IdleBytes default_idle = MeasureIdle<MoodyDefault>("moodycamel default idle");
  const IdleBytes empty_idle = MeasureIdle<MoodyEmpty>("moodycamel capacity-0 idle");
  const IdleBytes tiny_idle = MeasureIdle<MoodyTiny>("moodycamel tiny idle");

  // 2. Interleaved: each repetition runs every design once, back to back.
  struct Variant {
    const char* name;
    double (*rate)(const char*, int, uint64_t);
    PhaseCosts (*phases)(const char*, uint64_t);
    std::vector<double> one_producer;  // messages/s
    std::vector<double> two_producers;
    std::vector<double> push_ns;
    std::vector<double> drain_ns;
  };
  std::vector<Variant> variants;
  const auto add = [&](const char* name, auto rate, auto phases) {
    variants.push_back({name, rate, phases, {}, {}, {}, {}});
  };
  add("inbox", &MessagesPerSecond<InboxMailbox>, &PushThenDrain<InboxMailbox>);
  add("default traits, try_dequeue", &MessagesPerSecond<MoodyDefault>,
      &PushThenDrain<MoodyDefault>);
  add("default traits, try_dequeue_bulk(64)", &MessagesPerSecond<MoodyDefaultBulk>,
      &PushThenDrain<MoodyDefaultBulk>);
  add("tiny traits, try_dequeue", &MessagesPerSecond<MoodyTiny>, &PushThenDrain<MoodyTiny>);
  // Which design runs first was seen to matter (likely the allocator's state:
  // fresh heap pages for whoever runs first), so the order rotates by one
  // each repetition, and one untimed round runs before them.
  const uint64_t n = static_cast<uint64_t>(messages);
  for (int rep = -1; rep < reps; ++rep) {
    std::vector<Variant*> order;
    for (size_t k = 0; k < variants.size(); ++k) {
      order.push_back(&variants[(k + static_cast<size_t>(rep + 1)) % variants.size()]);
    }
    for (Variant* v : order) {
      const double rate = v->rate(v->name, 1, n);
      if (rep >= 0) v->one_producer.push_back(rate);
    }
    for (Variant* v : order) {
      const double rate = v->rate(v->name, 2, n / 2);
      if (rep >= 0) v->two_producers.push_back(rate);
    }
    for (Variant* v : order) {
      const PhaseCosts c = v->phases(v->name, n);
      if (rep < 0) continue;
      v->push_ns.push_back(c.push_ns);
      v->drain_ns.push_back(c.drain_ns);
    }
  }

  absl::PrintF("| measurement | inbox | moodycamel | ratio (moodycamel / inbox) |\n");
  absl::PrintF("|---|---:|---:|---:|\n");
  const auto idle_rows = [&](const char* config, const IdleBytes& m) {
    BytesRow(absl::StrFormat("idle bytes, fresh: %s", config), inbox_idle.fresh, m.fresh);
    BytesRow(absl::StrFormat("idle bytes, 1 producer then drained: %s", config),
             inbox_idle.one_producer, m.one_producer);
    BytesRow(absl::StrFormat("idle bytes, 2 producers then drained: %s", config),
             inbox_idle.two_producers, m.two_producers);
  };
  idle_rows("default traits, default capacity (192)", default_idle);
  idle_rows("default traits, capacity 0", empty_idle);
  idle_rows("tiny traits, capacity 0", tiny_idle);
  const Variant& inbox = variants[0];
  for (size_t i = 1; i < variants.size(); ++i) {
    TimedRow(absl::StrFormat("msgs/s 1 -> 1, median of %d: %s", reps, variants[i].name),
             inbox.one_producer, variants[i].one_producer, 1e6, "M/s");
  }
  for (size_t i = 1; i < variants.size(); ++i) {
    TimedRow(absl::StrFormat("msgs/s 2 -> 1, median of %d: %s", reps, variants[i].name),
             inbox.two_producers, variants[i].two_producers, 1e6, "M/s");
  }
  for (size_t i = 1; i < variants.size(); ++i) {
    TimedRow(absl::StrFormat("push alone, ns/msg, median of %d: %s", reps, variants[i].name),
             inbox.push_ns, variants[i].push_ns, 1, "ns");
  }
  for (size_t i = 1; i < variants.size(); ++i) {
    TimedRow(absl::StrFormat("drain alone, ns/msg, median of %d: %s", reps, variants[i].name),
             inbox.drain_ns, variants[i].drain_ns, 1, "ns");
  }
  const auto many_rows = [&](const char* config, const ManyBytes& m) {
    BytesRow(absl::StrFormat("%d mailboxes, counted bytes each: %s", mailboxes, config),
             inbox_many.counted, m.counted);
    BytesRow(absl::StrFormat("%d mailboxes, resident growth each: %s", mailboxes, config),
             inbox_many.resident, m.resident);
  };
  many_rows("default traits, capacity 0", empty_many);
  many_rows("tiny traits, capacity 0", tiny_many);
  many_rows("default traits, default capacity (192)", default_many);

  absl::PrintF("\ntimed rows: the ratio is the median over repetitions of moodycamel / inbox "
               "within one repetition (every design runs back to back in each, the order "
               "rotating)\n");
  absl::PrintF("\nheap blocks held per idle mailbox (moodycamel; each also carries the counting "
               "hook's 16-byte header and malloc's own overhead in the resident figure): "
               "default capacity-0 %.1f, tiny %.1f, default %.1f\n",
               empty_many.allocations, tiny_many.allocations, default_many.allocations);
  absl::PrintF("\nspread (min / median / max of %d):\n", reps);
  const auto spread = [](const char* what, const char* name, const std::vector<double>& v,
                         double scale) {
    const Spread s = SpreadOf(v);
    absl::PrintF("  %-16s %-38s %7.1f / %7.1f / %7.1f\n", what, name, s.min / scale,
                 s.median / scale, s.max / scale);
  };
  for (const Variant& v : variants) spread("M msgs/s 1 -> 1", v.name, v.one_producer, 1e6);
  for (const Variant& v : variants) spread("M msgs/s 2 -> 1", v.name, v.two_producers, 1e6);
  for (const Variant& v : variants) spread("push ns/msg", v.name, v.push_ns, 1);
  for (const Variant& v : variants) spread("drain ns/msg", v.name, v.drain_ns, 1);
  absl::PrintF("\nall checks passed\n");
  return 0;
}

}  // namespace
}  // namespace troupe

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return troupe::Main();
}
