// `flowrun export`: a checkpoint's weights as model.safetensors with Hugging Face
// names plus config.json, loadable by transformers and by flowrun's `pretrained`.
#pragma once

#include <cstdint>
#include <string>

namespace flowrun {

struct ExportSummary {
  std::string model;       // VitConfig::describe()
  std::uint64_t step = 0;  // of the checkpoint
  bool ema = false;
};

// `ema` exports the EMA weights (throws when the checkpoint has none).
ExportSummary export_checkpoint(const std::string& checkpoint, const std::string& folder, bool ema);

}  // namespace flowrun
