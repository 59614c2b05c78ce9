// The shape of a Vision Transformer, free of LibTorch so descriptions, presets and
// weight-name mapping can be handled without compiling torch headers.
#pragma once

#include <string>
#include <vector>

namespace flowrun {

enum class VitPool { Cls, Mean };

// How a model's weights start before any are loaded (weights from a file or a checkpoint
// overwrite them; it is not part of the model's identity, so checkpoints do not store it).
//   Pytorch  every linear and convolution layer as PyTorch constructs it (Kaiming-uniform
//            weights and biases, the head included): timm's weight_init='reset'.
//   Timm     linear weights truncated normal (0.02), biases zero (timm's default init), and
//            the head zero (as timm's 'jax' mode).
// Both: position embedding truncated normal (0.02), CLS token N(0, 1e-6), the patch
// convolution and LayerNorms as PyTorch constructs them.
// From scratch on CIFAR-10 PyTorch's learns faster (docs/learning-quality.md); the zero
// head of timm's is the usual start for fine-tuning a pretrained model.
enum class VitInit { Pytorch, Timm };
VitInit vit_init_from_name(const std::string& name);  // "pytorch" | "timm"; throws otherwise
const char* vit_init_name(VitInit init);

struct VitConfig {
  int image_size = 224;
  int patch_size = 16;
  int channels = 3;
  int width = 768;   // embedding dimension (timm: embed_dim, HF: hidden_size)
  int depth = 12;    // transformer blocks
  int heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double dropout = 0.0;         // after the position embedding, in the MLP and projections
  double attn_dropout = 0.0;    // on the attention weights
  double drop_path = 0.0;       // stochastic depth of the last block; 0 at the first, linear between
  VitPool pool = VitPool::Cls;  // CLS token, or the mean of the patch tokens (timm's "avg")
  int num_classes = 1000;       // 0 = no head (features)
  double layer_norm_eps = 1e-6;  // timm 1e-6, Hugging Face 1e-12

  int grid() const { return image_size / patch_size; }
  int tokens() const { return grid() * grid() + 1; }
  int mlp_width() const { return static_cast<int>(width * mlp_ratio); }
  // Throws std::invalid_argument naming the first inconsistent field.
  void check() const;
  std::string describe() const;
};

// Published shapes: vit_{tiny,small,base,large}_patch{16,32}_224 and the 32-px
// CIFAR-size models vit_{tiny,small}_patch4_32, and vit_cifar_micro (width 128, depth 6,
// 4 heads, MLP ratio 2) that trains on a 2-core CPU in minutes.
VitConfig vit_preset(const std::string& name);
std::vector<std::string> vit_preset_names();

// Every field as a JSON object (checkpoints store the model this way), and back;
// from_json throws naming a missing or mistyped field.
std::string vit_config_to_json(const VitConfig& config);
VitConfig vit_config_from_json(const std::string& json);

}  // namespace flowrun
