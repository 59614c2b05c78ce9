// flowrun export: a checkpoint's weights as safetensors with Hugging Face names.
#include <iostream>

#include "cli.hpp"
#include "stages/checkpoint/checkpoint_export.hpp"

namespace flowrun::cli {

void add_export_command(CLI::App& app, Context& context) {
  struct Options {
    std::string checkpoint, folder;
    bool ema = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("export", "write a checkpoint's weights as safetensors with Hugging Face names");
  command->footer(
      "Writes the model of a checkpoint as OUT_FOLDER/model.safetensors with Hugging Face ViT names\n"
      "and OUT_FOLDER/config.json (with id2label from the training data's classes): loads in\n"
      "transformers (ViTForImageClassification.from_pretrained) and as a flowrun `pretrained`.\n"
      "--ema exports the EMA weights instead.");
  command->add_option("CHECKPOINT", options->checkpoint, "the checkpoint (.h5)")->required();
  command->add_option("OUT_FOLDER", options->folder, "where model.safetensors and config.json go")->required();
  command->add_flag("--ema", options->ema, "export the EMA weights");
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.action = [options] {
      const ExportSummary summary = export_checkpoint(options->checkpoint, options->folder, options->ema);
      std::cout << "exported " << (summary.ema ? "the EMA weights" : "the weights") << " of " << options->checkpoint
                << " (step " << summary.step << ", " << summary.model << ") to " << options->folder
                << "/model.safetensors and config.json\n";
      return kExitOk;
    };
  });
}

}  // namespace flowrun::cli
