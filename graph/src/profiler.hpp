// What the runtime measures about itself (internal to pipeline.cpp):
//   LatencyHistogram  per node, always on: the duration of every stage call in
//                     log-spaced buckets (4 per octave), for p50/p90/p99 at the end.
//   TraceRecorder     only with RunOptions::profile_path: every stage call as a slice
//                     on its thread's track, and counters (items in flight per source,
//                     packets queued before each ordered stage), written as a Chrome
//                     trace-event JSON file that Perfetto and chrome://tracing open.
// Both are cheap on the hot path: one relaxed atomic increment per call for the
// histogram; an append to the calling thread's own buffer per call for the trace.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flowrun::profiling {

using Clock = std::chrono::steady_clock;

class LatencyHistogram {
 public:
  void add(std::uint64_t ns);
  // The q-quantile (0..1) of the recorded durations in seconds, from the buckets
  // (within about 9%, half a bucket); 0 when nothing was recorded.
  double quantile(double q) const;
  std::uint64_t count() const;

 private:
  static constexpr int kPerOctave = 4;
  static constexpr int kBuckets = 34 * kPerOctave;  // 1 ns .. ~17 s; the last bucket takes the rest
  static int bucket_of(std::uint64_t ns);
  static double lower_edge(int bucket);  // ns
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
};

class TraceRecorder {
 public:
  explicit TraceRecorder(Clock::time_point origin);

  // Work on the calling thread: `name` indexes the names given to write().
  void slice(int name, Clock::time_point start, Clock::time_point end, std::uint32_t items);
  // Names the calling thread's track (default "runtime thread N").
  void name_thread(const std::string& name);
  // A counter track (e.g. "in flight: train_data"); returns its index for sample().
  int add_counter(const std::string& name);
  void sample(int counter, std::int64_t value);

  // Writes {"traceEvents": [...]} with process and thread names, one complete ("X")
  // event per slice, one counter ("C") event per sample. Atomic (temporary + rename).
  void write(const std::string& path, const std::string& process_name, const std::vector<std::string>& names,
             const std::vector<std::string>& categories) const;

 private:
  struct Slice {
    std::int64_t start_ns, dur_ns;
    int node;
    std::uint32_t items;
  };
  struct ThreadBuffer {
    int index = 0;  // the track's number in the trace
    std::string name;
    std::vector<Slice> slices;
  };
  struct Counter {
    std::string name;
    std::mutex mutex;
    std::vector<std::pair<std::int64_t, std::int64_t>> samples;  // (ns since origin, value)
  };
  ThreadBuffer& buffer();
  std::int64_t since_origin(Clock::time_point t) const;

  Clock::time_point origin_;
  std::uint64_t id_;  // tells this recorder's thread buffers from an earlier one's at the same address
  mutable std::mutex mutex_;  // guards the lists below (not the buffers' contents)
  std::vector<std::unique_ptr<ThreadBuffer>> buffers_;
  std::vector<std::unique_ptr<Counter>> counters_;
};

}  // namespace flowrun::profiling
