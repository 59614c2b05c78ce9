#include "stages/train/param_groups.hpp"

#include <cmath>
#include <map>

namespace flowrun {

bool excluded_from_weight_decay(const std::string& name, const torch::Tensor& param) {
  // 1-D tensors are LayerNorm weights and biases; conv and linear biases too.
  return param.dim() <= 1 || name == "pos_embed" || name == "cls_token";
}

std::vector<ParamGroup> vit_param_groups(Vit& model, double weight_decay, double layer_decay) {
  const int depth = model->config.depth;
  const int num_layers = depth + 1;
  std::map<std::pair<int, bool>, ParamGroup> groups;
  for (const auto& item : model->named_parameters()) {
    const int layer = vit_layer_id(item.key(), depth);
    const bool decay = !excluded_from_weight_decay(item.key(), item.value());
    ParamGroup& g = groups[{layer, decay}];
    g.layer = layer;
    g.decay = decay;
    g.lr_scale = std::pow(layer_decay, num_layers - layer);
    g.weight_decay = decay ? weight_decay : 0.0;
    g.names.push_back(item.key());
    g.params.push_back(item.value());
  }
  std::vector<ParamGroup> out;
  for (auto& [key, g] : groups) out.push_back(std::move(g));
  return out;
}

}  // namespace flowrun
