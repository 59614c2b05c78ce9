// discard: a sink that drops everything it receives (GStreamer's fakesink): the end
// of a pipeline whose output is not needed, as in loader benchmarks.
//
//   {"id": "sink", "plugin": "discard"}
#include "flowrun/options.hpp"
#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

struct DiscardOptions {
  std::int64_t stop_after = 0;
  template <typename D>
  static void declare(D& d) {
    d(&DiscardOptions::stop_after, "stop_after",
      "end the run cleanly after this many items (sources stop; what is in flight still arrives); 0 = never")
        .min(0);
  }
};

class Discard : public OrderedStage {
 public:
  explicit Discard(const StageArgs& args)
      : OrderedStage(args), stop_after_(static_cast<std::uint64_t>(read_options<DiscardOptions>(args.params).stop_after)),
        control_(args.control) {}

  void process(Message, Emitter&) override {
    // Ends the run cleanly once enough items came (flowrun bench's N batches).
    if (stop_after_ > 0 && ++seen_ == stop_after_ && control_)
      control_->end_run(node_id(), std::to_string(stop_after_) + " items received (stop_after)");
  }

 private:
  std::uint64_t stop_after_;
  RunControl* control_;
  std::uint64_t seen_ = 0;
};

}  // namespace

PluginInfo discard_plugin() {
  PluginInfo p;
  p.name = "discard";
  p.summary = "Drops every item it receives (a sink for benchmarks)";
  p.description =
      "Consumes items and releases them at once, so their prefetch slots return to the source.\n"
      "With stop_after N it ends the run after N items (flowrun bench uses it).\n"
      "\n"
      "  {\"id\": \"sink\", \"plugin\": \"discard\"}";
  p.role = Role::Ordered;
  p.inputs = {{"in", kAnyKind, "items of any kind"}};
  declare_options<DiscardOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<Discard>(args); };
  return p;
}

}  // namespace flowrun
