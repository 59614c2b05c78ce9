#include "lib/model/weights.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"
#include "lib/model/safetensors.hpp"

namespace flowrun {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

at::ScalarType scalar_type(DType dtype, const std::string& name) {
  switch (dtype) {
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F64: return at::kDouble;
    default: throw std::runtime_error("tensor " + name + " has dtype " + dtype_name(dtype) + "; weights must be F32, F16, BF16 or F64");
  }
}

torch::Tensor to_float(const TensorView& view) {
  auto t = torch::from_blob(const_cast<std::uint8_t*>(view.data), view.shape,
                            torch::TensorOptions().dtype(scalar_type(view.dtype, view.name)));
  return t.to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
}

// One Hugging Face name in timm terms: the target name, and which third of qkv
// (0 query, 1 key, 2 value) it fills, or -1.
struct Mapped {
  std::string name;
  int qkv_part = -1;
};

// Per-block renames, Hugging Face suffix -> timm suffix.
const std::pair<const char*, const char*> kBlockNames[] = {
    {"layernorm_before.", "norm1."},        {"layernorm_after.", "norm2."},
    {"attention.output.dense.", "attn.proj."}, {"intermediate.dense.", "mlp.fc1."},
    {"output.dense.", "mlp.fc2."},
};
const char* const kQkv[] = {"attention.attention.query.", "attention.attention.key.", "attention.attention.value."};

// Returns an empty name for tensors with no place in a ViT (reported as unexpected).
Mapped hf_to_timm(std::string name) {
  if (starts_with(name, "vit.")) name = name.substr(4);
  if (name == "embeddings.cls_token") return {"cls_token"};
  if (name == "embeddings.position_embeddings") return {"pos_embed"};
  if (starts_with(name, "embeddings.patch_embeddings.projection.")) return {"patch_embed.proj." + name.substr(39)};
  if (starts_with(name, "layernorm.")) return {"norm." + name.substr(10)};
  if (starts_with(name, "classifier.")) return {"head." + name.substr(11)};
  const std::string layer = "encoder.layer.";
  if (!starts_with(name, layer)) return {};
  const std::size_t dot = name.find('.', layer.size());
  if (dot == std::string::npos) return {};
  const std::string block = "blocks." + name.substr(layer.size(), dot - layer.size()) + ".";
  const std::string rest = name.substr(dot + 1);
  for (int part = 0; part < 3; ++part)
    if (starts_with(rest, kQkv[part])) return {block + "attn.qkv." + rest.substr(std::strlen(kQkv[part])), part};
  for (const auto& [hf, timm] : kBlockNames)
    if (starts_with(rest, hf)) return {block + timm + rest.substr(std::strlen(hf))};
  return {};
}

bool is_hf_pooler(const std::string& name) { return starts_with(name, "pooler.") || starts_with(name, "vit.pooler."); }

bool allowed(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (starts_with(name, p)) return true;
  return false;
}

}  // namespace

const char* weight_layout_name(WeightLayout layout) {
  return layout == WeightLayout::Timm ? "timm" : "Hugging Face";
}

std::vector<std::pair<std::string, torch::Tensor>> read_as_timm(const std::string& path, WeightLayout* layout_out,
                                                                std::vector<std::string>* ignored) {
  auto file = SafetensorsFile::open(path);
  bool hf = false;
  for (const auto& t : file->tensors())
    if (t.name.find("embeddings.patch_embeddings") != std::string::npos || t.name.find("encoder.layer.") != std::string::npos)
      hf = true;
  if (layout_out) *layout_out = hf ? WeightLayout::HuggingFace : WeightLayout::Timm;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (!hf) {
    for (const auto& t : file->tensors()) out.emplace_back(t.name, to_float(t));
    return out;
  }
  std::map<std::string, std::array<torch::Tensor, 3>> qkv;  // joined once all three parts are read
  for (const auto& t : file->tensors()) {
    if (is_hf_pooler(t.name)) {
      if (ignored) ignored->push_back(t.name + " (ViTModel's pooler; not used for classification)");
      continue;
    }
    Mapped m = hf_to_timm(t.name);
    if (m.name.empty()) {
      out.emplace_back("?" + t.name, torch::Tensor());  // unexpected: keep the file's name for the report
    } else if (m.qkv_part < 0) {
      out.emplace_back(m.name, to_float(t));
    } else {
      qkv[m.name][static_cast<std::size_t>(m.qkv_part)] = to_float(t);
    }
  }
  for (auto& [name, parts] : qkv) {
    if (!parts[0].defined() || !parts[1].defined() || !parts[2].defined())
      throw std::runtime_error(path + ": " + name + " lacks one of query, key and value");
    out.emplace_back(name, torch::cat({parts[0], parts[1], parts[2]}, 0));
  }
  return out;
}

torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int new_grid) {
  const int64_t tokens = pos_embed.size(1) - 1, width = pos_embed.size(2);
  const auto old_grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tokens))));
  if (old_grid * old_grid != tokens)
    throw std::runtime_error("position embedding has " + std::to_string(tokens) + " patch tokens, not a square grid");
  if (old_grid == new_grid) return pos_embed;
  torch::Tensor cls = pos_embed.slice(1, 0, 1);
  torch::Tensor grid = pos_embed.slice(1, 1).reshape({1, old_grid, old_grid, width}).permute({0, 3, 1, 2});
  grid = torch::nn::functional::interpolate(
      grid, torch::nn::functional::InterpolateFuncOptions()
                .size(std::vector<int64_t>{new_grid, new_grid})
                .mode(torch::kBicubic)
                .align_corners(false));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, static_cast<int64_t>(new_grid) * new_grid, width});
  return torch::cat({cls, grid}, 1);
}

std::vector<std::string> LoadReport::lines() const {
  std::vector<std::string> out;
  out.push_back("weights " + path + " (" + weight_layout_name(layout) + " names): " + std::to_string(loaded) +
                " tensors loaded");
  if (!interpolated.empty()) out.push_back("  position embedding resampled: " + interpolated);
  if (!head.empty()) out.push_back("  classifier head: " + head);
  for (const auto& n : missing) out.push_back("  missing (model has, file lacks): " + n);
  for (const auto& n : unexpected) out.push_back("  unexpected (file has, model lacks): " + n);
  for (const auto& n : mismatched) out.push_back("  shape mismatch: " + n);
  for (const auto& n : ignored) out.push_back("  ignored: " + n);
  return out;
}

LoadReport load_vit_weights(Vit& model, const std::string& path, const LoadOptions& options) {
  LoadReport report;
  report.path = path;
  auto tensors = read_as_timm(path, &report.layout, &report.ignored);
  std::map<std::string, torch::Tensor> file;
  for (auto& [name, t] : tensors) {
    if (name[0] == '?') {
      if (!allowed(name.substr(1), options.allow_unexpected)) report.unexpected.push_back(name.substr(1));
      continue;
    }
    file[name] = t;
  }

  const VitConfig& c = model->config;
  bool head_in_file = file.count("head.weight") > 0;
  if (head_in_file) {
    const int64_t file_classes = file["head.weight"].size(0);
    if (c.num_classes != file_classes || c.num_classes == 0) {
      report.head = "replaced: file has " + std::to_string(file_classes) + " classes, model " +
                    std::to_string(c.num_classes) + (c.num_classes ? " (fresh, zero-initialized)" : " (none)");
      file.erase("head.weight");
      file.erase("head.bias");
      head_in_file = false;
    } else {
      report.head = "loaded (" + std::to_string(file_classes) + " classes)";
    }
  } else if (c.num_classes > 0) {
    report.head = "fresh, zero-initialized (the file has none)";
  }

  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    auto it = file.find(name);
    if (it == file.end()) {
      const bool fresh_head = starts_with(name, "head.") && !head_in_file;
      if (!fresh_head && !allowed(name, options.allow_missing)) report.missing.push_back(name);
      continue;
    }
    used.insert(name);
    torch::Tensor value = it->second;
    if (name == "pos_embed" && value.sizes() != param.sizes() && value.dim() == 3 && value.size(2) == param.size(2)) {
      const int64_t old_tokens = value.size(1) - 1;
      value = resample_pos_embed(value, c.grid());
      const auto old_grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(old_tokens))));
      report.interpolated = std::to_string(old_grid) + "x" + std::to_string(old_grid) + " -> " +
                            std::to_string(c.grid()) + "x" + std::to_string(c.grid()) + " (bicubic)";
    }
    if (value.sizes() != param.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_text(value.sizes()) + " vs model " + shape_text(param.sizes()));
      continue;
    }
    param.copy_(value);
    ++report.loaded;
  }
  for (const auto& [name, t] : file)
    if (!used.count(name) && !allowed(name, options.allow_unexpected)) report.unexpected.push_back(name);

  if (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty()) {
    std::string text;
    for (const auto& line : report.lines()) text += "\n" + line;
    throw std::runtime_error("cannot load " + path + " into " + c.describe() + ":" + text +
                             "\n(allow names with the train stage's allow_missing / allow_unexpected, "
                             "or pick the model shape the weights were trained with)");
  }
  return report;
}

void export_vit_huggingface(Vit& model, const std::string& folder, const std::vector<std::string>& class_names,
                            const ExportProvenance& provenance) {
  const VitConfig& c = model->config;
  if (c.pool != VitPool::Cls)
    throw std::runtime_error("Hugging Face's ViT classifies from the CLS token; a mean-pooling model cannot be exported to its layout");
  std::filesystem::create_directories(folder);
  std::vector<torch::Tensor> keep;  // owns the contiguous float32 copies until written
  std::vector<TensorToWrite> out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
    out.push_back({name, DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
  };
  auto params = model->named_parameters();
  auto p = [&](const std::string& name) { return params[name]; };
  add("vit.embeddings.cls_token", p("cls_token"));
  add("vit.embeddings.position_embeddings", p("pos_embed"));
  add("vit.embeddings.patch_embeddings.projection.weight", p("patch_embed.proj.weight"));
  add("vit.embeddings.patch_embeddings.projection.bias", p("patch_embed.proj.bias"));
  for (int i = 0; i < c.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".", l = "vit.encoder.layer." + std::to_string(i) + ".";
    for (const char* kind : {"weight", "bias"}) {
      const std::string k = kind;
      if (k == "weight" || c.qkv_bias) {
        auto parts = p(b + "attn.qkv." + k).chunk(3, 0);
        add(l + "attention.attention.query." + k, parts[0]);
        add(l + "attention.attention.key." + k, parts[1]);
        add(l + "attention.attention.value." + k, parts[2]);
      }
      for (const auto& [hf, timm] : kBlockNames) add(l + hf + k, p(b + timm + k));
    }
  }
  add("vit.layernorm.weight", p("norm.weight"));
  add("vit.layernorm.bias", p("norm.bias"));
  if (c.num_classes > 0) {
    add("classifier.weight", p("head.weight"));
    add("classifier.bias", p("head.bias"));
  }
  write_safetensors((std::filesystem::path(folder) / "model.safetensors").string(), out, {{"format", "pt"}});

  nlohmann::json config = {
      {"architectures", {"ViTForImageClassification"}},
      {"model_type", "vit"},
      {"hidden_size", c.width},
      {"num_hidden_layers", c.depth},
      {"num_attention_heads", c.heads},
      {"intermediate_size", c.mlp_width()},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", c.dropout},
      {"attention_probs_dropout_prob", c.attn_dropout},
      {"layer_norm_eps", c.layer_norm_eps},
      {"image_size", c.image_size},
      {"patch_size", c.patch_size},
      {"num_channels", c.channels},
      {"qkv_bias", c.qkv_bias},
      {"initializer_range", 0.02},
      {"torch_dtype", "float32"},
  };
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int i = 0; i < c.num_classes; ++i) {
    const std::string label = i < static_cast<int>(class_names.size()) ? class_names[static_cast<std::size_t>(i)]
                                                                        : "LABEL_" + std::to_string(i);
    id2label[std::to_string(i)] = label;
    label2id[label] = i;
  }
  config["id2label"] = id2label;
  config["label2id"] = label2id;
  nlohmann::json flowrun = {{"model_config", nlohmann::json::parse(vit_config_to_json(c))},
                            {"step", provenance.step},
                            {"ema", provenance.ema}};
  if (!provenance.pipeline_json.empty()) {
    nlohmann::json pipeline = nlohmann::json::parse(provenance.pipeline_json, nullptr, /*allow_exceptions=*/false);
    flowrun["pipeline"] = pipeline.is_discarded() ? nlohmann::json(provenance.pipeline_json) : pipeline;
  }
  config["flowrun"] = flowrun;
  AtomicFile config_file((std::filesystem::path(folder) / "config.json").string());
  config_file.write(config.dump(2) + "\n");
  config_file.commit();
}

}  // namespace flowrun
