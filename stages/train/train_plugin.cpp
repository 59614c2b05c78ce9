// The train stage's plugin declaration: ports, every parameter with its doc, and the
// description `flowrun plugins train` prints. The stage itself is train_stage.cpp.
#include "stages/batch/batch.hpp"
#include "stages/batch/batch_checks.hpp"
#include "stages/eval/evaluation.hpp"
#include "stages/messages/model_snapshot_kind.hpp"
#include "stages/model/vit_config.hpp"
#include "stages/train/metrics.hpp"
#include "stages/train/train_plugins.hpp"
#include "stages/train/train_state.hpp"

namespace flowrun {

namespace {

// Before the run: batches that reach the stage as uint8 with nothing to normalize them
// (the step would fail at its first batch). The evaluate nodes check their own inputs.
void check_train_node(const CheckedNode& node, std::vector<CheckFinding>& findings) {
  const bool own_mean = !node.params->number_list("mean").empty();
  if (node.inputs.empty() || node.inputs[0].empty()) return;
  const UpstreamChain& chain = node.inputs[0];
  const CheckedNode::Upstream* batching = batching_node(chain);
  if (batching && !own_mean && !normalizing_node(chain)) {
    findings.push_back({"mean", "batches reach input 'train' as uint8 from node '" + batching->id +
                                    "' and nothing normalizes them: set mean and std on node '" + batching->id +
                                    "', add a batch_normalize node after it, or set mean and std here"});
  }
}

}  // namespace

PluginInfo train_plugin() {
  PluginInfo p;
  p.name = "train";
  p.summary = "Trains or fine-tunes a ViT on batches; lends the model to evaluate nodes; snapshots for checkpoints";
  p.description =
      "Ordered stage owning the model, the optimizer and the schedule (device-agnostic: the run's\n"
      "device). Strategies: linear_probe (head only), full_ft, llrd (lr of layer l = lr x\n"
      "layer_decay^(depth + 1 - l); embeddings are layer 0, the head depth + 1) and gradual_unfreeze\n"
      "(head first; from each boundary in unfreeze_at the last unfreeze_blocks[k] blocks train too; -1 =\n"
      "everything). AdamW (default) or SGD; no weight decay on LayerNorm weights, biases, the position\n"
      "embedding and the CLS token. Linear warmup then cosine, linear or constant decay, by optimizer\n"
      "step; the length comes from the data (epochs x batches per epoch / accumulation) unless\n"
      "total_steps is set. Cross-entropy with label smoothing; soft-target batches (Mixup/CutMix) are\n"
      "accepted. Gradient clipping by global norm (the norm is logged either way), accumulation,\n"
      "bf16 autocast (CPU, CUDA) or fp16 with dynamic loss scaling (CUDA), an EMA of the weights\n"
      "evaluated alongside. The model output lends the model to an evaluate node after every training\n"
      "epoch and/or every eval_every_steps steps (training waits for the answer: no copy, and early\n"
      "stopping acts before the next step); final_model lends it once after training (a test split).\n"
      "The answers join the metrics and evaluations outputs in order. pretrained is a\n"
      ".safetensors file, a folder with model.safetensors, or a hub id (downloaded once into\n"
      "FLOWRUN_CACHE). export writes the final model with Hugging Face names and a config.json.\n"
      "The state output feeds the checkpoint stage (exact resume: flowrun --resume); the evaluations\n"
      "output the report stage. Early stopping on any eval metric ends the run cleanly. While it\n"
      "runs it watches for overfitting, not learning, instability and out-of-memory, and after\n"
      "training lists suspected label errors; each finding is logged with --set remedies.\n"
      "\n"
      "  {\"id\": \"train\", \"plugin\": \"train\", \"params\": {\"model\": \"vit_base_patch16_224\",\n"
      "   \"pretrained\": \"google/vit-base-patch16-224-in21k\", \"strategy\": \"llrd\", \"lr\": 3e-5}}";
  p.role = Role::Ordered;
  p.inputs = {{"train", kBatchKind, "training batches"}};
  p.outputs = {{"metrics", kMetricsKind, "train (every log_every steps), train_epoch, eval and test metrics, notes"},
               {"state", kTrainStateKind, "snapshots for the checkpoint stage: every save_every_steps steps, at epoch "
                                          "ends (save_every_epochs), at the end, and when the run is stopped"},
               {"evaluations", kEvaluationKind, "each evaluation in full (confusion matrix, per class, EMA, the worst "
                                                "misclassified samples with thumbnails), for the report stage"},
               {"model", kModelKind, "the model, lent to an evaluate node at every evaluation point"},
               {"final_model", kModelKind, "the model after training (also after early stopping), lent to an evaluate "
                                           "node once: a test split"}};
  auto& s = p.params;
  // The model
  std::string presets;
  for (const auto& name : vit_preset_names()) presets += (presets.empty() ? "" : ", ") + name;
  s.string("model", "vit_cifar_micro", "ViT preset to start from: " + presets);
  s.integer("image_size", 0, "input side in pixels; 0 = the preset's").range(0, 4096);
  s.integer("patch_size", 0, "patch side in pixels; 0 = the preset's").range(0, 512);
  s.integer("width", 0, "embedding width; 0 = the preset's").range(0, 16384);
  s.integer("depth", 0, "transformer blocks; 0 = the preset's").range(0, 256);
  s.integer("heads", 0, "attention heads; 0 = the preset's").range(0, 256);
  s.number("mlp_ratio", 0, "MLP width / embedding width; 0 = the preset's (4)").range(0, 64);
  s.boolean("qkv_bias", true, "bias on the query/key/value projection");
  s.number("dropout", 0.0, "dropout after the position embedding and in MLPs and projections").range(0, 0.9);
  s.number("attn_dropout", 0.0, "dropout on attention weights").range(0, 0.9);
  s.number("drop_path", 0.1, "stochastic depth of the last block (0 at the first, linear in between)").range(0, 0.9);
  s.choice("pool", "cls", {"cls", "mean"}, "classify from the CLS token, or from the mean of the patch tokens");
  s.integer("num_classes", 0, "classifier outputs; 0 = the number of classes of the training data").range(0, 1 << 20);
  s.number("layer_norm_eps", 1e-6, "LayerNorm epsilon (timm 1e-6; Hugging Face ViTs 1e-12)").range(1e-15, 1e-2);
  // Weights
  s.string("pretrained", "", "weights to start from: a .safetensors file, a folder with model.safetensors, or a hub "
                             "id (e.g. google/vit-base-patch16-224-in21k); \"\" = random init");
  s.choice("init", "auto", {"auto", "pytorch", "timm"},
           "how random weights start: pytorch = PyTorch's layer init (Kaiming-uniform; timm's weight_init='reset'), "
           "timm = trunc-normal 0.02 linear weights, zero biases and head; auto = pytorch from scratch, timm with "
           "pretrained (only a replaced head keeps it: loaded weights overwrite the rest)");
  s.string("pretrained_sha256", "", "expected SHA-256 of a downloaded file (else the hub's published one)");
  s.string_list("allow_missing", {}, "name prefixes the model may have that the weights lack (timm names)");
  s.string_list("allow_unexpected", {}, "name prefixes the weights may have that the model lacks");
  s.string("export", "", "folder to write the final model to (model.safetensors with Hugging Face names + config.json)");
  // Strategy
  s.choice("strategy", "full_ft", {"linear_probe", "full_ft", "llrd", "gradual_unfreeze"}, "what trains, and how fast");
  s.number("layer_decay", 0.75, "llrd: lr multiplier per layer below the head").range(0.01, 1);
  s.choice("unfreeze_unit", "epoch", {"epoch", "step"}, "gradual_unfreeze: unfreeze_at counts epochs or optimizer steps");
  s.integer_list("unfreeze_at", {1, 2}, "gradual_unfreeze: boundaries (epochs or steps), increasing").min(0);
  s.integer_list("unfreeze_blocks", {2, -1}, "gradual_unfreeze: last blocks trainable from each boundary; -1 = everything")
      .min(-1);
  // Optimizer and schedule
  s.choice("optimizer", "adamw", {"adamw", "sgd"}, "AdamW, or SGD with momentum");
  s.number("lr", 1e-3, "peak learning rate (of the head's group under llrd)").range(0, 10);
  s.number("weight_decay", 0.05, "decoupled weight decay (AdamW) or L2 (SGD) on weight matrices").range(0, 10);
  s.number_list("betas", {0.9, 0.999}, "AdamW betas").length(2).range(0, 0.99999);
  s.number("eps", 1e-8, "AdamW epsilon").range(0, 1);
  s.boolean("fused_optimizer", true,
            "AdamW in ATen's fused kernel (torch.optim.AdamW(fused=True)); false = LibTorch's per-parameter loop");
  s.number("momentum", 0.9, "SGD momentum").range(0, 0.9999);
  s.boolean("nesterov", false, "SGD: Nesterov momentum");
  s.choice("schedule", "cosine", {"cosine", "linear", "constant"}, "decay after warmup");
  s.integer("warmup_steps", -1, "linear warmup in optimizer steps; -1 = warmup_fraction of training").min(-1);
  s.number("warmup_fraction", 0.05, "warmup as a share of all optimizer steps (when warmup_steps is -1)").range(0, 1);
  s.number("min_lr_ratio", 0.0, "final lr / peak lr for cosine and linear decay").range(0, 1);
  s.integer("total_steps", 0, "schedule length in optimizer steps; 0 = from the data").min(0);
  // Loss and step
  s.number("label_smoothing", 0.1, "cross-entropy label smoothing").range(0, 0.99);
  s.number("clip_grad_norm", 0.0, "clip gradients to this global norm; 0 = off (the norm is measured either way)").range(0, 1e6);
  s.integer("accumulation", 1, "micro-batches per optimizer step (effective batch = batch x accumulation)").range(1, 4096);
  s.choice("precision", "auto", {"auto", "fp32", "bf16", "fp16"},
           "autocast dtype: auto = bf16 on CUDA, fp32 on the CPU; fp16 (CUDA) uses dynamic loss scaling");
  s.number("ema_decay", 0.0, "keep an exponential moving average of the weights, evaluated alongside; 0 = off").range(0, 0.99999);
  s.number_list("mean", {}, "per-channel mean, to normalize uint8 batches on the device; [] = batches come normalized")
      .max_length(4).range(-10, 10);
  s.number_list("std", {}, "per-channel std for the mean above").max_length(4).range(1e-6, 100);
  s.integer("threads", 0, "intra-op compute threads (LibTorch); 0 = LibTorch's default (the physical cores)").range(0, 1024);
  s.integer("log_every", 50, "log and emit train metrics every N optimizer steps").range(1, 1 << 30);
  s.integer("eval_every_steps", 0, "also lend the model for evaluation every N optimizer steps (the eval source "
                                    "needs one epoch per evaluation: give it enough; the spare ones are ended); 0 = off")
      .min(0);
  s.boolean("eval_at_epoch_end", true, "lend the model for evaluation after every training epoch");
  s.integer("label_errors_top", 24, "evaluations output: list this many suspected label errors after training").range(0, 10000);
  s.number("label_error_confidence", 0.7, "a training sample is a suspected label error when the model assigns it to another "
                                          "class in most epochs (the first left out) with at least this mean probability; "
                                          "1 = no check").range(0.5, 1);
  // Checkpoints and early stopping
  s.integer("save_every_steps", 0, "emit a state snapshot every N optimizer steps (state port); 0 = off").min(0);
  s.integer("save_every_epochs", 1, "emit a state snapshot after every N epochs (after the evaluation); 0 = off").min(0);
  s.string("early_stopping_metric", "", "eval metric to watch (accuracy, loss, macro_f1, top5_accuracy, ema_accuracy, "
                                        "ema_loss); \"\" = no early stopping");
  s.choice("early_stopping_mode", "auto", {"auto", "max", "min"}, "auto: min for losses, max otherwise");
  s.integer("early_stopping_patience", 3, "evaluations without an improvement larger than min_delta before stopping").range(1, 1 << 20);
  s.number("early_stopping_min_delta", 0.0, "smallest change that counts as an improvement").range(0, 1e9);
  p.create = make_train_stage;
  p.check = check_train_node;
  return p;
}

}  // namespace flowrun
