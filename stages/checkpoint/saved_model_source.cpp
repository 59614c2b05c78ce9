// The saved_model source: reads the weights once at start, on the run's device, and
// emits them as a ModelSnapshot marked final (a test split to the evaluate node).
// The snapshot is the only holder of the model: nothing waits for its release.
#include <torch/torch.h>

#include "flowrun/logging.hpp"
#include "lib/model/weights.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/saved_model.hpp"
#include "stages/checkpoint/saved_model_weights.hpp"
#include "stages/checkpoint/saved_model_source.hpp"
#include "stages/messages/model_snapshot.hpp"

namespace flowrun {
namespace {

// Copies a checkpoint group's tensors into `model`; every parameter and buffer must be there.
void load_group(Vit& model, const std::string& path, const std::string& group) {
  const auto tensors = read_checkpoint_group(path, group);
  std::map<std::string, const at::Tensor*> by_name;
  for (const auto& [name, t] : tensors) by_name[name] = &t;
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& target) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::runtime_error(path + " has no '" + group + "/" + name + "'");
    if (it->second->sizes() != target.sizes())
      throw std::runtime_error(path + ": '" + group + "/" + name + "' has another shape than the model's");
    target.copy_(*it->second);
  };
  for (auto& p : model->named_parameters()) copy(p.key(), p.value());
  for (auto& b : model->named_buffers()) copy(b.key(), b.value());
}

}  // namespace

Vit load_saved_model(const SavedModelInfo& info, bool ema) {
  Vit model(info.config);
  if (info.kind == SavedModelInfo::Kind::Checkpoint) {
    load_group(model, info.weights_file, ema ? "ema" : "model");
  } else {
    const LoadReport report = load_vit_weights(model, info.weights_file);
    if (report.head.rfind("fresh", 0) == 0 || report.head.rfind("replaced", 0) == 0)
      throw std::runtime_error(info.weights_file + ": the classifier does not fit config.json (" + report.head + ")");
  }
  model->eval();
  return model;
}

namespace {


class SavedModelSource : public SourceStage {
 public:
  explicit SavedModelSource(const StageArgs& args)
      : SourceStage(args), options_(read_options<SavedModelOptions>(args.params)), device_(args.device) {}

  void start() override {
    const SavedModelInfo info = read_saved_model_info(options_.path);
    if (options_.ema && info.kind == SavedModelInfo::Kind::Export)
      throw std::runtime_error(info.path + " is an export: it holds one set of weights (leave out ema)");
    if (options_.ema && !info.has_ema)
      throw std::runtime_error(info.path + " has no EMA weights (the run had ema_decay 0): leave out ema");
    const torch::Device device(device_);
    auto snapshot = std::make_shared<ModelSnapshot>(std::make_shared<EvaluationAnswers>(), [] {});
    snapshot->model = load_saved_model(info, options_.ema);
    snapshot->model->to(device);
    // The EMA weights beside the trained ones, as the training run evaluated them.
    if (!options_.ema && info.has_ema && options_.ema_beside) {
      snapshot->ema = load_saved_model(info, true);
      snapshot->ema->to(device);
    }
    snapshot->input = InputTransform(device, options_.mean, options_.std);
    snapshot->precision = resolve_precision(options_.precision, device_);
    snapshot->classes = info.classes;
    snapshot->num_classes = info.config.num_classes;
    snapshot->final = true;
    snapshot->step = info.step;
    snapshot->planned = 1;
    log::info("[", node_id(), "] ", info.describe(), options_.ema ? ", its EMA weights" : "", " on ", device_, ", ",
              precision_name(snapshot->precision));
    snapshot_ = std::move(snapshot);
  }

  bool next(SourceItem& item) override {
    if (sent_ == 2) return false;
    item.epoch = 0;
    if (sent_++ == 0) {
      item.signal = Signal::Data;
      item.index = 0;
      item.payload = std::move(snapshot_);
    } else {
      item.signal = Signal::EpochEnd;
    }
    return true;
  }

 private:
  SavedModelOptions options_;
  std::string device_;
  std::shared_ptr<ModelSnapshot> snapshot_;
  int sent_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_saved_model_source(const StageArgs& args) { return std::make_unique<SavedModelSource>(args); }

}  // namespace flowrun
