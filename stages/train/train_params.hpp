// The train stage's ports, and its options (train_options.hpp) turned into the
// configurations of its parts: the trainer, the diagnostics, early stopping.
#pragma once

#include <string>
#include <vector>

#include "flowrun/stage.hpp"
#include "stages/train/diagnostics.hpp"
#include "stages/train/early_stopping.hpp"
#include "stages/train/train_options.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {

// Port numbers, in the order train_plugin() declares them.
constexpr int kTrainPort = 0;
constexpr int kMetricsPort = 0;
constexpr int kStatePort = 1;
constexpr int kEvaluationsPort = 2;
constexpr int kModelPort = 3;
constexpr int kFinalModelPort = 4;

// Fills the trainer's configuration from the node's options, on `device` with `seed`
// (TrainConfig's own defaults come from here too, with TrainOptions' defaults).
void apply_train_options(const TrainOptions& options, const std::string& device, std::uint64_t seed, TrainConfig& out);
TrainConfig train_config(const StageArgs& args);
TrainConfig train_config(const StageArgs& args, const TrainOptions& options);  // options already read
// The remedies name the run's own nodes: the batch stage feeding the train input, an "augment" node.
DiagnosticsConfig diagnostics_config(const StageArgs& args, const TrainOptions& options, const TrainConfig& train);
EarlyStoppingConfig early_stopping_config(const TrainOptions& options);
// The source nodes upstream of an input port.
std::vector<std::string> sources_feeding(const StageArgs& args, int port);
bool input_connected(const StageArgs& args, int port);
bool output_connected(const StageArgs& args, int port);

}  // namespace flowrun
