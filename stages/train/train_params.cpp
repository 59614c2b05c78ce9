#include "stages/train/train_params.hpp"

namespace flowrun {

namespace {

VitConfig model_config(const Params& p) {
  VitConfig c = vit_preset(p.string("model"));
  auto override_int = [&](const char* name, int& field) {
    if (p.integer(name) > 0) field = static_cast<int>(p.integer(name));
  };
  override_int("image_size", c.image_size);
  override_int("patch_size", c.patch_size);
  override_int("width", c.width);
  override_int("depth", c.depth);
  override_int("heads", c.heads);
  if (p.number("mlp_ratio") > 0) c.mlp_ratio = p.number("mlp_ratio");
  c.qkv_bias = p.boolean("qkv_bias");
  c.dropout = p.number("dropout");
  c.attn_dropout = p.number("attn_dropout");
  c.drop_path = p.number("drop_path");
  c.pool = p.string("pool") == "cls" ? VitPool::Cls : VitPool::Mean;
  c.num_classes = static_cast<int>(p.integer("num_classes"));
  c.layer_norm_eps = p.number("layer_norm_eps");
  return c;
}

}  // namespace

TrainConfig train_config(const StageArgs& args) {
  const Params& p = args.params;
  TrainConfig t;
  t.model = model_config(p);
  // auto: a model trained from scratch starts as PyTorch constructs it (it learns faster on
  // CIFAR-10: docs/learning-quality.md); one loading weights gets timm's zero head.
  const std::string& init = p.string("init");
  t.init = init == "auto" ? (p.string("pretrained").empty() ? VitInit::Pytorch : VitInit::Timm) : vit_init_from_name(init);
  t.load.allow_missing = p.string_list("allow_missing");
  t.load.allow_unexpected = p.string_list("allow_unexpected");
  t.strategy = strategy_from_name(p.string("strategy"));
  t.unfreeze.by_steps = p.string("unfreeze_unit") == "step";
  t.unfreeze.at = p.integer_list("unfreeze_at");
  t.unfreeze.blocks = p.integer_list("unfreeze_blocks");
  t.unfreeze.check();
  t.optimizer = p.string("optimizer");
  t.lr = p.number("lr");
  t.weight_decay = p.number("weight_decay");
  t.beta1 = p.number_list("betas")[0];
  t.beta2 = p.number_list("betas")[1];
  t.eps = p.number("eps");
  t.fused_optimizer = p.boolean("fused_optimizer");
  t.defer_reads = true;  // the stage reads each step's numbers behind the device (train_stage.cpp: settle)
  t.momentum = p.number("momentum");
  t.nesterov = p.boolean("nesterov");
  t.layer_decay = p.number("layer_decay");
  t.schedule = schedule_kind(p.string("schedule"));
  t.warmup_steps = p.integer("warmup_steps");
  t.warmup_fraction = p.number("warmup_fraction");
  t.min_lr_ratio = p.number("min_lr_ratio");
  t.label_smoothing = p.number("label_smoothing");
  t.clip_grad_norm = p.number("clip_grad_norm");
  t.accumulation = static_cast<int>(p.integer("accumulation"));
  const std::string& precision = p.string("precision");
  const bool cuda = args.device.rfind("cuda", 0) == 0;
  t.precision = precision == "auto" ? (cuda ? Precision::Bf16 : Precision::Fp32) : precision_from_name(precision);
  t.ema_decay = p.number("ema_decay");
  t.mean = p.number_list("mean");
  t.std = p.number_list("std");
  t.device = args.device;
  t.seed = args.seed;
  return t;
}

DiagnosticsConfig diagnostics_config(const StageArgs& args, const TrainConfig& t) {
  const Params& p = args.params;
  DiagnosticsConfig c;
  c.train_node = args.node_id;
  c.lr = t.lr;
  c.clip_grad_norm = t.clip_grad_norm;
  c.weight_decay = t.weight_decay;
  c.drop_path = t.model.drop_path;
  c.precision = t.precision == Precision::Fp32 ? "fp32" : t.precision == Precision::Bf16 ? "bf16" : "fp16";
  c.strategy = p.string("strategy");
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

EarlyStoppingConfig early_stopping_config(const Params& p) {
  EarlyStoppingConfig c;
  c.metric = p.string("early_stopping_metric");
  c.mode = p.string("early_stopping_mode");
  c.patience = p.integer("early_stopping_patience");
  c.min_delta = p.number("early_stopping_min_delta");
  return c;
}

bool input_connected(const StageArgs& args, int port) {
  return static_cast<std::size_t>(port) < args.inputs_connected.size() && args.inputs_connected[static_cast<std::size_t>(port)];
}

bool output_connected(const StageArgs& args, int port) {
  return static_cast<std::size_t>(port) < args.outputs_connected.size() && args.outputs_connected[static_cast<std::size_t>(port)];
}

}  // namespace flowrun
