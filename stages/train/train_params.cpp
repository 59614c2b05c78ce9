#include "stages/train/train_params.hpp"

#include "lib/distributed/process_group.hpp"

namespace flowrun {

namespace {

VitConfig model_config(const TrainOptions& o) {
  VitConfig c = vit_preset(o.model);
  auto override_int = [](int value, int& field) {
    if (value > 0) field = value;
  };
  override_int(o.image_size, c.image_size);
  override_int(o.patch_size, c.patch_size);
  override_int(o.width, c.width);
  override_int(o.depth, c.depth);
  override_int(o.heads, c.heads);
  if (o.mlp_ratio > 0) c.mlp_ratio = o.mlp_ratio;
  c.qkv_bias = o.qkv_bias;
  c.dropout = o.dropout;
  c.attn_dropout = o.attn_dropout;
  c.drop_path = o.drop_path;
  c.pool = o.pool;
  c.num_classes = o.num_classes;
  c.layer_norm_eps = o.layer_norm_eps;
  return c;
}

}  // namespace

TrainConfig::TrainConfig() { apply_train_options(TrainOptions{}, "cpu", 0, *this); }

void apply_train_options(const TrainOptions& o, const std::string& device, std::uint64_t seed, TrainConfig& t) {
  t.model = model_config(o);
  // auto: a model trained from scratch starts as PyTorch constructs it (it learns faster on
  // CIFAR-10: docs/learning-quality.md); one loading weights gets timm's zero head.
  t.init = o.init == InitChoice::Pytorch ? VitInit::Pytorch
           : o.init == InitChoice::Timm  ? VitInit::Timm
                                         : (o.pretrained.empty() ? VitInit::Pytorch : VitInit::Timm);
  t.pretrained.clear();  // the stage resolves `pretrained` (a hub id, a folder) to a file before building
  t.load.allow_missing = o.allow_missing;
  t.load.allow_unexpected = o.allow_unexpected;
  t.strategy = o.strategy;
  t.unfreeze.by_steps = o.unfreeze_unit == UnfreezeUnit::Step;
  t.unfreeze.at = o.unfreeze_at;
  t.unfreeze.blocks = o.unfreeze_blocks;
  t.unfreeze.check();
  t.optimizer = o.optimizer;
  t.lr = o.lr;
  t.weight_decay = o.weight_decay;
  t.beta1 = o.betas.at(0);
  t.beta2 = o.betas.at(1);
  t.eps = o.eps;
  t.fused_optimizer = o.fused_optimizer;
  t.momentum = o.momentum;
  t.nesterov = o.nesterov;
  t.layer_decay = o.layer_decay;
  t.schedule = o.schedule;
  t.warmup_steps = o.warmup_steps;
  t.warmup_fraction = o.warmup_fraction;
  t.min_lr_ratio = o.min_lr_ratio;
  t.label_smoothing = o.label_smoothing;
  t.clip_grad_norm = o.clip_grad_norm;
  t.accumulation = o.accumulation;
  t.precision = resolve_precision(o.precision, device);
  t.ema_decay = o.ema_decay;
  t.mean = o.mean;
  t.std = o.std;
  t.device = device;
  t.seed = seed;
  t.defer_reads = false;
  t.gradient_bucket_mb = o.gradient_bucket_mb;
}

TrainConfig train_config(const StageArgs& args) { return train_config(args, read_options<TrainOptions>(args.params)); }

TrainConfig train_config(const StageArgs& args, const TrainOptions& options) {
  TrainConfig t;
  apply_train_options(options, args.device, args.seed, t);
  t.defer_reads = true;  // the stage reads each step's numbers behind the device (train_stage.cpp: settle)
  t.data_parallel = current_data_parallel_group();  // flowrun run joined one: this rank trains its share
  return t;
}

DiagnosticsConfig diagnostics_config(const StageArgs& args, const TrainOptions& o, const TrainConfig& t) {
  DiagnosticsConfig c;
  c.train_node = args.node_id;
  c.lr = t.lr;
  c.clip_grad_norm = t.clip_grad_norm;
  c.weight_decay = t.weight_decay;
  c.drop_path = t.model.drop_path;
  c.precision = precision_name(t.precision);
  c.strategy = strategy_name(o.strategy);
  c.accumulation = t.accumulation;
  c.depth = t.model.depth;
  if (!args.input_upstream.empty()) {
    for (const UpstreamNode& n : args.input_upstream[kTrainPort]) {
      if (n.plugin == "batch" && c.batch_node.empty()) c.batch_node = n.id;
      if (n.id == "augment") c.augment_node = n.id;
    }
  }
  return c;
}

std::vector<std::string> sources_feeding(const StageArgs& args, int port) {
  std::vector<std::string> ids;
  if (static_cast<std::size_t>(port) < args.input_upstream.size())
    for (const UpstreamNode& n : args.input_upstream[static_cast<std::size_t>(port)])
      if (n.source) ids.push_back(n.id);
  return ids;
}

EarlyStoppingConfig early_stopping_config(const TrainOptions& o) {
  EarlyStoppingConfig c;
  c.metric = o.early_stopping_metric;
  c.mode = o.early_stopping_mode == MetricMode::Max ? "max" : o.early_stopping_mode == MetricMode::Min ? "min" : "auto";
  c.patience = o.early_stopping_patience;
  c.min_delta = o.early_stopping_min_delta;
  return c;
}

bool input_connected(const StageArgs& args, int port) {
  return static_cast<std::size_t>(port) < args.inputs_connected.size() && args.inputs_connected[static_cast<std::size_t>(port)];
}

bool output_connected(const StageArgs& args, int port) {
  return static_cast<std::size_t>(port) < args.outputs_connected.size() && args.outputs_connected[static_cast<std::size_t>(port)];
}

}  // namespace flowrun
