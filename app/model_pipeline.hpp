// The pipelines `flowrun evaluate` and `flowrun predict` run, built around a saved
// model from the description it was trained with: preprocessing comes from the model,
// not from the user.
//
// The training run's evaluation chain (every node upstream of its evaluate node's
// batch input: source, decode, resize/crop, batch, batch stages) is kept as it was,
// with its source set to one epoch or replaced by the user's data; a saved_model
// source takes the train stage's place (its precision, mean and std), and an evaluate
// node (with a report) or a predict node takes the batches:
//
//   model (saved_model) ---------------------------------> eval.model
//   test_data -> test_decode -> ... -> test_batch -------> eval.batch -> report
//
// A model saved without a description (a Hugging Face or timm folder) gets the chain
// such folders assume: decode, resize to the model's size, normalize with 0.5 / 0.5
// (Hugging Face's ViT default) unless preprocessor_config.json says otherwise.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "stages/checkpoint/saved_model.hpp"

namespace flowrun::cli {

// Where the user's labelled data for `flowrun evaluate --data` lives.
struct EvaluationData {
  std::string path;   // "" = the training run's own evaluation data
  std::string split;  // tar: the prefix's folder ("test"); image folder: its subfolder; CIFAR-10: train | test
};

struct ModelRunOptions {
  std::string model;  // checkpoint or export folder, as given
  bool ema = false;
  std::string device;  // "" = the description's
  int batch_size = 0;  // 0 = the description's
  bool dry_run = false;  // print the pipeline, run nothing
};

// MODEL, --ema, --device, --batch-size and --dry-run on `command`.
void add_model_run_options(CLI::App& command, ModelRunOptions& options);

// The MODEL argument read (a checkpoint or an export folder); a bad one is a usage
// error (exit 2) naming it and what was expected.
SavedModelInfo read_model_argument(const std::string& path);

// The evaluate pipeline: the model on `data` (or on the data its run evaluated on).
nlohmann::json evaluate_pipeline(Context& context, const SavedModelInfo& model, const ModelRunOptions& options,
                                 const EvaluationData& data);

// The predict pipeline: the model on `inputs` (files, folders, tars), top_k classes
// each, written to `output` ("" = standard output).
nlohmann::json predict_pipeline(Context& context, const SavedModelInfo& model, const ModelRunOptions& options,
                                const std::vector<std::string>& inputs, int top_k, const std::string& output);

}  // namespace flowrun::cli
