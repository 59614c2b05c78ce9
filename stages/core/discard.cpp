// discard: a sink that drops everything it receives (GStreamer's fakesink): the end
// of a pipeline whose output is not needed, as in loader benchmarks.
//
//   {"id": "sink", "plugin": "discard"}
#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

class Discard : public OrderedStage {
 public:
  explicit Discard(const StageArgs& args)
      : OrderedStage(args), stop_after_(static_cast<std::uint64_t>(args.params.integer("stop_after"))),
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
  p.params.integer("stop_after", 0, "end the run cleanly after this many items (sources stop; what is in flight "
                                    "still arrives); 0 = never").min(0);
  p.create = [](const StageArgs& args) { return std::make_unique<Discard>(args); };
  return p;
}

}  // namespace flowrun
