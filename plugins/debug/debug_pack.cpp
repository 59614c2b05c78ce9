// The "debug" plugin pack: stages for looking at a stream while building a
// pipeline. Loaded like any external pack ("plugins": ["flowrun_debug"] with
// FLOWRUN_PLUGIN_PATH pointing at build/plugins), so it also exercises the plugin ABI.
//
//   {"id": "peek", "plugin": "debug.log", "params": {"every": 100}}
#include <atomic>
#include <map>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"

namespace {

using namespace flowrun;

struct LogOptions {
  std::int64_t every = 1000;
  template <typename D>
  static void declare(D& d) {
    d(&LogOptions::every, "every", "log one item out of this many").min(1);
  }
};

// Logs every N-th item that passes, then forwards it unchanged.
class LogEveryN : public MapStage {
 public:
  explicit LogEveryN(const StageArgs& args)
      : MapStage(args), every_(static_cast<std::uint64_t>(read_options<LogOptions>(args.params).every)) {}

  std::shared_ptr<const Payload> process(const Message& in) override {
    const std::uint64_t n = seen_++;
    if (n % every_ == 0) {
      log::info("[", node_id(), "] item ", n, ": epoch ", in.epoch, " index ", in.index, " ",
                in.payload ? in.payload->describe() : "(no payload)");
    }
    return in.payload;
  }

 private:
  std::uint64_t every_;
  std::atomic<std::uint64_t> seen_{0};
};

// Counts the items of each epoch and logs the count when the epoch ends.
class CountPerEpoch : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message in, Emitter&) override { ++counts_[in.epoch]; }
  void epoch_end(int, std::uint64_t epoch, Emitter&) override {
    log::info("[", node_id(), "] epoch ", epoch, ": ", counts_[epoch], " items");
  }

 private:
  std::map<std::uint64_t, std::uint64_t> counts_;
};

void register_plugins(Registry& registry) {
  PluginInfo log_info;
  log_info.name = "debug.log";
  log_info.summary = "Logs every N-th item passing through, unchanged";
  log_info.description = "  {\"id\": \"peek\", \"plugin\": \"debug.log\", \"params\": {\"every\": 100}}";
  log_info.role = Role::Map;
  log_info.inputs = {{"in", kAnyKind, "items of any kind"}};
  log_info.outputs = {{"out", kSameKind, "the same items"}};
  declare_options<LogOptions>(log_info.params);
  log_info.create = [](const StageArgs& args) { return std::make_unique<LogEveryN>(args); };
  registry.add(std::move(log_info));

  PluginInfo count;
  count.name = "debug.count";
  count.summary = "Counts items per epoch and logs the count at each epoch end (a sink)";
  count.description = "  {\"id\": \"count\", \"plugin\": \"debug.count\"}";
  count.role = Role::Ordered;
  count.inputs = {{"in", kAnyKind, "items of any kind"}};
  count.create = [](const StageArgs& args) { return std::make_unique<CountPerEpoch>(args); };
  registry.add(std::move(count));
}

}  // namespace

FLOWRUN_PLUGIN_PACK("debug", "1.0", register_plugins)
