// identity: passes items through unchanged. Its knobs inject the faults the
// runtime must survive (a slow stage, a stage that throws mid-stream or at
// start-up, dropped items), so failure paths are testable from a description.
//
//   {"id": "slow", "plugin": "identity", "params": {"sleep_ms": 5, "fail_at": 40}}
#include <chrono>
#include <stdexcept>
#include <thread>

#include "flowrun/options.hpp"
#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

constexpr std::int64_t kNever = -1;

struct IdentityOptions {
  double sleep_ms = 0.0;
  std::int64_t fail_at = kNever;
  bool fail_at_start = false;
  double drop_probability = 0.0;
  template <typename D>
  static void declare(D& d) {
    d(&IdentityOptions::sleep_ms, "sleep_ms", "pause per item, in milliseconds").range(0, 60000);
    d(&IdentityOptions::fail_at, "fail_at", "throw when the item with this index arrives; -1 = never").min(-1);
    d(&IdentityOptions::fail_at_start, "fail_at_start", "throw from start(), before any data flows");
    d(&IdentityOptions::drop_probability, "drop_probability", "chance of dropping each item").range(0, 1);
  }
};

class Identity : public MapStage {
 public:
  explicit Identity(const StageArgs& args) : Identity(args, read_options<IdentityOptions>(args.params)) {}
  Identity(const StageArgs& args, const IdentityOptions& o)
      : MapStage(args),
        sleep_(std::chrono::duration<double, std::milli>(o.sleep_ms)),
        fail_at_(o.fail_at),
        fail_at_start_(o.fail_at_start),
        drop_probability_(o.drop_probability) {}

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
  declare_options<IdentityOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<Identity>(args); };
  return p;
}

}  // namespace flowrun
