// One pass of the model over an evaluation split (the eval input's epoch, or the
// test input once after training): the metrics of the live model and of its EMA
// copy, and the worst misclassified samples, gathered as the batches arrive; then
// the headline numbers and the full Evaluation record.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "stages/batch/batch.hpp"
#include "stages/eval/evaluation.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {

class EvaluationPass {
 public:
  // `ema`: also evaluate the trainer's EMA weights. `worst_top`: how many misclassified
  // samples to keep (with thumbnails); 0 skips the per-sample outcomes.
  EvaluationPass(int classes, bool ema, std::size_t worst_top);

  void add(Trainer& trainer, const Batch& batch);

  const ClassificationMetrics& metrics() const { return *metrics_; }
  const ClassificationMetrics* ema_metrics() const { return ema_metrics_.get(); }  // null without EMA
  double seconds() const;  // since the pass began
  // loss, accuracy, top5_accuracy, macro_f1, samples; with EMA also ema_loss, ema_accuracy.
  std::map<std::string, double> headline() const;
  // The full record of the pass; hands over the worst samples (a second call has none).
  std::shared_ptr<Evaluation> take_evaluation(const std::string& split, std::uint64_t epoch, std::uint64_t step,
                                              const std::vector<std::string>& classes);

 private:
  std::shared_ptr<ClassificationMetrics> metrics_, ema_metrics_;
  WorstSamples worst_;
  bool keep_worst_;
  std::vector<Trainer::Outcome> outcomes_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace flowrun
