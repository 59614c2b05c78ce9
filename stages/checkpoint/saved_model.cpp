#include "stages/checkpoint/saved_model.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/hdf5_file.hpp"

namespace flowrun {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

SavedModelInfo from_checkpoint(const std::string& path) {
  const Hdf5File f = Hdf5File::open_read(path);
  if (!f.has_attribute("", "format") || f.string_attribute("", "format") != kCheckpointFormat)
    throw std::runtime_error(path + " is an HDF5 file but not a flowrun checkpoint (no format attribute '" +
                             std::string(kCheckpointFormat) + "')");
  SavedModelInfo info;
  info.kind = SavedModelInfo::Kind::Checkpoint;
  info.path = path;
  info.weights_file = path;
  info.config = vit_config_from_json(f.string_attribute("", "model_config"));
  info.classes = json::parse(f.string_attribute("", "classes")).get<std::vector<std::string>>();
  info.pipeline_json = f.string_attribute("", "pipeline");
  info.step = static_cast<std::uint64_t>(f.int_attribute("", "step"));
  info.has_ema = f.exists("ema");
  return info;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    throw std::runtime_error(path + " is not valid JSON: " + e.what());
  }
}

template <typename T>
T field(const json& j, const char* name, const std::string& file) {
  if (!j.contains(name)) throw std::runtime_error(file + " lacks \"" + name + "\"");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error(file + ": \"" + name + "\" has the wrong type");
  }
}

// A Hugging Face ViT config (ViTForImageClassification / ViTModel).
VitConfig config_from_hugging_face(const json& j, const std::string& file) {
  VitConfig c;
  c.width = field<int>(j, "hidden_size", file);
  c.depth = field<int>(j, "num_hidden_layers", file);
  c.heads = field<int>(j, "num_attention_heads", file);
  c.mlp_ratio = static_cast<double>(field<int>(j, "intermediate_size", file)) / c.width;
  c.image_size = field<int>(j, "image_size", file);
  c.patch_size = field<int>(j, "patch_size", file);
  c.channels = j.value("num_channels", 3);
  c.qkv_bias = j.value("qkv_bias", true);
  c.layer_norm_eps = j.value("layer_norm_eps", 1e-12);
  c.pool = VitPool::Cls;
  c.num_classes = j.contains("id2label") ? static_cast<int>(j["id2label"].size()) : j.value("num_labels", 0);
  return c;
}

// A timm folder: {"architecture": "vit_base_patch16_224", "num_classes": 1000, "label_names": [...]}.
VitConfig config_from_timm(const json& j, const std::string& file) {
  VitConfig c = vit_preset(field<std::string>(j, "architecture", file));
  c.num_classes = j.value("num_classes", c.num_classes);
  return c;
}

std::vector<std::string> class_names(const json& j, int num_classes) {
  std::vector<std::string> names(static_cast<std::size_t>(std::max(num_classes, 0)));
  for (int i = 0; i < num_classes; ++i) names[static_cast<std::size_t>(i)] = "LABEL_" + std::to_string(i);
  if (j.contains("id2label") && j["id2label"].is_object()) {
    for (const auto& item : j["id2label"].items()) {
      const long index = std::strtol(item.key().c_str(), nullptr, 10);
      if (index >= 0 && index < num_classes && item.value().is_string())
        names[static_cast<std::size_t>(index)] = item.value().get<std::string>();
    }
  } else if (j.contains("label_names") && j["label_names"].is_array()) {
    for (std::size_t i = 0; i < j["label_names"].size() && i < names.size(); ++i)
      if (j["label_names"][i].is_string()) names[i] = j["label_names"][i].get<std::string>();
  }
  return names;
}

SavedModelInfo from_export(const std::string& path, const std::string& folder, const std::string& weights) {
  const std::string config_path = (fs::path(folder) / "config.json").string();
  if (!fs::exists(config_path))
    throw std::runtime_error(path + ": no config.json beside the weights (an export folder holds model.safetensors "
                             "and config.json: flowrun export CHECKPOINT FOLDER writes both)");
  const json j = read_json_file(config_path);
  SavedModelInfo info;
  info.kind = SavedModelInfo::Kind::Export;
  info.path = path;
  info.weights_file = weights;
  try {
    if (j.contains("flowrun") && j["flowrun"].contains("model_config")) {
      const json& f = j["flowrun"];
      info.config = vit_config_from_json(f["model_config"].dump());
      info.step = f.value("step", std::uint64_t{0});
      info.exported_ema = f.value("ema", false);
      if (f.contains("pipeline")) info.pipeline_json = f["pipeline"].is_string() ? f["pipeline"].get<std::string>()
                                                                                   : f["pipeline"].dump(2);
    } else if (j.contains("architecture")) {
      info.config = config_from_timm(j, config_path);
    } else {
      info.config = config_from_hugging_face(j, config_path);
    }
    info.config.check();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(config_path + ": " + e.what());
  }
  info.classes = class_names(j, info.config.num_classes);
  return info;
}

}  // namespace

std::string SavedModelInfo::describe() const {
  std::string out = (kind == Kind::Checkpoint ? "checkpoint " : "export ") + path;
  out += " (" + (step > 0 ? "step " + std::to_string(step) + ", " : std::string()) + config.describe() +
         (exported_ema ? ", EMA weights" : "") + ")";
  return out;
}

SavedModelInfo read_saved_model_info(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string weights = (fs::path(path) / "model.safetensors").string();
    if (!fs::exists(weights))
      throw std::runtime_error(path + " is a folder without model.safetensors; expected a checkpoint (.h5) or an "
                               "export folder (model.safetensors + config.json)");
    return from_export(path, path, weights);
  }
  if (!fs::exists(path, ec)) throw std::runtime_error("no such model: " + path + " (expected a checkpoint .h5 or an export folder)");
  if (fs::path(path).extension() == ".safetensors") return from_export(path, fs::path(path).parent_path().string(), path);
  return from_checkpoint(path);
}

}  // namespace flowrun
