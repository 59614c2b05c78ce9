// Early stopping on an evaluation metric: patience counts evaluations without an
// improvement larger than min_delta (in the metric's direction). Torch-free; the
// train stage feeds it each evaluation and ends the run when it says so.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace flowrun {

struct EarlyStoppingConfig {
  std::string metric;         // a value of the "eval" metrics (accuracy, loss, macro_f1...); "" = off
  std::string mode = "auto";  // max | min | auto (min for names containing "loss", else max)
  std::int64_t patience = 3;
  double min_delta = 0.0;
};

class EarlyStopping {
 public:
  explicit EarlyStopping(EarlyStoppingConfig config);

  bool enabled() const { return !config_.metric.empty(); }
  const std::string& metric() const { return config_.metric; }
  bool maximize() const { return maximize_; }
  // Records one evaluation; true when the run should stop now. Throws when the
  // metric is not among `values` (naming the ones that are).
  bool update(const std::map<std::string, double>& values);
  // Why it stopped, for the log and the report.
  std::string reason() const;

  double best() const { return best_; }
  std::int64_t evaluations_without_improvement() const { return bad_; }
  std::int64_t best_evaluation() const { return best_at_; }
  // The state a checkpoint keeps.
  void restore(double best, std::int64_t bad, std::int64_t best_at, std::int64_t seen);
  std::int64_t seen() const { return seen_; }

 private:
  EarlyStoppingConfig config_;
  bool maximize_ = true;
  double best_ = 0;
  std::int64_t bad_ = 0;
  std::int64_t best_at_ = -1;  // index of the best evaluation
  std::int64_t seen_ = 0;      // evaluations so far
};

}  // namespace flowrun
