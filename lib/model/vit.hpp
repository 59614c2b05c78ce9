// The Vision Transformer (Dosovitskiy et al. 2021) as a LibTorch module whose
// parameter names are timm's `vision_transformer` names (patch_embed.proj.weight,
// blocks.3.attn.qkv.weight, ...), so timm checkpoints load without mapping and the
// Hugging Face layout is one rename away (weights.cpp).
//
// Includes <torch/torch.h>: include this only from model and train-step sources.
#pragma once

#include <torch/torch.h>

#include "lib/model/vit_config.hpp"

namespace flowrun {

struct VitAttentionImpl : torch::nn::Module {
  VitAttentionImpl(const VitConfig& c, VitInit init = VitInit::Timm);
  torch::Tensor forward(const torch::Tensor& x);

  int heads;
  double attn_dropout;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::nn::Dropout proj_drop{nullptr};
};
TORCH_MODULE(VitAttention);

struct VitMlpImpl : torch::nn::Module {
  VitMlpImpl(const VitConfig& c, VitInit init = VitInit::Timm);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(VitMlp);

struct VitBlockImpl : torch::nn::Module {
  VitBlockImpl(const VitConfig& c, double drop_path, VitInit init = VitInit::Timm);
  torch::Tensor forward(torch::Tensor x);

  double drop_path;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  VitAttention attn{nullptr};
  VitMlp mlp{nullptr};
};
TORCH_MODULE(VitBlock);

struct VitImpl : torch::nn::Module {
  // Weights start as `init` says (vit_config.hpp); loading weights overwrites them.
  explicit VitImpl(const VitConfig& c, VitInit init = VitInit::Timm);
  // images (N, C, H, W) float -> logits (N, num_classes), or features (N, width) without a head.
  torch::Tensor forward(const torch::Tensor& images);
  // The pooled, normalized features the head reads.
  torch::Tensor features(const torch::Tensor& images);
  // A fresh head for `classes` outputs (0 = none): zeros under timm's init (a fine-tuning
  // start that is an even guess), PyTorch's layer init under PyTorch's.
  void reset_head(int classes);

  VitConfig config;
  VitInit init;
  torch::nn::Conv2d patch_embed{nullptr};  // registered as patch_embed.proj
  torch::Tensor cls_token, pos_embed;
  torch::nn::Dropout pos_drop{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};     // CLS pooling: final norm before the head
  torch::nn::LayerNorm fc_norm{nullptr};  // mean pooling: norm after pooling (timm's layout)
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Vit);

// Stochastic depth: drops the residual branch of whole samples with probability p
// while training, scaling the kept ones by 1 / (1 - p).
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training);

// Block index of a parameter for layer-wise decay: patch/position embeddings and the
// CLS token are layer 0, blocks.i is i + 1, the final norms and the head are depth + 1.
int vit_layer_id(const std::string& parameter_name, int depth);

}  // namespace flowrun
