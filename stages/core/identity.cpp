// identity: passes items through unchanged. Its knobs inject the faults the
// runtime must survive (a slow stage, a stage that throws mid-stream or at
// start-up, dropped items), so failure paths are testable from a description.
//
//   {"id": "slow", "plugin": "identity", "params": {"sleep_ms": 5, "fail_at": 40}}
#include <chrono>
#include <stdexcept>
#include <thread>

#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

constexpr double kDefaultSleepMs = 0.0;
constexpr std::int64_t kNever = -1;
constexpr bool kDefaultFailAtStart = false;
constexpr double kDefaultDropProbability = 0.0;

class Identity : public MapStage {
 public:
  explicit Identity(const StageArgs& args)
      : MapStage(args),
        sleep_(std::chrono::duration<double, std::milli>(args.params.number("sleep_ms"))),
        fail_at_(args.params.integer("fail_at")),
        fail_at_start_(args.params.boolean("fail_at_start")),
        drop_probability_(args.params.number("drop_probability")) {}

  void start() override {
    if (fail_at_start_) throw std::runtime_error("fail_at_start is set: failing on purpose at start-up");
  }

  std::shared_ptr<const Payload> process(const Message& in) override {
    if (sleep_.count() > 0) std::this_thread::sleep_for(sleep_);
    if (fail_at_ != kNever && in.index == static_cast<std::uint64_t>(fail_at_)) {
      throw std::runtime_error("fail_at is " + std::to_string(fail_at_) + ": failing on purpose at item " +
                               std::to_string(in.index) + " of epoch " + std::to_string(in.epoch));
    }
    if (drop_probability_ > 0 && item_rng(in).bernoulli(drop_probability_)) return nullptr;
    return in.payload;
  }

 private:
  std::chrono::duration<double, std::milli> sleep_;
  std::int64_t fail_at_;
  bool fail_at_start_;
  double drop_probability_;
};

}  // namespace

PluginInfo identity_plugin() {
  PluginInfo p;
  p.name = "identity";
  p.summary = "Passes items through unchanged; knobs to slow down, fail or drop (for tests)";
  p.description =
      "Forwards every item as it is. The parameters inject faults: a per-item delay, an\n"
      "exception at a given item index or at start-up, and random drops (deterministic per\n"
      "item: the same seed drops the same items). A dropped item travels on as a skip, so\n"
      "ordering downstream is unaffected.\n"
      "\n"
      "  {\"id\": \"slow\", \"plugin\": \"identity\", \"params\": {\"sleep_ms\": 5, \"fail_at\": 40}}";
  p.role = Role::Map;
  p.inputs = {{"in", kAnyKind, "items of any kind"}};
  p.outputs = {{"out", kSameKind, "the same items"}};
  p.params.number("sleep_ms", kDefaultSleepMs, "pause per item, in milliseconds").range(0, 60000);
  p.params.integer("fail_at", kNever, "throw when the item with this index arrives; -1 = never").min(-1);
  p.params.boolean("fail_at_start", kDefaultFailAtStart, "throw from start(), before any data flows");
  p.params.number("drop_probability", kDefaultDropProbability, "chance of dropping each item").range(0, 1);
  p.create = [](const StageArgs& args) { return std::make_unique<Identity>(args); };
  return p;
}

}  // namespace flowrun
