// One pass of a lent model over an evaluation split (one epoch of the evaluate node's
// batch input): the metrics of the live model and of its EMA copy, and the worst
// misclassified samples, gathered as the batches arrive; then the headline numbers
// and the full Evaluation record.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/model_snapshot.hpp"

namespace flowrun {

class DataParallelGroup;

class EvaluationPass {
 public:
  // `worst_top`: how many misclassified samples to keep (with thumbnails); 0 skips the
  // per-sample outcomes. The snapshot must outlive the pass.
  EvaluationPass(const ModelSnapshot& model, std::size_t worst_top);

  void add(const Batch& batch);

  // Data-parallel: the metrics and the worst samples of the whole split, from every
  // rank's share (each rank calls it once its share is done; `key` names this pass
  // alike on every rank).
  void add_up_ranks(DataParallelGroup& group, const std::string& key);

  const ClassificationMetrics& metrics() const { return *metrics_; }
  const ClassificationMetrics* ema_metrics() const { return ema_metrics_.get(); }  // null without EMA
  double seconds() const;  // since the pass began
  // loss, accuracy, top5_accuracy, macro_f1, samples; with EMA also ema_loss, ema_accuracy.
  std::map<std::string, double> headline() const;
  // The full record of the pass; hands over the worst samples (a second call has none).
  std::shared_ptr<Evaluation> take_evaluation(const std::string& split);

 private:
  const ModelSnapshot& model_;
  std::shared_ptr<ClassificationMetrics> metrics_, ema_metrics_;
  WorstSamples worst_;
  std::size_t worst_top_;
  bool keep_worst_;
  std::vector<SampleOutcome> outcomes_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace flowrun
