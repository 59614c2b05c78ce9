// The saved_model source's plugin declaration: compiles without LibTorch's headers.
#include "stages/checkpoint/saved_model_source.hpp"
#include "stages/messages/model_snapshot_kind.hpp"

namespace flowrun {

PluginInfo saved_model_plugin() {
  PluginInfo p;
  p.name = "saved_model";
  p.summary = "Emits a saved model (checkpoint or export) once, for evaluate and predict nodes";
  p.description =
      "Source. Reads a flowrun checkpoint (.h5: the trained weights, or its EMA weights with ema,\n"
      "and the EMA weights beside the trained ones when the run had them, as training evaluated) or\n"
      "an export folder (model.safetensors + config.json, from flowrun export, transformers or\n"
      "timm) at start, on the run's device, and emits it once as a model payload marked final: an\n"
      "evaluate node scores it on one epoch of its batches (split \"test\" unless named), a predict\n"
      "node labels its batches. `flowrun evaluate` and `flowrun predict` build their pipelines\n"
      "around it; mean and std normalize uint8 batches as the train stage's do.\n"
      "\n"
      "  {\"id\": \"model\", \"plugin\": \"saved_model\", \"params\": {\"path\": \"runs/q/checkpoints/best.h5\"}},\n"
      "  \"model -> eval.model\"";
  p.role = Role::Source;
  p.outputs = {{"model", kModelKind, "the model, once"}};
  declare_options<SavedModelOptions>(p.params);
  p.create = make_saved_model_source;
  return p;
}

}  // namespace flowrun
