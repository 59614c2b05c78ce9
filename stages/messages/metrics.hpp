// Payload kind "metrics": what the train stage reports as it goes, for sinks that
// log, plot or checkpoint (collect records them as text). Free of LibTorch.
//
//   scope "train"       every log_every optimizer steps: loss, accuracy, lr, grad_norm, images_per_s
//   scope "train_epoch" at each epoch end: loss, accuracy over the epoch
//   scope "eval"        after each evaluation: loss, accuracy, top5_accuracy, macro_f1, samples
//                       (and ema_loss, ema_accuracy)
//   scope "note"        a diagnosis (overfitting, not learning, unstable...) in `note`
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "flowrun/message.hpp"

namespace flowrun {

constexpr const char* kMetricsKind = "metrics";

struct Metrics : Payload {
  std::string scope;
  std::uint64_t epoch = 0;
  std::uint64_t step = 0;
  std::map<std::string, double> values;
  std::string note;  // scope "note": a diagnosis or remark in words (no values)

  std::string describe() const override;  // "eval epoch 2 step 780 accuracy=0.61 loss=1.1"
};

}  // namespace flowrun
