// A saved model's weights in a Vit: what the saved_model source and `flowrun export`
// both load. Needs LibTorch's headers (keep it out of torch-free files).
#pragma once

#include "lib/model/vit.hpp"
#include "stages/checkpoint/saved_model.hpp"

namespace flowrun {

// The model `info` describes, in eval mode on the CPU: a checkpoint's "model" (or, with
// `ema`, "ema") tensors, reading nothing else of the file, or an export's safetensors.
// Throws naming the file when a tensor is missing or mis-shaped.
Vit load_saved_model(const SavedModelInfo& info, bool ema);

}  // namespace flowrun
