// A pack that registers a plugin under a built-in's name: must be refused whole.
#include <memory>

#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"

namespace {

class Passthrough : public flowrun::MapStage {
 public:
  using MapStage::MapStage;
  std::shared_ptr<const flowrun::Payload> process(const flowrun::Message& in) override { return in.payload; }
};

void register_plugins(flowrun::Registry& registry) {
  for (const char* name : {"clash.fine", "identity"}) {
    flowrun::PluginInfo p;
    p.name = name;
    p.summary = "clashing test plugin";
    p.role = flowrun::Role::Map;
    p.inputs = {{"in", flowrun::kAnyKind, "in"}};
    p.outputs = {{"out", flowrun::kSameKind, "out"}};
    p.create = [](const flowrun::StageArgs& a) { return std::make_unique<Passthrough>(a); };
    registry.add(std::move(p));
  }
}

}  // namespace

FLOWRUN_PLUGIN_PACK("clash", "1.0", register_plugins)
