// collect: a sink that records every message it receives, in order, in memory and
// optionally as JSON lines. The record is what tests compare across runs.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "flowrun/stage.hpp"

namespace flowrun {

struct CollectedItem {
  std::string signal;  // "data" or "epoch_end"
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  std::string payload;  // Payload::describe()

  bool operator==(const CollectedItem& o) const {
    return signal == o.signal && epoch == o.epoch && index == o.index && payload == o.payload;
  }
};

class Collect : public OrderedStage {
 public:
  explicit Collect(const StageArgs& args);
  void process(Message in, Emitter& out) override;
  void epoch_end(int port, std::uint64_t epoch, Emitter& out) override;
  void stop(StopReason reason) override;

  // Everything received so far (safe to call after the run).
  std::vector<CollectedItem> items() const;

 private:
  void record(CollectedItem item);

  std::string path_;
  std::size_t max_items_;
  mutable std::mutex mutex_;
  std::vector<CollectedItem> items_;
  std::uint64_t dropped_ = 0;
};

}  // namespace flowrun
