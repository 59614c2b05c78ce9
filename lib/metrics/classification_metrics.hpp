// Classification metrics from a confusion matrix: top-1 and top-k accuracy, loss,
// per-class precision / recall / F1, macro F1. Free of LibTorch: the train and eval
// stages feed it labels, ranked predictions and losses.
//
// Conventions (scikit-learn's, zero_division=0): a class never predicted has
// precision 0; a class absent from the labels has recall 0 and is still averaged
// into macro F1 only if it occurs in labels or predictions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowrun {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  std::int64_t support = 0;  // samples of this class in the labels
};

class ClassificationMetrics {
 public:
  explicit ClassificationMetrics(int classes, int top_k = 5);

  // One sample: its label, its classes ranked by score (at least top_k long, or all
  // classes when fewer), and its loss.
  void add(std::int64_t label, const std::int64_t* ranked, int ranked_count, double loss);
  void merge(const ClassificationMetrics& other);
  // Every total as one flat list (counts, loss sum, confusion matrix), and back: what
  // data-parallel ranks add up to score the whole split from their shares.
  std::vector<double> sums() const;
  void set_sums(const std::vector<double>& sums);

  std::int64_t count() const { return count_; }
  double loss() const { return count_ ? loss_sum_ / static_cast<double>(count_) : 0.0; }
  double accuracy() const;
  double top_k_accuracy() const;
  int top_k() const { return top_k_; }
  std::vector<ClassScores> per_class() const;
  double macro_f1() const;
  // confusion()[label][predicted]
  const std::vector<std::vector<std::int64_t>>& confusion() const { return confusion_; }

  // {"count", "loss", "accuracy", "top5_accuracy", "macro_f1", "per_class": [...], "confusion": [[...]]}
  std::string to_json(const std::vector<std::string>& class_names) const;
  // A compact text table: one line per class (precision, recall, F1, support), then the totals.
  std::vector<std::string> table(const std::vector<std::string>& class_names) const;

 private:
  int classes_;
  int top_k_;
  std::int64_t count_ = 0, correct_ = 0, top_k_correct_ = 0;
  double loss_sum_ = 0;
  std::vector<std::vector<std::int64_t>> confusion_;
};

}  // namespace flowrun
