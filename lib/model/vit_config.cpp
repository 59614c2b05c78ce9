#include "lib/model/vit_config.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace flowrun {
namespace {

struct Preset {
  const char* name;
  int image_size, patch_size, width, depth, heads;
  double mlp_ratio = 4.0;
};

// Widths, depths and heads as published (Dosovitskiy et al. 2021; DeiT for tiny and small).
constexpr Preset kPresets[] = {
    {"vit_tiny_patch16_224", 224, 16, 192, 12, 3},   {"vit_small_patch16_224", 224, 16, 384, 12, 6},
    {"vit_base_patch16_224", 224, 16, 768, 12, 12},  {"vit_large_patch16_224", 224, 16, 1024, 24, 16},
    {"vit_tiny_patch32_224", 224, 32, 192, 12, 3},   {"vit_small_patch32_224", 224, 32, 384, 12, 6},
    {"vit_base_patch32_224", 224, 32, 768, 12, 12},  {"vit_large_patch32_224", 224, 32, 1024, 24, 16},
    // CIFAR-size: 32 px in 4x4 patches = 64 tokens + CLS.
    {"vit_tiny_patch4_32", 32, 4, 192, 12, 3},       {"vit_small_patch4_32", 32, 4, 384, 12, 6},
    // Small enough to train on a 2-core CPU in minutes (~0.8 M parameters): the model this
    // project's CPU pipelines pretrain on Tiny ImageNet and fine-tune on CIFAR-10.
    {"vit_cifar_micro", 32, 4, 128, 6, 4, 2.0},
};

}  // namespace

void VitConfig::check() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("ViT config: " + what); };
  if (image_size <= 0 || patch_size <= 0) fail("image_size and patch_size must be positive");
  if (image_size % patch_size != 0)
    fail("image_size " + std::to_string(image_size) + " is not a multiple of patch_size " + std::to_string(patch_size));
  if (width <= 0 || depth <= 0 || heads <= 0) fail("width, depth and heads must be positive");
  if (width % heads != 0)
    fail("width " + std::to_string(width) + " is not divisible by heads " + std::to_string(heads));
  if (mlp_ratio <= 0) fail("mlp_ratio must be positive");
  if (num_classes < 0) fail("num_classes must be >= 0");
}

std::string VitConfig::describe() const {
  return "ViT " + std::to_string(image_size) + "px patch " + std::to_string(patch_size) + ", width " +
         std::to_string(width) + ", depth " + std::to_string(depth) + ", heads " + std::to_string(heads) +
         ", mlp " + std::to_string(mlp_width()) + ", " + (pool == VitPool::Cls ? "CLS" : "mean") + " pooling, " +
         std::to_string(num_classes) + " classes";
}

VitConfig vit_preset(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    VitConfig c;
    c.image_size = p.image_size;
    c.patch_size = p.patch_size;
    c.width = p.width;
    c.depth = p.depth;
    c.heads = p.heads;
    c.mlp_ratio = p.mlp_ratio;
    return c;
  }
  std::string known;
  for (const Preset& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  throw std::invalid_argument("unknown ViT preset '" + name + "'; known: " + known);
}

std::vector<std::string> vit_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

std::string vit_config_to_json(const VitConfig& c) {
  const nlohmann::json j = {{"image_size", c.image_size},     {"patch_size", c.patch_size},
                            {"channels", c.channels},         {"width", c.width},
                            {"depth", c.depth},               {"heads", c.heads},
                            {"mlp_ratio", c.mlp_ratio},       {"qkv_bias", c.qkv_bias},
                            {"dropout", c.dropout},           {"attn_dropout", c.attn_dropout},
                            {"drop_path", c.drop_path},       {"pool", c.pool == VitPool::Cls ? "cls" : "mean"},
                            {"num_classes", c.num_classes},   {"layer_norm_eps", c.layer_norm_eps}};
  return j.dump();
}

VitConfig vit_config_from_json(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  VitConfig c;
  auto get = [&](const char* name, auto& field) {
    if (!j.contains(name)) throw std::invalid_argument(std::string("model config lacks '") + name + "'");
    try {
      j.at(name).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw std::invalid_argument(std::string("model config field '") + name + "' has the wrong type");
    }
  };
  get("image_size", c.image_size);
  get("patch_size", c.patch_size);
  get("channels", c.channels);
  get("width", c.width);
  get("depth", c.depth);
  get("heads", c.heads);
  get("mlp_ratio", c.mlp_ratio);
  get("qkv_bias", c.qkv_bias);
  get("dropout", c.dropout);
  get("attn_dropout", c.attn_dropout);
  get("drop_path", c.drop_path);
  std::string pool;
  get("pool", pool);
  c.pool = pool == "mean" ? VitPool::Mean : VitPool::Cls;
  get("num_classes", c.num_classes);
  get("layer_norm_eps", c.layer_norm_eps);
  c.check();
  return c;
}

VitInit vit_init_from_name(const std::string& name) {
  if (name == "pytorch") return VitInit::Pytorch;
  if (name == "timm") return VitInit::Timm;
  throw std::invalid_argument("unknown init '" + name + "'; expected pytorch or timm");
}

const char* vit_init_name(VitInit init) { return init == VitInit::Timm ? "timm" : "pytorch"; }

}  // namespace flowrun
