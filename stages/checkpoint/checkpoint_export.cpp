#include "stages/checkpoint/checkpoint_export.hpp"

#include "lib/model/vit.hpp"
#include "lib/model/weights.hpp"
#include "stages/checkpoint/saved_model.hpp"
#include "stages/checkpoint/saved_model_weights.hpp"

namespace flowrun {

ExportSummary export_checkpoint(const std::string& checkpoint, const std::string& folder, bool ema) {
  const SavedModelInfo info = read_saved_model_info(checkpoint);
  if (info.kind != SavedModelInfo::Kind::Checkpoint)
    throw std::runtime_error(checkpoint + " is an export already, not a checkpoint (.h5)");
  if (ema && !info.has_ema)
    throw std::runtime_error(checkpoint + " has no 'ema/' weights (the run had no EMA: export without --ema)");
  Vit model = load_saved_model(info, ema);
  export_vit_huggingface(model, folder, info.classes, {info.pipeline_json, info.step, ema});
  return {info.config.describe(), info.step, ema};
}

}  // namespace flowrun
