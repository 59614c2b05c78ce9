// The three kinds of stage a plugin can implement. A stage knows nothing of TBB:
// the runtime wraps it in flow-graph nodes, so a stage can be unit-tested by
// calling these methods directly.
//
//   SourceStage   produces the stream, one call at a time (serial). Numbers nothing:
//                 the runtime assigns seq; the source says epoch and index.
//   MapStage      one item in, at most one out; called concurrently from many
//                 threads for different items, so process() must be thread-safe
//                 (keep per-item state on the stack; randomness from item_rng()).
//   OrderedStage  sees its input in stream order, one call at a time; may emit any
//                 number of messages on any output port (batching, training, sinks).
//
// Lifecycle, all driven by the runtime: constructed from validated Params, start()
// once before any data, the stream, then stop(reason) once. A stage that throws
// fails the run: the runtime names its node and plugin and cancels the graph.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/message.hpp"
#include "flowrun/rng.hpp"
#include "flowrun/schema.hpp"

namespace flowrun {

// What every stage may know about the run it is part of.
struct RunContext {
  std::string name;           // the description's name
  std::string folder;         // the run folder (outputs default there); "" = none
  std::string resolved_json;  // the description as run, for files that record it
  std::string resume_from;    // the checkpoint this run continues from; "" = a fresh run
  // Resuming: the state each stage saved, by node id, as whoever reads checkpoints
  // read it (flowrun run: the checkpoint library); opaque to the runtime.
  std::map<std::string, std::shared_ptr<const Payload>> saved_states;

  // Where an output goes when its parameter is left empty: `entry` inside the run
  // folder ("" = the folder itself), or `otherwise` when there is no run folder.
  std::string in_folder(const std::string& entry, const std::string& otherwise) const {
    if (folder.empty()) return otherwise;
    return entry.empty() ? folder : folder + "/" + entry;
  }
};

// A node upstream of an input port (the pipeline's shape, for stages that name other
// nodes in their messages).
struct UpstreamNode {
  std::string id;
  std::string plugin;
  bool source = false;
};

// Where a source's stream continues: its next item is `position` of epoch `epoch`.
struct StreamPosition {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
};

// Lets a stage end the run early and cleanly (early stopping): sources end their
// streams, everything already made is still processed, stages finish() as usual.
class RunControl {
 public:
  virtual ~RunControl() = default;
  // `sources` end their streams (the training data; empty = every source); the others
  // go on to their ends (a test split still to be evaluated after early stopping; an
  // evaluate node ends its own eval source once training is over). The run records
  // who ended it and why.
  virtual void end_run(const std::string& node_id, const std::string& why,
                       const std::vector<std::string>& sources = {}) = 0;
  // Ends only these sources' streams, cleanly (an evaluation source that repeats
  // until training is done); the run goes on.
  virtual void end_sources(const std::vector<std::string>& sources) = 0;
  // Has the ordered stage `node_id` called back with woken(), on its own serial thread
  // and in turn with its other calls. For a stage that waits for something other than
  // its inputs (the train stage, for the model it lent to evaluate nodes): whoever
  // ends the wait calls this, from any thread. Does nothing once the run's graph has
  // finished (the stage then still waits, and the run reports it).
  virtual void wake(const std::string& node_id) = 0;
};

// Everything a stage is built from.
struct StageArgs {
  std::string node_id;
  Params params;
  std::uint64_t seed = 0;     // the run's seed
  std::string device = "cpu"; // resolved device: "cpu" or "cuda[:N]"
  int threads = 1;            // threads the runtime runs stages on
  RandomStreams random;       // keyed on (seed, node_id)
  std::vector<bool> inputs_connected;   // per input port: optional ports may be left open
  std::vector<bool> outputs_connected;  // per output port: does any edge leave it
  // Per input port: every node upstream of it, nearest first.
  std::vector<std::vector<UpstreamNode>> input_upstream;
  std::shared_ptr<const RunContext> run = std::make_shared<RunContext>();
  RunControl* control = nullptr;  // null outside a Pipeline (unit tests)
};

enum class StopReason {
  Finished,     // the stream ended normally
  Interrupted,  // SIGINT/SIGTERM or Pipeline::request_stop(): in-flight work was dropped
  Failed,       // another node threw; the graph was cancelled
};
const char* stop_reason_name(StopReason reason);

class Stage {
 public:
  explicit Stage(const StageArgs& args) : node_id_(args.node_id), random_(args.random) {}
  virtual ~Stage() = default;
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  virtual void start() {}
  // Called once when the run ends, however it ends. The checkpoint stage saves here.
  virtual void stop(StopReason reason) {}

  const std::string& node_id() const { return node_id_; }
  Rng item_rng(const Message& m) const { return random_.for_item(m.epoch, m.index); }
  // The stream item_rng() gives the item (epoch, index): a batch stage draws each of its
  // samples' parameters from the stream a per-sample stage of the same node id would use.
  Rng item_rng(std::uint64_t epoch, std::uint64_t index) const { return random_.for_item(epoch, index); }
  Rng epoch_rng(std::uint64_t epoch) const { return random_.for_epoch(epoch); }

 private:
  std::string node_id_;
  RandomStreams random_;
};

// What a source hands to the runtime on each call.
struct SourceItem {
  Signal signal = Signal::Data;  // Data, Skip or EpochEnd (End is the runtime's)
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  std::shared_ptr<const Payload> payload;
};

class SourceStage : public Stage {
 public:
  using Stage::Stage;
  // Fill `item` with the next item of the stream; return false when there is none.
  virtual bool next(SourceItem& item) = 0;
  // Resuming: continue the stream at `at` (called after start(), before next()).
  // Sources that cannot throw, and the run does not start.
  virtual void seek(const StreamPosition& at);
};

class MapStage : public Stage {
 public:
  using Stage::Stage;
  // The output payload for `in` (a Data message); nullptr drops the item (it then
  // travels on as a Skip so order and numbering are kept).
  virtual std::shared_ptr<const Payload> process(const Message& in) = 0;
};

// Ordered stages emit through this: the runtime numbers and routes what is emitted.
class Emitter {
 public:
  virtual ~Emitter() = default;
  // `lease` keeps the inputs the output was built from counted as in flight (pass the
  // leases of the batched items, combined with combine_leases); empty = none.
  virtual void emit(int port, std::shared_ptr<const Payload> payload, std::uint64_t epoch,
                    std::uint64_t index, Lease lease = {}) = 0;
};

// One lease that holds all of `leases` (a batch holds the leases of its samples).
Lease combine_leases(std::vector<Lease> leases);

class OrderedStage : public Stage {
 public:
  using Stage::Stage;
  // A Data message, in stream order per input port (`in.port` says which).
  virtual void process(Message in, Emitter& out) = 0;
  // An item that an upstream stage dropped (a corrupt file under the skip policy)
  // would have come here, in stream order: lets a stage count and report skips.
  virtual void skipped(const Message& in) {}
  // All items of `epoch` on input `port` have been processed. The runtime forwards
  // the epoch end to every output after this returns, when it came on port 0.
  virtual void epoch_end(int port, std::uint64_t epoch, Emitter& out) {}
  // Input `port` has ended (its stream is complete); called before finish() when it
  // is the last. Lets a stage with several inputs act when one of them is done.
  virtual void input_ended(int port, Emitter& out) {}
  // Every input has ended normally: emit what is still held (a last partial batch).
  virtual void finish(Emitter& out) {}
  // The run ends early (interrupted, or another stage failed) and this stage's state
  // is consistent: emit what must not be lost (the train stage's last state, for the
  // checkpoint stage). Called in topological order before stop(); what is emitted here
  // is delivered at once, synchronously, to downstream stages.
  virtual void drain(StopReason reason, Emitter& out) {}
  // True while the stage waits for something other than its inputs (see
  // RunControl::wake): the runtime then holds back finish() and the end of the
  // stage's outputs until a woken() call leaves it no longer waiting.
  virtual bool waiting() const { return false; }
  // Called after RunControl::wake(node_id), in turn with the stage's other calls.
  virtual void woken(Emitter& out) {}
};

}  // namespace flowrun
