#include "stages/checkpoint/checkpoint_export.hpp"

#include "lib/model/vit.hpp"
#include "lib/model/weights.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"

namespace flowrun {

ExportSummary export_checkpoint(const std::string& checkpoint, const std::string& folder, bool ema) {
  const CheckpointFile file = read_checkpoint(checkpoint);
  const VitConfig config = vit_config_from_json(file.state.model_config);
  Vit model(config);
  const std::string prefix = ema ? "ema/" : "model/";
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const at::Tensor* saved = file.state.find(prefix + p.key());
    if (!saved) {
      throw std::runtime_error(checkpoint + " has no '" + prefix + p.key() + "'" +
                               (ema ? " (the run had no EMA: export without --ema)" : ""));
    }
    p.value().copy_(*saved);
  }
  export_vit_huggingface(model, folder, file.state.classes, {file.pipeline_json, file.state.step, ema});
  return {config.describe(), file.state.step, ema};
}

}  // namespace flowrun
