// counter_source: emits the numbers 0..count-1 once per epoch, optionally in a
// shuffled order that depends only on (seed, node id, epoch). A stand-in dataset
// for testing and demonstrating the runtime: what comes out is easy to check.
//
//   {"id": "numbers", "plugin": "counter_source", "params": {"count": 1000, "epochs": 2, "shuffle": true}}
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "flowrun/options.hpp"
#include "stages/core/core_stages.hpp"
#include "stages/core/number.hpp"

namespace flowrun {
namespace {

struct CounterOptions {
  std::int64_t count = 100;
  std::int64_t epochs = 1;
  bool shuffle = false;
  double sleep_ms = 0.0;
  template <typename D>
  static void declare(D& d) {
    d(&CounterOptions::count, "count", "numbers per epoch").min(0);
    d(&CounterOptions::epochs, "epochs", "how many times to emit the numbers").min(1);
    d(&CounterOptions::shuffle, "shuffle", "emit each epoch in a seeded random order");
    d(&CounterOptions::sleep_ms, "sleep_ms", "pause before each number, in milliseconds (simulates slow I/O)")
        .range(0, 60000);
  }
};

class CounterSource : public SourceStage {
 public:
  explicit CounterSource(const StageArgs& args) : CounterSource(args, read_options<CounterOptions>(args.params)) {}
  CounterSource(const StageArgs& args, const CounterOptions& o)
      : SourceStage(args),
        count_(static_cast<std::uint64_t>(o.count)),
        epochs_(static_cast<std::uint64_t>(o.epochs)),
        shuffle_(o.shuffle),
        sleep_(std::chrono::duration<double, std::milli>(o.sleep_ms)) {}

  bool next(SourceItem& item) override {
    if (epoch_ >= epochs_) return false;
    if (shuffle_ && position_ == 0 && order_.empty()) make_order();
    if (position_ == count_) {  // every item of this epoch is out: close the epoch
      item.signal = Signal::EpochEnd;
      item.epoch = epoch_;
      ++epoch_;
      position_ = 0;
      order_.clear();
      return true;
    }
    if (sleep_.count() > 0) std::this_thread::sleep_for(sleep_);
    const std::uint64_t value = shuffle_ ? order_[position_] : position_;
    ++position_;
    item.signal = Signal::Data;
    item.epoch = epoch_;
    item.index = value;
    item.payload = std::make_shared<NumberPayload>(static_cast<std::int64_t>(value));
    return true;
  }

 private:
  // Only shuffled epochs need the order in memory (8 bytes per number).
  void make_order() {
    order_.resize(count_);
    std::iota(order_.begin(), order_.end(), 0);
    Rng rng = epoch_rng(epoch_);
    for (std::uint64_t i = count_; i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);  // Fisher-Yates
  }

  std::uint64_t count_;
  std::uint64_t epochs_;
  bool shuffle_;
  std::chrono::duration<double, std::milli> sleep_;
  std::uint64_t epoch_ = 0;
  std::uint64_t position_ = 0;
  std::vector<std::uint64_t> order_;
};

}  // namespace

PluginInfo counter_source_plugin() {
  PluginInfo p;
  p.name = "counter_source";
  p.summary = "Emits the numbers 0..count-1 each epoch (a test and demo source)";
  p.description =
      "Emits `count` numbers per epoch for `epochs` epochs, each as a 'number' payload whose\n"
      "index is the number itself, then an epoch-end signal. With shuffle, each epoch's order\n"
      "is a permutation drawn from (seed, node id, epoch): the same seed gives the same order.\n"
      "\n"
      "  {\"id\": \"numbers\", \"plugin\": \"counter_source\", \"params\": {\"count\": 1000, \"shuffle\": true}}";
  p.role = Role::Source;
  p.outputs = {{"out", kNumberKind, "the numbers, one message each"}};
  declare_options<CounterOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<CounterSource>(args); };
  return p;
}

}  // namespace flowrun
