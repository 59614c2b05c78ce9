#include "profiler.hpp"
#include "trace_viewer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flowrun/atomic_file.hpp"

namespace flowrun::profiling {

int LatencyHistogram::bucket_of(std::uint64_t ns) {
  if (ns <= 1) return 0;
  const int b = static_cast<int>(std::log2(static_cast<double>(ns)) * kPerOctave);
  return std::min(b, kBuckets - 1);
}

double LatencyHistogram::lower_edge(int bucket) { return std::exp2(static_cast<double>(bucket) / kPerOctave); }

void LatencyHistogram::add(std::uint64_t ns) { counts_[static_cast<std::size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed); }

std::uint64_t LatencyHistogram::count() const {
  std::uint64_t n = 0;
  for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::quantile(double q) const {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  const double target = q * static_cast<double>(n);
  double seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    const auto c = static_cast<double>(counts_[static_cast<std::size_t>(b)].load(std::memory_order_relaxed));
    if (c > 0 && seen + c >= target) {
      // Interpolate inside the bucket, geometrically (its edges are a ratio apart).
      const double within = std::clamp((target - seen) / c, 0.0, 1.0);
      return lower_edge(b) * std::exp2(within / kPerOctave) * 1e-9;
    }
    seen += c;
  }
  return lower_edge(kBuckets - 1) * 1e-9;
}

namespace {
std::atomic<std::uint64_t> next_recorder_id{1};
}  // namespace

TraceRecorder::TraceRecorder(Clock::time_point origin) : origin_(origin), id_(next_recorder_id.fetch_add(1)) {}

TraceRecorder::ThreadBuffer& TraceRecorder::buffer() {
  // Each thread keeps a pointer to its buffer in the recorder it last wrote to; the
  // recorder's id (not its address, which a later recorder may reuse) tells them apart.
  struct Cached {
    std::uint64_t recorder = 0;
    ThreadBuffer* buffer = nullptr;
  };
  thread_local Cached cached;
  if (cached.recorder == id_) return *cached.buffer;
  std::lock_guard<std::mutex> lock(mutex_);
  buffers_.push_back(std::make_unique<ThreadBuffer>());
  buffers_.back()->index = static_cast<int>(buffers_.size());
  buffers_.back()->slices.reserve(4096);
  cached = {id_, buffers_.back().get()};
  return *cached.buffer;
}

std::int64_t TraceRecorder::since_origin(Clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin_).count();
}

void TraceRecorder::slice(int name, Clock::time_point start, Clock::time_point end, std::uint32_t items) {
  buffer().slices.push_back({since_origin(start), std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count(),
                             name, items});
}

void TraceRecorder::name_thread(const std::string& name) {
  ThreadBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(mutex_);
  b.name = name;
}

int TraceRecorder::add_counter(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.push_back(std::make_unique<Counter>());
  counters_.back()->name = name;
  return static_cast<int>(counters_.size()) - 1;
}

void TraceRecorder::sample(int counter, std::int64_t value) {
  Counter& c = *counters_[static_cast<std::size_t>(counter)];
  const std::int64_t now = since_origin(Clock::now());
  std::lock_guard<std::mutex> lock(c.mutex);
  c.samples.emplace_back(now, value);
}

void TraceRecorder::write(const std::string& path, const std::string& process_name,
                          const std::vector<std::string>& names, const std::vector<std::string>& categories) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // Written by hand, event by event: a trace has hundreds of thousands of them.
  std::ostringstream o;
  char number[64];
  auto us = [&](std::int64_t ns) {  // microseconds with nanosecond digits, as the format wants
    std::snprintf(number, sizeof number, "%.3f", static_cast<double>(ns) * 1e-3);
    return std::string(number);
  };
  const auto quoted = [](const std::string& s) { return nlohmann::json(s).dump(); };
  o << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  o << "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,\"args\":{\"name\":" << quoted(process_name) << "}}";
  for (const auto& b : buffers_) {
    o << ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":" << b->index << ",\"args\":{\"name\":"
      << quoted(b->name.empty() ? "runtime thread " + std::to_string(b->index) : b->name) << "}}";
    o << ",\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":" << b->index << ",\"args\":{\"sort_index\":"
      << b->index << "}}";
  }
  for (const auto& b : buffers_) {
    // A thread's calls follow one another; sorted by start they nest or follow, never overlap.
    std::vector<Slice> slices = b->slices;
    std::stable_sort(slices.begin(), slices.end(), [](const Slice& x, const Slice& y) { return x.start_ns < y.start_ns; });
    for (const Slice& s : slices) {
      const auto n = static_cast<std::size_t>(s.node);
      o << ",\n{\"ph\":\"X\",\"name\":" << quoted(n < names.size() ? names[n] : "?") << ",\"cat\":"
        << quoted(n < categories.size() ? categories[n] : "stage") << ",\"pid\":1,\"tid\":" << b->index
        << ",\"ts\":" << us(s.start_ns) << ",\"dur\":" << us(std::max<std::int64_t>(s.dur_ns, 0))
        << ",\"args\":{\"items\":" << s.items << "}}";
    }
  }
  for (const auto& c : counters_) {
    std::lock_guard<std::mutex> counter_lock(c->mutex);
    for (const auto& [t, value] : c->samples)
      o << ",\n{\"ph\":\"C\",\"name\":" << quoted(c->name) << ",\"pid\":1,\"tid\":0,\"ts\":" << us(t)
        << ",\"args\":{\"value\":" << value << "}}";
  }
  o << "\n]}\n";
  const std::string text = o.str();
  write_file_atomically(path, text);
  write_file_atomically(trace_viewer_path(path), trace_viewer_page(process_name, text));
}

}  // namespace flowrun::profiling
