// The evaluate stage's plugin declaration: ports, parameters, the checks `flowrun
// validate` runs, and the description `flowrun plugins evaluate` prints.
#include "stages/common/batch_checks.hpp"
#include "stages/evaluate/evaluate_plugins.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/messages/model_snapshot_kind.hpp"

namespace flowrun {
namespace {

// Before the run: uint8 batches nothing normalizes (neither the chain nor the train
// stage whose model is evaluated, which lends its mean and std), and mixed batches.
void check_evaluate_node(const CheckedNode& node, std::vector<CheckFinding>& findings) {
  check_model_batches(node, kEvaluateModelPort, kEvaluateBatchPort,
                      "evaluation scores the labels of unmixed images; move the mix stage to the training chain",
                      findings);
}

}  // namespace

PluginInfo evaluate_plugin() {
  PluginInfo p;
  p.name = "evaluate";
  p.summary = "Evaluates the model a train stage lends it (or a saved_model source gives it) on a loader: top-1/top-5/F1/per class";
  p.description =
      "Ordered stage. Its model input takes the train stage's \"model\" output (a snapshot at every\n"
      "evaluation point: eval_every_steps, epoch ends) or its \"final_model\" output (once, after\n"
      "training, also after early stopping: a test split). For each snapshot it reads one epoch of its\n"
      "batch input (give the eval source as many epochs as there are evaluation points; those left\n"
      "when training ends are not read) and scores the model and its EMA copy: loss (no label\n"
      "smoothing), top-1, top-5, macro F1, per-class precision/recall/F1, the confusion matrix, and\n"
      "the misclassified samples of highest loss with thumbnails. The snapshot lends the live model\n"
      "(no copy): training resumes once every evaluate node has answered, so every evaluation sees the\n"
      "weights of its step, whatever the threads. The answer goes back to the train stage, which\n"
      "puts it into the run's metrics and evaluations streams in order (for report, tensorboard,\n"
      "checkpoint: best.h5) and feeds early stopping and the diagnostics; this node's own outputs\n"
      "carry the same records for its split only. From a saved_model source (flowrun evaluate) it gets\n"
      "one final model and answers on its outputs alone.\n"
      "\n"
      "  {\"id\": \"val\", \"plugin\": \"evaluate\"},\n"
      "  \"train.model -> val.model\", \"val_data -> val_decode -> val_batch -> val.batch\"";
  p.role = Role::Ordered;
  p.inputs = {{"model", kModelKind, "the train stage's model or final_model output, or a saved_model source"},
              {"batch", kBatchKind, "evaluation batches (no random augmentation), one epoch per snapshot"}};
  p.outputs = {{"metrics", kMetricsKind, "this node's evaluations: scope eval (test after training)"},
               {"evaluations", kEvaluationKind, "this node's evaluations in full"}};
  declare_options<EvaluateOptions>(p.params);
  p.create = make_evaluate_stage;
  p.check = check_evaluate_node;
  return p;
}

}  // namespace flowrun
