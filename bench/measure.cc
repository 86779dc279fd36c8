// Measurement helpers shared by both sides of the suite (declared at the
// bottom of bench/workload.h): process CPU time, resident set size, and
// percentiles of latency samples.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/workload.h"

namespace troupe::bench {
namespace {

double ToSeconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

}  // namespace

// User plus system CPU of every thread of this process, in seconds.
double CpuSeconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return ToSeconds(usage.ru_utime) + ToSeconds(usage.ru_stime);
}

// Resident set size from /proc/self/statm (its second field, in pages); 0 if
// it cannot be read.
size_t ResidentBytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long total_pages = 0, resident_pages = 0;
  const int read = std::fscanf(statm, "%lu %lu", &total_pages, &resident_pages);
  std::fclose(statm);
  if (read != 2) return 0;
  return static_cast<size_t>(resident_pages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// The peak resident set size of this process (getrusage's ru_maxrss, in
// KiB); 0 if it cannot be read.
size_t PeakResidentBytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<size_t>(usage.ru_maxrss) * 1024;
}

// The q-quantile of `samples`, q a fraction in [0, 1] (0.5: the median,
// 0.99: p99), by the nearest-rank method: the smallest sample with at least
// q of all samples at or below it. Sorts `samples`. 0 for no samples.
double Percentile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double clamped = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<size_t>(std::ceil(clamped * static_cast<double>(samples.size())));
  return samples[rank == 0 ? 0 : rank - 1];
}

std::string SelfExecutable() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<std::vector<Measurement>> LatencyFigures(const char* workload, std::vector<double>& micros,
                                                        int64_t samples) {
  if (micros.size() != static_cast<size_t>(samples)) {
    return absl::InternalError(absl::StrCat(workload, ": ", micros.size(), " samples, expected ", samples));
  }
  return std::vector<Measurement>{
      {"p50", Percentile(micros, 0.50), "us", false},
      {"p99", Percentile(micros, 0.99), "us", false},
  };
}

PeakSampler::PeakSampler(std::function<uint64_t()> read, absl::Duration period) : read_(std::move(read)) {
  thread_ = std::thread([this, period] {
    while (!stop_.load(std::memory_order_acquire)) {
      peak_ = std::max(peak_, read_());
      absl::SleepFor(period);
    }
    peak_ = std::max(peak_, read_());
  });
}

PeakSampler::~PeakSampler() { (void)Stop(); }

uint64_t PeakSampler::Stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  return peak_;
}

}  // namespace troupe::bench
