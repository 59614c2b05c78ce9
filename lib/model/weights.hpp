// Pretrained ViT weights in and out of safetensors files.
//
// Reads both published layouts: timm's vision_transformer names (the module's own)
// and Hugging Face's ViTModel / ViTForImageClassification names (separate query /
// key / value, "vit." prefix or none), in F32, F16, BF16 or F64. Adapts what
// fine-tuning needs: position embeddings resampled (bicubic over the 2-D grid) to
// another image or patch grid, a classifier of another class count replaced by a
// fresh one. Everything else must match, or the load fails with a report naming
// every missing, unexpected and mis-shaped tensor.
//
// Exports with Hugging Face names plus a config.json, so a fine-tuned model loads
// with transformers' ViTForImageClassification.from_pretrained(folder).
#pragma once

#include <string>
#include <vector>

#include "lib/model/vit.hpp"

namespace flowrun {

enum class WeightLayout { Timm, HuggingFace };
const char* weight_layout_name(WeightLayout layout);

struct LoadOptions {
  // Name prefixes (module names, timm layout) that may be absent from the file or
  // present without a place in the model; anything else missing or extra fails.
  std::vector<std::string> allow_missing;
  std::vector<std::string> allow_unexpected;
};

struct LoadReport {
  std::string path;
  WeightLayout layout = WeightLayout::Timm;
  int loaded = 0;
  std::vector<std::string> missing;      // model tensors the file lacks
  std::vector<std::string> unexpected;   // file tensors the model has no place for
  std::vector<std::string> mismatched;   // "name: file (a, b) vs model (c, d)"
  std::vector<std::string> ignored;      // known extras dropped by design (HF pooler)
  std::string interpolated;              // "pos_embed 14x14 -> 2x2" when resampled
  std::string head;                      // "kept", "fresh (file has none)", "replaced: 1000 -> 10 classes"
  std::vector<std::string> lines() const;  // the report as printed
};

// Loads `path` (a .safetensors file) into `model`. Throws std::runtime_error with the
// whole report when a tensor is missing, unexpected or mis-shaped and not allowed.
LoadReport load_vit_weights(Vit& model, const std::string& path, const LoadOptions& options = {});

// The file's tensors under timm names, converted to float32 (HF q/k/v joined into
// qkv). HF pooler tensors are left out and named in `ignored`. Exposed for tests of
// the name mapping.
std::vector<std::pair<std::string, torch::Tensor>> read_as_timm(const std::string& path, WeightLayout* layout = nullptr,
                                                                std::vector<std::string>* ignored = nullptr);

// (1, 1 + g*g, D) -> (1, 1 + G*G, D): bicubic over the patch grid, CLS token kept.
torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int new_grid);

// Where an exported model came from. Kept in config.json under "flowrun" (transformers
// ignores the key): the whole model config (mean pooling, init-free fields HF's config
// lacks) and the description it was trained with, so that `flowrun predict` and
// `flowrun evaluate` preprocess an export as the training run evaluated.
struct ExportProvenance {
  std::string pipeline_json;  // the resolved description; "" = not known
  std::uint64_t step = 0;     // optimizer steps the weights had taken
  bool ema = false;           // the EMA weights rather than the trained ones
};

// Writes folder/model.safetensors (Hugging Face ViTForImageClassification names,
// float32) and folder/config.json, both atomically. `class_names` fills id2label.
void export_vit_huggingface(Vit& model, const std::string& folder, const std::vector<std::string>& class_names = {},
                            const ExportProvenance& provenance = {});

}  // namespace flowrun
