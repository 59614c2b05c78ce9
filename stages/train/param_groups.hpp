// Optimizer parameter groups of a ViT: weight decay only on weight matrices and the
// patch projection (never on LayerNorm weights, biases, the position embedding or
// the CLS token), and per-layer learning-rate scales for layer-wise decay (LLRD):
//
//   scale(layer) = layer_decay ^ (num_layers - layer),  num_layers = depth + 1
//
// with the patch/position embeddings and CLS token at layer 0, blocks.i at layer
// i + 1, the final norm and the head at layer depth + 1 (scale 1: the base lr).
// layer_decay = 1 gives every group the base lr (full fine-tuning).
#pragma once

#include <string>
#include <vector>

#include "lib/model/vit.hpp"

namespace flowrun {

struct ParamGroup {
  int layer = 0;
  bool decay = true;
  double lr_scale = 1.0;
  double weight_decay = 0.0;
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
};

bool excluded_from_weight_decay(const std::string& name, const torch::Tensor& param);

// Every parameter of `model` in exactly one group, ordered by (layer, decay).
std::vector<ParamGroup> vit_param_groups(Vit& model, double weight_decay, double layer_decay);

}  // namespace flowrun
