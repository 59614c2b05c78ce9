// Payload kind "evaluation": one finished evaluation in full, for sinks that write
// files and reports (the train stage's "evaluations" output). The "metrics" payload
// carries its headline numbers; this one carries everything: the confusion matrix
// and per-class scores (in ClassificationMetrics), the EMA model's, and the worst
// misclassified samples with small thumbnails.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/message.hpp"
#include "lib/metrics/classification_metrics.hpp"

namespace flowrun {

constexpr const char* kEvaluationKind = "evaluation";

// A thumbnail for reports: uint8 RGB, row-major HWC, at most kThumbnailSide a side.
struct Thumbnail {
  static constexpr int kThumbnailSide = 64;
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
};

// A sample the model got wrong, with how wrong.
struct Misclassified {
  std::string key;          // path or tar member
  std::int64_t label = -1;
  std::int64_t predicted = -1;
  double confidence = 0;    // softmax probability of the predicted class
  double loss = 0;          // cross-entropy of the true label
  Thumbnail thumbnail;
};

struct Evaluation : Payload {
  std::string split = "val";  // "val" after an epoch, "test" once after training
  std::uint64_t epoch = 0;  // the training epoch it followed
  std::uint64_t step = 0;
  std::vector<std::string> classes;
  std::shared_ptr<const ClassificationMetrics> metrics;
  std::shared_ptr<const ClassificationMetrics> ema_metrics;  // null without EMA
  std::vector<Misclassified> worst;  // highest loss first
  // After training: training samples whose label the model contradicts with high
  // confidence in the last epoch (highest loss first); set on the run's last payload.
  std::vector<Misclassified> suspected_label_errors;

  std::string describe() const override;
};

// Keeps the n misclassified samples of highest loss seen so far.
class WorstSamples {
 public:
  explicit WorstSamples(std::size_t n) : n_(n) {}
  // The kept samples as bytes and back (data-parallel ranks pool their lists: each
  // rank's worst are candidates for the whole split's).
  std::string pack() const;
  void add_packed(const std::string& bytes);
  bool wants(double loss) const { return n_ > 0 && (worst_.size() < n_ || loss > worst_.back().loss); }
  void add(Misclassified sample);
  std::vector<Misclassified> take() { return std::move(worst_); }

 private:
  std::size_t n_;
  std::vector<Misclassified> worst_;  // sorted, highest loss first
};

}  // namespace flowrun
