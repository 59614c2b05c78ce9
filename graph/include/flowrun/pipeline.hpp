// The runtime: turns a validated Description into a oneTBB flow graph and runs it.
//
//   source ─ input_node ─ limiter_node(prefetch) ─┬─> map: function_node(concurrency)
//                                                  └─> ordered: sequencer_node ─ function_node(serial)
//
// - Backpressure: each source's limiter admits `prefetch` items; an item's Lease
//   returns its slot when the last message built from it dies (a batch holds its
//   samples' leases until the train step lets go of the batch), so memory is
//   bounded by the prefetch depth whatever the dataset size.
// - Order: a sequencer keyed on Message::seq before every ordered stage restores
//   stream order, so results do not depend on the thread count.
// - Failure: an exception in any stage is recorded with its node and plugin, the
//   graph is cancelled, and run() throws NodeError.
// - Stop: request_stop() (SIGINT/SIGTERM) makes sources end their streams and every
//   stage drop data still in flight; stages then get stop(Interrupted).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/description.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

struct RunOptions {
  // Maps the description's device ("auto", "cpu", "cuda", "cuda:N") to the device
  // stages get. The runtime knows no devices; the app passes LibTorch's answer.
  std::function<std::string(const std::string&)> resolve_device;
  std::string run_folder;   // RunContext::folder
  std::string resume_from;  // RunContext::resume_from
  // Resuming: sources (by node id) whose streams continue at a position (seek()).
  std::map<std::string, StreamPosition> start_positions;
  // Resuming: what stages saved, by node id (RunContext::saved_states).
  std::map<std::string, std::shared_ptr<const Payload>> saved_states;
  // Where to write a Chrome trace-event file of the run (every packet each node
  // handled, on its thread's track; items in flight and packets queued as counters),
  // which Perfetto and chrome://tracing open; "" = none (the per-node figures in
  // RunReport are measured either way).
  std::string profile_path;
};

struct NodeStats {
  std::string id;
  std::string plugin;
  std::uint64_t items = 0;    // data messages the stage processed (or produced, for sources)
  std::uint64_t busy_ns = 0;  // time inside the stage's methods, summed over threads
  // From the start of the stage's first call to the end of its last (start() excluded).
  // For an ordered stage, active_ns - busy_ns is the time it waited for its input: for
  // the train stage, its data stall.
  std::uint64_t active_ns = 0;
  // Every call into the stage (an item for map stages, a packet's item for ordered
  // ones, a packet for sources): how many, and their duration's p50/p90/p99 (seconds).
  std::uint64_t calls = 0;
  double p50_s = 0, p90_s = 0, p99_s = 0;
  std::int64_t max_queued = 0;  // ordered stages: most packets waiting at their inputs at once
  std::uint64_t start_ns = 0;   // in start() (and seek() when resuming): a source indexing its files
};

struct SourceStats {
  std::string id;
  std::int64_t peak_in_flight = 0;  // most items alive at once (prefetch bound)
};

struct RunReport {
  StopReason reason = StopReason::Finished;
  std::string ended_by;   // a stage that ended the run early (RunControl), or ""
  std::string ended_why;
  double seconds = 0;          // run() from start to end, the stages' start() included
  double start_seconds = 0;    // of which starting the stages (before any data flows)
  int threads = 0;
  std::vector<NodeStats> nodes;  // in topological order
  std::vector<SourceStats> sources;
};

class Pipeline {
 public:
  // Creates every stage (a factory that throws becomes a NodeError).
  explicit Pipeline(Description description, RunOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Starts the stages, streams everything, stops the stages. Once per Pipeline.
  // Throws NodeError when a stage fails (at start-up or while running), and
  // std::runtime_error when the graph stalls before its streams end (a stage
  // waiting for more items than the prefetch window admits).
  RunReport run();

  // Safe from any thread: sources end their streams, in-flight data is dropped,
  // stages get stop(Interrupted). run() then returns normally.
  void request_stop();
  bool stop_requested() const;
  // Safe from any thread: cancels the graph at once (second Ctrl-C).
  void cancel();

  const Description& description() const;
  // The stage of a node, for tests and embedding (nullptr for an unknown id).
  Stage* stage(const std::string& node_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowrun
