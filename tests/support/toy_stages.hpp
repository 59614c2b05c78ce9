// Toy stages for the runtime tests: small, observable, and shaped like the real
// ones (a source of tracked payloads, a per-item random stage, a batching stage
// that holds leases, kinds that must not be mixed). Registered only in tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowrun/registry.hpp"
#include "flowrun/stage.hpp"

namespace flowrun::testing {

// Live payloads of test.tracked_source: how many exist now and at most.
struct LiveCounter {
  std::atomic<std::int64_t> live{0};
  std::atomic<std::int64_t> peak{0};
  void reset() {
    live = 0;
    peak = 0;
  }
};
LiveCounter& tracked_payloads();

// What test.batch_fingerprints saw of each batch.
struct BatchRecord {
  std::uint64_t epoch = 0;
  std::int64_t size = 0;
  double pixel_sum = 0;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> indices;
  std::vector<std::string> keys;
  std::string dtype;
  bool operator==(const BatchRecord& o) const {
    return epoch == o.epoch && size == o.size && pixel_sum == o.pixel_sum && labels == o.labels &&
           indices == o.indices && keys == o.keys && dtype == o.dtype;
  }
};
const std::vector<BatchRecord>& batch_records(Stage& stage);  // of a test.batch_fingerprints stage
// The batches a test.keep_batches stage received, in order.
const std::vector<std::shared_ptr<const Payload>>& kept_batches(Stage& stage);

// What test.progress_sink (a sink on its own thread) saw of each item: its index, how
// many items test.count_items had passed by then, and the thread it ran on.
struct ProgressRecord {
  std::uint64_t index = 0;
  std::int64_t counted = 0;
  std::thread::id thread;
};
const std::vector<ProgressRecord>& progress_records(Stage& stage);
void reset_items_counted();

// Stop reasons seen by test.stop_recorder stages, in call order.
std::vector<std::string> recorded_stops();
void clear_recorded_stops();

// Registers: test.tracked_source, test.random_tag, test.group, test.bytes_source,
// test.decode, test.pixels_sink, test.two_inputs, test.needs_params, test.stop_recorder,
// test.batch_fingerprints, test.keep_batches, test.fail_after, test.lender, test.borrower,
// test.count_items, test.progress_sink, test.fail_after_own_thread.
void register_toy_stages(Registry& registry);

}  // namespace flowrun::testing
