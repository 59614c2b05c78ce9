// The evaluate stage: scores the model the train stage lends it on an eval loader.
#pragma once

#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

PluginInfo evaluate_plugin();
// The stage behind it (evaluate_stage.cpp): kept apart so that the declaration
// compiles without LibTorch's headers.
std::unique_ptr<Stage> make_evaluate_stage(const StageArgs& args);

// Port numbers, in the order evaluate_plugin() declares them.
constexpr int kEvaluateModelPort = 0;
constexpr int kEvaluateBatchPort = 1;
constexpr int kEvaluateMetricsPort = 0;
constexpr int kEvaluateEvaluationsPort = 1;

}  // namespace flowrun
