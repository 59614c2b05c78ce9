// A trained model as saved on disk, for evaluating or predicting with it: a flowrun
// checkpoint (.h5: weights, EMA weights, classes, the description it was trained
// with) or an exported folder (model.safetensors + config.json: flowrun's export,
// which records the same under "flowrun", or a Hugging Face or timm folder, which has
// the model's shape and labels only).
//
// The description is what makes preprocessing come from the model rather than from
// the user: `flowrun predict` and `flowrun evaluate` rebuild the training run's
// evaluation chain from it. Torch-free: the weights are read by the saved_model source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/model/vit_config.hpp"

namespace flowrun {

struct SavedModelInfo {
  enum class Kind { Checkpoint, Export };
  Kind kind = Kind::Checkpoint;
  std::string path;              // as given
  std::string weights_file;      // the .h5 checkpoint or the .safetensors file
  VitConfig config;
  std::vector<std::string> classes;  // label -> name; LABEL_k where the file names none
  std::string pipeline_json;     // the description it was trained with; "" = not recorded
  std::uint64_t step = 0;        // optimizer steps taken (0 when not recorded)
  bool has_ema = false;          // a checkpoint with EMA weights
  bool exported_ema = false;     // an export of EMA weights
  std::string describe() const;  // "checkpoint runs/q/checkpoints/best.h5 (step 1950, ViT ...)"
};

// Throws std::runtime_error naming `path` and what was expected when it is neither a
// flowrun checkpoint nor a folder (or .safetensors file) with a readable config.json.
SavedModelInfo read_saved_model_info(const std::string& path);

}  // namespace flowrun
