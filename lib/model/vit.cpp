#include "lib/model/vit.hpp"

#include <ATen/ops/scaled_dot_product_attention.h>

#include <cmath>

namespace flowrun {
namespace {

torch::nn::LayerNorm layer_norm(const VitConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps));
}

// Normal(0, std) truncated to +-2 std, by inverting the CDF (as PyTorch's Python
// trunc_normal_ does; LibTorch's C++ API has no trunc_normal_).
void trunc_normal(torch::Tensor t, double std) {
  const double lo = std::erf(-2.0 / std::sqrt(2.0)), hi = -lo;
  t.uniform_(lo, hi).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2 * std, 2 * std);
}

// timm's init: truncated normal (std 0.02) for linear weights, zero biases. PyTorch's
// keeps what the layer's constructor drew (Kaiming-uniform weights and biases).
void init_linear(torch::nn::Linear& layer, VitInit init) {
  if (init != VitInit::Timm) return;
  torch::NoGradGuard no_grad;
  trunc_normal(layer->weight, 0.02);
  if (layer->bias.defined()) layer->bias.zero_();
}

// The layer's affine map through aten::linear, not torch::nn::Linear::forward: the C++
// frontend's forward computes (N, T, C) inputs as matmul + a separate in-place bias add
// (and its bias gradient as a further reduction), while aten::linear folds the tokens
// into one addmm as PyTorch-Python does - 10% of the micro ViT's step on the CPU.
torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return at::linear(x, layer->weight, layer->bias);
}

}  // namespace

torch::Tensor drop_path(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  torch::Tensor mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask.div_(keep);
}

VitAttentionImpl::VitAttentionImpl(const VitConfig& c, VitInit init) : heads(c.heads), attn_dropout(c.attn_dropout) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(c.width, 3 * c.width).bias(c.qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(c.width, c.width));
  proj_drop = register_module("proj_drop", torch::nn::Dropout(c.dropout));
  init_linear(qkv, init);
  init_linear(proj, init);
}

torch::Tensor VitAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), t = x.size(1), d = x.size(2);
  // (N, T, 3, H, D/H) -> 3 x (N, H, T, D/H)
  torch::Tensor qkv_heads = linear(qkv, x).reshape({n, t, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
  // unbind, not three selects: its backward writes the three gradients into one
  // tensor (a stack), where each select's backward zero-fills a full-size gradient.
  const std::vector<torch::Tensor> q_k_v = qkv_heads.unbind(0);
  torch::Tensor out = at::scaled_dot_product_attention(q_k_v[0], q_k_v[1], q_k_v[2], {},
                                                       is_training() ? attn_dropout : 0.0, false);
  return proj_drop(linear(proj, out.transpose(1, 2).reshape({n, t, d})));
}

VitMlpImpl::VitMlpImpl(const VitConfig& c, VitInit init) {
  fc1 = register_module("fc1", torch::nn::Linear(c.width, c.mlp_width()));
  fc2 = register_module("fc2", torch::nn::Linear(c.mlp_width(), c.width));
  drop = register_module("drop", torch::nn::Dropout(c.dropout));
  init_linear(fc1, init);
  init_linear(fc2, init);
}

torch::Tensor VitMlpImpl::forward(const torch::Tensor& x) {
  return drop(linear(fc2, drop(torch::gelu(linear(fc1, x)))));
}

VitBlockImpl::VitBlockImpl(const VitConfig& c, double drop_path_, VitInit init) : drop_path(drop_path_) {
  norm1 = register_module("norm1", layer_norm(c));
  attn = register_module("attn", VitAttention(c, init));
  norm2 = register_module("norm2", layer_norm(c));
  mlp = register_module("mlp", VitMlp(c, init));
}

torch::Tensor VitBlockImpl::forward(torch::Tensor x) {
  x = x + flowrun::drop_path(attn(norm1(x)), drop_path, is_training());
  return x + flowrun::drop_path(mlp(norm2(x)), drop_path, is_training());
}

VitImpl::VitImpl(const VitConfig& c, VitInit init_) : config(c), init(init_) {
  c.check();
  auto embed = std::make_shared<torch::nn::Module>();
  patch_embed = torch::nn::Conv2d(torch::nn::Conv2dOptions(c.channels, c.width, c.patch_size).stride(c.patch_size));
  embed->register_module("proj", patch_embed);
  register_module("patch_embed", embed);
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, c.width}));
  pos_embed = register_parameter("pos_embed", torch::empty({1, c.tokens(), c.width}));
  pos_drop = register_module("pos_drop", torch::nn::Dropout(c.dropout));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.depth; ++i) {
    const double rate = c.depth > 1 ? c.drop_path * i / (c.depth - 1) : c.drop_path;
    blocks->push_back(VitBlock(c, rate, init));
  }
  if (c.pool == VitPool::Cls) {
    norm = register_module("norm", layer_norm(c));
  } else {
    fc_norm = register_module("fc_norm", layer_norm(c));
  }
  {
    torch::NoGradGuard no_grad;
    trunc_normal(pos_embed, 0.02);
    torch::nn::init::normal_(cls_token, 0.0, 1e-6);
  }
  reset_head(c.num_classes);
}

void VitImpl::reset_head(int classes) {
  config.num_classes = classes;
  if (head) {
    unregister_module("head");
    head = nullptr;
  }
  if (classes == 0) return;
  head = register_module("head", torch::nn::Linear(config.width, classes));
  if (init != VitInit::Timm) return;
  torch::NoGradGuard no_grad;
  head->weight.zero_();  // timm zero-inits the head: the fine-tuning start is an even guess
  head->bias.zero_();
}

torch::Tensor VitImpl::features(const torch::Tensor& images) {
  torch::Tensor x = patch_embed(images).flatten(2).transpose(1, 2);  // (N, grid*grid, width)
  x = torch::cat({cls_token.expand({x.size(0), -1, -1}), x}, 1) + pos_embed;
  x = pos_drop(x);
  for (const auto& block : *blocks) x = block->as<VitBlockImpl>()->forward(x);
  if (config.pool == VitPool::Cls) return norm(x).select(1, 0);
  return fc_norm(x.slice(1, 1).mean(1));
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) {
  torch::Tensor f = features(images);
  return head ? linear(head, f) : f;
}

int vit_layer_id(const std::string& name, int depth) {
  if (name == "cls_token" || name == "pos_embed" || name.rfind("patch_embed.", 0) == 0) return 0;
  if (name.rfind("blocks.", 0) == 0) return std::stoi(name.substr(7)) + 1;
  return depth + 1;
}

}  // namespace flowrun
