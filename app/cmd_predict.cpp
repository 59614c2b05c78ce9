// flowrun predict: a saved model's top classes for each image of files, folders and
// tars, as JSON lines or CSV, through the training run's own evaluation chain.
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "execute.hpp"
#include "model_pipeline.hpp"

namespace flowrun::cli {

void add_predict_command(CLI::App& app, Context& context) {
  struct Options {
    ModelRunOptions model;
    std::vector<std::string> inputs;
    int top_k = 5;
    std::string output;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("predict", "a saved model's top classes for images: JSON lines or CSV");
  command->footer(
      "Runs MODEL (a checkpoint .h5 or an export folder) on every image of INPUT (image files,\n"
      "folders searched recursively, uncompressed tar files) and writes, per image, its path and\n"
      "the --top-k classes with their softmax probability:\n"
      "  {\"path\":\"photos/cat.jpg\",\"top\":[{\"class\":\"cat\",\"index\":3,\"p\":0.91},...]}\n"
      "one JSON line per image on standard output (logs go to standard error), or into --output\n"
      "(CSV when it ends in .csv: path, then class_k, index_k, p_k per rank), written atomically.\n"
      "Preprocessing comes from the model: the training run's evaluation chain (decode,\n"
      "resize/crop, normalization, image size) as its checkpoint or export records it, with a\n"
      "resize to the model's size added when that chain never resizes (images of any size come\n"
      "in); --set changes any node of it (--dry-run prints it). A file that cannot be decoded is\n"
      "named and left out; the run goes on (and fails when no image is left). Images/s at the end;\n"
      "a progress line every 5 s on long inputs.\n"
      "\n"
      "Examples:\n"
      "  flowrun predict RUN/checkpoints/best.h5 photos/ cat.jpg\n"
      "  flowrun predict exported/ ../shared/data/cifar10-jpeg.tar --top-k 1 --output preds.csv\n"
      "Exit codes: 0 done, 1 the run failed (no image decodable, a file unreadable), 2 bad model, input or option");
  add_model_run_options(*command, options->model);
  command->add_option("INPUT", options->inputs, "image files, folders and tar files")->required();
  command->add_option("--top-k", options->top_k, "classes per image, most probable first")
      ->type_name("K")
      ->check(CLI::Range(1, 100000));
  command->add_option("--output", options->output, "write here instead of standard output (.csv: CSV)")
      ->type_name("FILE");
  add_overrides(*command, options->overrides);
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.data_on_stdout = options->output.empty();
    context.action = [&context, options] {
      const SavedModelInfo model = read_model_argument(options->model.model);
      if (options->model.ema && !model.has_ema)
        throw UsageError("--ema: " + model.path + " has no EMA weights" +
                         (model.kind == SavedModelInfo::Kind::Export ? " (an export holds one set of weights)"
                                                                      : " (the run had ema_decay 0)"));
      for (const std::string& input : options->inputs)
        if (!std::filesystem::exists(input)) throw UsageError("INPUT " + input + ": no such file or folder");
      if (!options->output.empty()) {
        const std::filesystem::path folder = std::filesystem::absolute(options->output).parent_path();
        if (!std::filesystem::is_directory(folder))
          throw UsageError("--output " + options->output + ": the folder " + folder.string() + " does not exist");
      }
      nlohmann::json document =
          predict_pipeline(context, model, options->model, options->inputs, options->top_k, options->output);
      apply_overrides(document, options->overrides);
      if (options->model.dry_run) {
        std::cout << document.dump(2) << "\n";
        return kExitOk;
      }
      Description description = load_built_pipeline(context, document, "flowrun predict", {});
      return execute_pipeline(std::move(description), RunOptions{},
                              {"flowrun predict " + model.path, nullptr, true, "", "predicting with " + model.describe(), false});
    };
  });
}

}  // namespace flowrun::cli
