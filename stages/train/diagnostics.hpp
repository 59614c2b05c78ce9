// Watches a training run for the four problems fine-tuning guides list, while it
// goes, and says what to change as concrete --set flags:
//
//   overfitting    training loss falling while validation loss rises over evaluations
//   not learning   loss flat after warmup, or validation accuracy at chance level
//   unstable       loss spikes or oscillation after warmup (NaN/Inf is caught by the trainer)
//   out of memory  (oom_advice) an allocation failure in the train step
//
// Torch-free: the train stage feeds it the numbers it logs anyway. Each problem is
// reported once per run.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flowrun {

struct DiagnosticsConfig {
  std::string train_node = "train";  // for --set nodes.<id>.params...
  std::string batch_node;            // the batch stage feeding it, "" if unknown
  std::string augment_node;          // a swappable augmentation slot, "" if none
  double lr = 1e-3;
  double clip_grad_norm = 0;
  double weight_decay = 0.05;
  double drop_path = 0.1;
  std::string precision = "fp32";
  std::string strategy = "full_ft";
  int num_classes = 10;
  int depth = 12;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 0;
  std::int64_t batch_size = 0;
  int accumulation = 1;
};

struct Finding {
  std::string kind;     // overfitting | not_learning | unstable | out_of_memory
  std::string symptom;  // what was seen, with numbers
  std::vector<std::string> remedies;  // each a --set flag with a short reason
  std::string text() const;           // "symptom. Try: a; b; c"
};

class Diagnostics {
 public:
  explicit Diagnostics(DiagnosticsConfig config) : c_(std::move(config)) {}
  // What is known once the first batch arrives.
  void set_run(std::int64_t total_steps, std::int64_t warmup_steps, std::int64_t batch_size, int num_classes);

  // A logged window of training steps (mean loss over it).
  std::optional<Finding> on_train_window(std::int64_t step, double loss);
  // An evaluation, with the mean training loss of the epoch before it.
  std::optional<Finding> on_evaluation(std::int64_t step, double train_epoch_loss, double val_loss, double val_accuracy);
  // Resuming: feeds the records of the run so far (in order) so that what was reported
  // is not reported again and the curves continue. Call after set_run().
  template <typename Records>
  void replay(const Records& history) {
    for (const auto& m : history) {
      const auto loss = m.values.find("loss");
      if (loss == m.values.end()) continue;
      if (m.scope == "train") on_train_window(static_cast<std::int64_t>(m.step), loss->second);
      if (m.scope == "eval" && m.values.count("accuracy") && m.values.count("train_loss"))
        on_evaluation(static_cast<std::int64_t>(m.step), m.values.at("train_loss"), loss->second, m.values.at("accuracy"));
    }
  }
  // What to say when the train step could not allocate memory.
  Finding out_of_memory(const std::string& what) const;
  // What to say when the loss or gradient norm became NaN/Inf.
  Finding diverged(const std::string& what) const;

 private:
  std::optional<Finding> once(Finding f);
  std::string flag(const std::string& param, const std::string& value) const;
  std::vector<std::string> stability_remedies() const;

  DiagnosticsConfig c_;
  std::set<std::string> reported_;
  std::vector<std::pair<std::int64_t, double>> windows_;  // after warmup
  std::vector<double> train_epoch_loss_, val_loss_;
  int evaluations_ = 0;
};

}  // namespace flowrun
