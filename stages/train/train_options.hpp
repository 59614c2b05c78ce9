// The train stage's parameters, each declared once (flowrun/options.hpp): the field's
// type and initializer are its type and default; its line in declare() gives its
// name, doc and range. train_plugin() makes the schema from it, the stage reads its
// values into it, and train_params.cpp turns it into the parts' configurations
// (TrainConfig's defaults are these too). Compiles without LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flowrun/options.hpp"
#include "lib/model/precision.hpp"
#include "lib/model/vit_config.hpp"
#include "stages/train/schedule.hpp"
#include "stages/train/strategy.hpp"

namespace flowrun {

enum class InitChoice { Auto, Pytorch, Timm };
enum class Optimizer { AdamW, Sgd };
enum class UnfreezeUnit { Epoch, Step };
enum class MetricMode { Auto, Max, Min };

const char* optimizer_name(Optimizer optimizer);  // "adamw" | "sgd"

struct TrainOptions {
  // Model
  std::string model = "vit_cifar_micro";
  int image_size = 0, patch_size = 0, width = 0, depth = 0, heads = 0;
  double mlp_ratio = 0;
  bool qkv_bias = true;
  double dropout = 0.0, attn_dropout = 0.0, drop_path = 0.1;
  VitPool pool = VitPool::Cls;
  int num_classes = 0;
  double layer_norm_eps = 1e-6;
  // Weights
  std::string pretrained;
  InitChoice init = InitChoice::Auto;
  std::string pretrained_sha256;
  std::vector<std::string> allow_missing, allow_unexpected;
  std::string export_folder;
  // Strategy
  Strategy strategy = Strategy::FullFinetune;
  double layer_decay = 0.75;
  UnfreezeUnit unfreeze_unit = UnfreezeUnit::Epoch;
  std::vector<std::int64_t> unfreeze_at = {1, 2};
  std::vector<std::int64_t> unfreeze_blocks = {2, -1};
  // Optimizer
  Optimizer optimizer = Optimizer::AdamW;
  double lr = 1e-3;
  double weight_decay = 0.05;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  bool fused_optimizer = true;
  double momentum = 0.9;
  bool nesterov = false;
  // Schedule
  ScheduleKind schedule = ScheduleKind::Cosine;
  std::int64_t warmup_steps = -1;
  double warmup_fraction = 0.05;
  double min_lr_ratio = 0.0;
  std::int64_t total_steps = 0;
  // Loss, step and regularisation
  double label_smoothing = 0.1;
  double clip_grad_norm = 0.0;
  int accumulation = 1;
  PrecisionChoice precision = PrecisionChoice::Auto;
  double ema_decay = 0.0;
  std::vector<double> mean, std;
  // Evaluation and diagnostics
  std::int64_t eval_every_steps = 0;
  bool eval_at_epoch_end = true;
  std::int64_t label_errors_top = 24;
  double label_error_confidence = 0.7;
  // Checkpoints and early stopping
  std::int64_t save_every_steps = 0;
  std::int64_t save_every_epochs = 1;
  std::string early_stopping_metric;
  MetricMode early_stopping_mode = MetricMode::Auto;
  std::int64_t early_stopping_patience = 3;
  double early_stopping_min_delta = 0.0;
  // Running
  int threads = 0;
  std::int64_t log_every = 50;
  double gradient_bucket_mb = 25;

  template <typename D>
  static void declare(D& d);
};

// The model presets' names, for the `model` parameter's doc.
std::string vit_preset_list();

template <typename D>
void TrainOptions::declare(D& d) {
  using O = TrainOptions;
  d.group("Model");
  d(&O::model, "model", "ViT preset to start from: " + vit_preset_list());
  d(&O::image_size, "image_size", "input side in pixels; 0 = the preset's").range(0, 4096);
  d(&O::patch_size, "patch_size", "patch side in pixels; 0 = the preset's").range(0, 512);
  d(&O::width, "width", "embedding width; 0 = the preset's").range(0, 16384);
  d(&O::depth, "depth", "transformer blocks; 0 = the preset's").range(0, 256);
  d(&O::heads, "heads", "attention heads; 0 = the preset's").range(0, 256);
  d(&O::mlp_ratio, "mlp_ratio", "MLP width / embedding width; 0 = the preset's (4)").range(0, 64);
  d(&O::qkv_bias, "qkv_bias", "bias on the query/key/value projection");
  d(&O::dropout, "dropout", "dropout after the position embedding and in MLPs and projections").range(0, 0.9);
  d(&O::attn_dropout, "attn_dropout", "dropout on attention weights").range(0, 0.9);
  d(&O::drop_path, "drop_path", "stochastic depth of the last block (0 at the first, linear in between)").range(0, 0.9);
  d(&O::pool, "pool", "classify from the CLS token, or from the mean of the patch tokens",
    {{"cls", VitPool::Cls}, {"mean", VitPool::Mean}});
  d(&O::num_classes, "num_classes", "classifier outputs; 0 = the number of classes of the training data").range(0, 1 << 20);
  d(&O::layer_norm_eps, "layer_norm_eps", "LayerNorm epsilon (timm 1e-6; Hugging Face ViTs 1e-12)").range(1e-15, 1e-2);
  d.group("Weights");
  d(&O::pretrained, "pretrained",
    "weights to start from: a .safetensors file, a folder with model.safetensors, or a hub id (e.g. "
    "google/vit-base-patch16-224-in21k); \"\" = random init");
  d(&O::init, "init",
    "how random weights start: pytorch = PyTorch's layer init (Kaiming-uniform; timm's weight_init='reset'), timm = "
    "trunc-normal 0.02 linear weights, zero biases and head; auto = pytorch from scratch, timm with pretrained (only a "
    "replaced head keeps it: loaded weights overwrite the rest)",
    {{"auto", InitChoice::Auto}, {"pytorch", InitChoice::Pytorch}, {"timm", InitChoice::Timm}});
  d(&O::pretrained_sha256, "pretrained_sha256", "expected SHA-256 of a downloaded file (else the hub's published one)");
  d(&O::allow_missing, "allow_missing", "name prefixes the model may have that the weights lack (timm names)");
  d(&O::allow_unexpected, "allow_unexpected", "name prefixes the weights may have that the model lacks");
  d(&O::export_folder, "export",
    "folder to write the final model to (model.safetensors with Hugging Face names + config.json)");
  d.group("Strategy");
  d(&O::strategy, "strategy", "what trains, and how fast",
    {{"linear_probe", Strategy::LinearProbe},
     {"full_ft", Strategy::FullFinetune},
     {"llrd", Strategy::Llrd},
     {"gradual_unfreeze", Strategy::GradualUnfreeze}});
  d(&O::layer_decay, "layer_decay", "llrd: lr multiplier per layer below the head").range(0.01, 1);
  d(&O::unfreeze_unit, "unfreeze_unit", "gradual_unfreeze: unfreeze_at counts epochs or optimizer steps",
    {{"epoch", UnfreezeUnit::Epoch}, {"step", UnfreezeUnit::Step}});
  d(&O::unfreeze_at, "unfreeze_at", "gradual_unfreeze: boundaries (epochs or steps), increasing").min(0);
  d(&O::unfreeze_blocks, "unfreeze_blocks", "gradual_unfreeze: last blocks trainable from each boundary; -1 = everything")
      .min(-1);
  d.group("Optimizer");
  d(&O::optimizer, "optimizer", "AdamW, or SGD with momentum", {{"adamw", Optimizer::AdamW}, {"sgd", Optimizer::Sgd}});
  d(&O::lr, "lr", "peak learning rate (of the head's group under llrd)").range(0, 10);
  d(&O::weight_decay, "weight_decay", "decoupled weight decay (AdamW) or L2 (SGD) on weight matrices").range(0, 10);
  d(&O::betas, "betas", "AdamW betas").length(2).range(0, 0.99999);
  d(&O::eps, "eps", "AdamW epsilon").range(0, 1);
  d(&O::fused_optimizer, "fused_optimizer",
    "AdamW in ATen's fused kernel (torch.optim.AdamW(fused=True)); false = LibTorch's per-parameter loop");
  d(&O::momentum, "momentum", "SGD momentum").range(0, 0.9999);
  d(&O::nesterov, "nesterov", "SGD: Nesterov momentum");
  d.group("Schedule");
  d(&O::schedule, "schedule", "decay after warmup",
    {{"cosine", ScheduleKind::Cosine}, {"linear", ScheduleKind::Linear}, {"constant", ScheduleKind::Constant}});
  d(&O::warmup_steps, "warmup_steps", "linear warmup in optimizer steps; -1 = warmup_fraction of training").min(-1);
  d(&O::warmup_fraction, "warmup_fraction", "warmup as a share of all optimizer steps (when warmup_steps is -1)")
      .range(0, 1);
  d(&O::min_lr_ratio, "min_lr_ratio", "final lr / peak lr for cosine and linear decay").range(0, 1);
  d(&O::total_steps, "total_steps", "schedule length in optimizer steps; 0 = from the data").min(0);
  d.group("Loss, step and regularisation");
  d(&O::label_smoothing, "label_smoothing", "cross-entropy label smoothing").range(0, 0.99);
  d(&O::clip_grad_norm, "clip_grad_norm", "clip gradients to this global norm; 0 = off (the norm is measured either way)")
      .range(0, 1e6);
  d(&O::accumulation, "accumulation", "micro-batches per optimizer step (effective batch = batch x accumulation)")
      .range(1, 4096);
  d(&O::precision, "precision",
    "autocast dtype: auto = bf16 on CUDA, fp32 on the CPU; fp16 uses dynamic loss scaling (slow on CPUs without fp16 units)",
    {{"auto", PrecisionChoice::Auto},
     {"fp32", PrecisionChoice::Fp32},
     {"bf16", PrecisionChoice::Bf16},
     {"fp16", PrecisionChoice::Fp16}});
  d(&O::ema_decay, "ema_decay", "keep an exponential moving average of the weights, evaluated alongside; 0 = off")
      .range(0, 0.99999);
  d(&O::mean, "mean", "per-channel mean, to normalize uint8 batches on the device; [] = batches come normalized")
      .max_length(4)
      .range(-10, 10);
  d(&O::std, "std", "per-channel std for the mean above").max_length(4).range(1e-6, 100);
  d.group("Evaluation and diagnostics");
  d(&O::eval_every_steps, "eval_every_steps",
    "also lend the model for evaluation every N optimizer steps (the eval source needs one epoch per evaluation: "
    "give it enough; the spare ones are ended); 0 = off")
      .min(0);
  d(&O::eval_at_epoch_end, "eval_at_epoch_end", "lend the model for evaluation after every training epoch");
  d(&O::label_errors_top, "label_errors_top", "evaluations output: list this many suspected label errors after training")
      .range(0, 10000);
  d(&O::label_error_confidence, "label_error_confidence",
    "a training sample is a suspected label error when the model assigns it to another class in most epochs (the "
    "first left out) with at least this mean probability; 1 = no check")
      .range(0.5, 1);
  d.group("Checkpoints and early stopping");
  d(&O::save_every_steps, "save_every_steps", "emit a state snapshot every N optimizer steps (state port); 0 = off")
      .min(0);
  d(&O::save_every_epochs, "save_every_epochs", "emit a state snapshot after every N epochs (after the evaluation); 0 = off")
      .min(0);
  d(&O::early_stopping_metric, "early_stopping_metric",
    "eval metric to watch (accuracy, loss, macro_f1, top5_accuracy, ema_accuracy, ema_loss); \"\" = no early stopping");
  d(&O::early_stopping_mode, "early_stopping_mode", "auto: min for losses, max otherwise",
    {{"auto", MetricMode::Auto}, {"max", MetricMode::Max}, {"min", MetricMode::Min}});
  d(&O::early_stopping_patience, "early_stopping_patience",
    "evaluations without an improvement larger than min_delta before stopping")
      .range(1, 1 << 20);
  d(&O::early_stopping_min_delta, "early_stopping_min_delta", "smallest change that counts as an improvement")
      .range(0, 1e9);
  d.group("Running");
  d(&O::threads, "threads", "intra-op compute threads (LibTorch); 0 = LibTorch's default (the physical cores)")
      .range(0, 1024);
  d(&O::log_every, "log_every", "log and emit train metrics every N optimizer steps").range(1, 1 << 30);
  d(&O::gradient_bucket_mb, "gradient_bucket_mb",
    "data-parallel runs: gradients are averaged across ranks in buckets of about this many MB, each sent as "
    "soon as its gradients are ready in the backward pass (DDP's bucket_cap_mb)")
      .range(0.001, 4096);
}

}  // namespace flowrun
