// discard: a sink that drops everything it receives (GStreamer's fakesink): the end
// of a pipeline whose output is not needed, as in loader benchmarks.
//
//   {"id": "sink", "plugin": "discard"}
#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

class Discard : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message, Emitter&) override {}
};

}  // namespace

PluginInfo discard_plugin() {
  PluginInfo p;
  p.name = "discard";
  p.summary = "Drops every item it receives (a sink for benchmarks)";
  p.description =
      "Consumes items and releases them at once, so their prefetch slots return to the source.\n"
      "\n"
      "  {\"id\": \"sink\", \"plugin\": \"discard\"}";
  p.role = Role::Ordered;
  p.inputs = {{"in", kAnyKind, "items of any kind"}};
  p.create = [](const StageArgs& args) { return std::make_unique<Discard>(args); };
  return p;
}

}  // namespace flowrun
