// saved_model: a source that emits a saved model (checkpoint or export) once, as the
// "model" payload evaluate and predict nodes take from the train stage in a training
// run. What `flowrun evaluate` and `flowrun predict` put in place of training.
//
//   {"id": "model", "plugin": "saved_model", "params": {"path": "runs/q/checkpoints/best.h5"}},
//   "model -> eval.model"
#pragma once

#include <string>
#include <vector>

#include "flowrun/options.hpp"
#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"
#include "lib/model/precision.hpp"

namespace flowrun {

struct SavedModelOptions {
  std::string path;
  bool ema = false;
  bool ema_beside = true;
  PrecisionChoice precision = PrecisionChoice::Auto;
  std::vector<double> mean, std;

  template <typename D>
  static void declare(D& d) {
    using O = SavedModelOptions;
    d.required(&O::path, "path", "a flowrun checkpoint (.h5) or an export folder (model.safetensors + config.json)");
    d(&O::ema, "ema", "use a checkpoint's EMA weights (refused for an export: it holds one set of weights)");
    d(&O::ema_beside, "ema_beside",
      "with a checkpoint that has EMA weights and ema off: load them too, so that an evaluate node scores them "
      "beside the trained ones, as training did (predict uses one model: off saves the memory)");
    d(&O::precision, "precision", "autocast dtype of the forward pass: auto = bf16 on CUDA, fp32 on the CPU",
      {{"auto", PrecisionChoice::Auto},
       {"fp32", PrecisionChoice::Fp32},
       {"bf16", PrecisionChoice::Bf16},
       {"fp16", PrecisionChoice::Fp16}});
    d(&O::mean, "mean", "per-channel mean, to normalize uint8 batches on the device; [] = batches come normalized")
        .max_length(4)
        .range(-10, 10);
    d(&O::std, "std", "per-channel std for the mean above").max_length(4).range(1e-6, 100);
  }
};

PluginInfo saved_model_plugin();
// The stage behind it (saved_model_source.cpp, which needs LibTorch's headers).
std::unique_ptr<Stage> make_saved_model_source(const StageArgs& args);

}  // namespace flowrun
