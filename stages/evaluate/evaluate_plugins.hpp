// The evaluate stage: scores the model the train stage lends it on an eval loader.
#pragma once

#include <cstdint>
#include <string>

#include "flowrun/options.hpp"
#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

struct EvaluateOptions {
  std::string split;
  std::int64_t misclassified_top = 24;

  template <typename D>
  static void declare(D& d) {
    d(&EvaluateOptions::split, "split", "the split's name in records and reports; \"\" = val (test for the final_model output)");
    d(&EvaluateOptions::misclassified_top, "misclassified_top",
      "keep this many misclassified samples of highest loss (with thumbnails)")
        .range(0, 10000);
  }
};

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
