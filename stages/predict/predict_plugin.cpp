// The predict stage's plugin declaration: compiles without LibTorch's headers.
#include "stages/common/batch_checks.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/model_snapshot_kind.hpp"
#include "stages/predict/predict_plugins.hpp"

namespace flowrun {
namespace {

// Before the run, as for evaluate: uint8 batches need a normalizer somewhere, and
// mixed batches have no single image to label.
void check_predict_node(const CheckedNode& node, std::vector<CheckFinding>& findings) {
  check_model_batches(node, kPredictModelPort, kPredictBatchPort,
                      "predictions are for single images; remove the mix stage", findings);
}

}  // namespace

PluginInfo predict_plugin() {
  PluginInfo p;
  p.name = "predict";
  p.summary = "Labels batches with a saved or lent model and writes each image's top-k classes (JSON lines or CSV)";
  p.description =
      "Ordered stage. Waits for the model on its model input (a saved_model source, or a train\n"
      "stage's final_model output), then runs it on each batch of its batch input in stream order\n"
      "(eval mode, the model's autocast precision) and writes one record per image: its key (path)\n"
      "and the top_k classes with their softmax probability. To standard output as each batch is\n"
      "done, or into `output`, which appears only once complete. Images the decode stage skipped\n"
      "(on_error: skip) are named in its log and not written. `flowrun predict` builds a\n"
      "pipeline around it from the model's own evaluation chain.\n"
      "\n"
      "  {\"id\": \"predict\", \"plugin\": \"predict\", \"params\": {\"top_k\": 3, \"output\": \"predictions.csv\"}},\n"
      "  \"model -> predict.model\", \"images -> decode -> batch -> predict.batch\"";
  p.role = Role::Ordered;
  p.inputs = {{"model", kModelKind, "the model: a saved_model source or a train stage's final_model"},
              {"batch", kBatchKind, "the batches to label, in order"}};
  declare_options<PredictOptions>(p.params);
  p.create = make_predict_stage;
  p.check = check_predict_node;
  return p;
}

}  // namespace flowrun
