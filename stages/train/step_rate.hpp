// The train stage's step alone, on synthetic batches: what `flowrun bench --model`
// compares the loader's rate with. Torch-free header.
#pragma once

#include <string>

#include "flowrun/stage.hpp"

namespace flowrun {

struct StepRate {
  double images_per_s = 0;
  double median_step_s = 0;
  int batch = 0;
  int threads = 0;          // LibTorch's intra-op threads during the measurement
  std::string model;        // the model's one-line description
};

// Builds the trainer a train node with these arguments would build (its model, strategy,
// optimizer, precision, device; 10 classes when the node takes them from the data) and
// times `steps` optimizer steps after `warmup`, each on a batch of `batch` random images
// at the model's resolution (uint8 when the node normalizes, as its batches would be),
// reading each step's numbers two steps behind as the stage does. Median step time.
StepRate measure_step_rate(const StageArgs& train_node, int batch, int steps, int warmup = 3);

}  // namespace flowrun
