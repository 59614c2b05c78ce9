// flowrun evaluate: scores a saved model (checkpoint or export) on labelled data, with
// the training run's own evaluation chain, into a run folder with the report.
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "execute.hpp"
#include "model_pipeline.hpp"

namespace flowrun::cli {

void add_evaluate_command(CLI::App& app, Context& context) {
  struct Options {
    ModelRunOptions model;
    EvaluationData data;
    std::string run_dir;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("evaluate", "score a saved model on labelled data: loss, top-1/top-5, F1, per class, report");
  command->footer(
      "Scores MODEL (a checkpoint .h5 or an export folder) as the training run's final evaluation\n"
      "did: the run's evaluation chain (decode, resize/crop, batch, normalization: from the\n"
      "description the checkpoint or export records), its precision, its evaluate node's settings.\n"
      "Without --data it reads the data that chain read (so the figures equal the run's final\n"
      "evaluation, to the printed digit, given the same weights); with --data, a tar file\n"
      "(ImageFolder layout inside; --split test reads its test/ folder), an image folder (one\n"
      "sub-folder per class; --split names a sub-folder) or a folder with CIFAR-10's binary\n"
      "release (--split train|test). The data's classes must be the model's (by name).\n"
      "Prints loss, top-1, top-5, macro F1 and the per-class table; writes the run folder\n"
      "(runs/NAME-evaluate-YYYYmmdd-HHMMSS unless --run-dir): pipeline.json (what ran), test.json\n"
      "(per class, the confusion matrix), test_misclassified.json and report.html with the confusion\n"
      "matrix and the most confidently wrong images. --set changes any node (--dry-run prints it). --ema scores the EMA weights; a checkpoint with EMA weights\n"
      "otherwise reports them beside the trained ones, as training did. A model from Hugging Face or\n"
      "timm (no description recorded) is read with resize to its size and its\n"
      "preprocessor_config.json's mean and std (0.5 without one), and needs --data.\n"
      "\n"
      "Examples:\n"
      "  flowrun evaluate RUN/checkpoints/best.h5\n"
      "  flowrun evaluate exported/ --data ../shared/data/cifar10-jpeg.tar --split test\n"
      "Exit codes: 0 done, 1 the run failed, 2 bad model, data or option");
  add_model_run_options(*command, options->model);
  command->add_option("--data", options->data.path, "labelled data: a tar, an image folder or CIFAR-10's binary folder")
      ->type_name("PATH");
  command->add_option("--split", options->data.split, "the part of --data: a folder inside the tar or folder; CIFAR-10: train or test")
      ->type_name("S");
  command->add_option("--run-dir", options->run_dir, "the run folder (default runs/NAME-evaluate-YYYYmmdd-HHMMSS)")
      ->type_name("DIR");
  add_overrides(*command, options->overrides);
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.action = [&context, options] {
      const SavedModelInfo model = read_model_argument(options->model.model);
      if (options->model.ema && model.kind == SavedModelInfo::Kind::Export)
        throw UsageError("--ema: " + model.path + " is an export (its weights are what was exported); --ema reads a checkpoint's EMA weights");
      if (options->model.ema && !model.has_ema)
        throw UsageError("--ema: " + model.path + " has no EMA weights (the run had ema_decay 0)");
      nlohmann::json document = evaluate_pipeline(context, model, options->model, options->data);
      apply_overrides(document, options->overrides);
      if (options->model.dry_run) {
        std::cout << document.dump(2) << "\n";
        return kExitOk;
      }
      Description description = load_built_pipeline(context, document, "flowrun evaluate", {});
      RunOptions run;
      run.run_folder = !options->run_dir.empty() ? options->run_dir : "runs/" + description.name + "-" + run_timestamp();
      return execute_pipeline(std::move(description), std::move(run),
                              {"flowrun evaluate " + model.path, nullptr, true, "", "evaluating " + model.describe(), true});
    };
  });
}

}  // namespace flowrun::cli
