// The train stage's plugin declaration: ports, every parameter with its doc, and the
// description `flowrun plugins train` prints. The stage itself is train_stage.cpp.
#include "lib/model/vit_config.hpp"
#include "stages/common/batch_checks.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/messages/model_snapshot_kind.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/train_options.hpp"
#include "stages/train/train_plugins.hpp"

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

const char* optimizer_name(Optimizer optimizer) { return optimizer == Optimizer::AdamW ? "adamw" : "sgd"; }

std::string vit_preset_list() {
  std::string presets;
  for (const auto& name : vit_preset_names()) presets += (presets.empty() ? "" : ", ") + name;
  return presets;
}

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
      "bf16 autocast or fp16 with dynamic loss scaling (on the device; CPU, CUDA), an EMA of the weights\n"
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
  // Evaluation moved out of the train stage into evaluate nodes (2026-12-02).
  const auto moved = [](const std::string& port, const std::string& model_port, const std::string& when) {
    return RetiredPort{port, true,
                       "evaluation runs in an evaluate node now. Add {\"id\": \"" + port +
                           "\", \"plugin\": \"evaluate\"} to \"nodes\", point this edge at \"" + port +
                           ".batch\" instead of \"train." + port + "\", and add the edge \"train." + model_port +
                           " -> " + port + ".model\" (the train stage lends it the model " + when +
                           "); docs/training.md"};
  };
  p.retired_ports = {moved("eval", "model", "at every evaluation point"),
                     moved("test", "final_model", "once after training")};
  declare_options<TrainOptions>(p.params);
  p.create = make_train_stage;
  p.check = check_train_node;
  return p;
}

}  // namespace flowrun
