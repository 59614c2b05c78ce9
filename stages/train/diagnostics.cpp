#include "stages/train/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace flowrun {
namespace {

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

}  // namespace

std::string Finding::text() const {
  std::string s = symptom;
  if (!remedies.empty()) {
    s += ". Try:";
    for (std::size_t i = 0; i < remedies.size(); ++i) s += (i ? "; " : " ") + remedies[i];
  }
  return s;
}

void Diagnostics::set_run(std::int64_t total_steps, std::int64_t warmup_steps, std::int64_t batch_size, int num_classes) {
  c_.total_steps = total_steps;
  c_.warmup_steps = warmup_steps;
  c_.batch_size = batch_size;
  c_.num_classes = num_classes;
}

std::string Diagnostics::flag(const std::string& param, const std::string& value) const {
  return "--set nodes." + c_.train_node + ".params." + param + "=" + value;
}

std::optional<Finding> Diagnostics::once(Finding f) {
  if (!reported_.insert(f.kind).second) return std::nullopt;
  return f;
}

std::vector<std::string> Diagnostics::stability_remedies() const {
  std::vector<std::string> r = {flag("lr", num(c_.lr / 3)) + " (a lower learning rate)"};
  if (c_.clip_grad_norm == 0) r.push_back(flag("clip_grad_norm", "1.0") + " (clip gradients)");
  r.push_back(flag("warmup_steps", std::to_string(std::max<std::int64_t>(2 * c_.warmup_steps, c_.total_steps / 10))) +
              " (a longer warmup)");
  if (c_.precision != "fp32") r.push_back(flag("precision", "fp32") + " (rule out reduced precision)");
  return r;
}

std::optional<Finding> Diagnostics::on_train_window(std::int64_t step, double loss) {
  if (step <= c_.warmup_steps || !std::isfinite(loss)) return std::nullopt;
  windows_.emplace_back(step, loss);
  const std::size_t n = windows_.size();
  // Unstable: a window far above the best so far, or loss swinging up and down hard.
  if (n >= 3) {
    double best = windows_[0].second;
    for (std::size_t i = 0; i + 1 < n; ++i) best = std::min(best, windows_[i].second);
    if (loss > 1.5 * best && loss > windows_[n - 2].second * 1.3) {
      return once({"unstable",
                   "unstable training: the loss jumped to " + num(loss) + " at step " + std::to_string(step) +
                       " after reaching " + num(best),
                   stability_remedies()});
    }
  }
  if (n >= 8) {
    int swings = 0;  // a big move against the one before it
    for (std::size_t i = n - 6; i < n; ++i) {
      const double d0 = windows_[i].second - windows_[i - 1].second;
      const double d1 = windows_[i - 1].second - windows_[i - 2].second;
      if (std::abs(d0) > 0.2 * windows_[i - 1].second && d0 * d1 < 0) ++swings;
    }
    if (swings >= 4) {
      return once({"unstable", "unstable training: the loss swings by more than 20% between log windows (" +
                                   std::to_string(swings) + " reversals in the last 6)",
                   stability_remedies()});
    }
  }
  // Not learning: flat since the end of warmup over a fair stretch of training.
  const std::int64_t stretch = std::max<std::int64_t>(c_.total_steps / 10, 1);
  const double first = windows_[0].second;
  if (n >= 4 && step - windows_[0].first >= stretch && std::abs(loss - first) <= 0.03 * first && !reported_.count("unstable")) {
    std::vector<std::string> r;
    if (c_.lr == 0) r.push_back(flag("lr", "1e-3") + " (the learning rate is 0)");
    else r.push_back(flag("lr", num(c_.lr * 10)) + " (a higher learning rate)");
    if (c_.strategy == "linear_probe") r.push_back(flag("strategy", "full_ft") + " (only the head trains now)");
    r.push_back("check that labels and images match and that mean/std fit the data (flowrun plugins batch)");
    return once({"not_learning",
                 "not learning: the training loss is " + num(loss) + " at step " + std::to_string(step) + ", " +
                     num(windows_[0].second) + " at step " + std::to_string(windows_[0].first) + " (flat after warmup)",
                 r});
  }
  return std::nullopt;
}

std::optional<Finding> Diagnostics::on_evaluation(std::int64_t step, double train_epoch_loss, double val_loss,
                                                  double val_accuracy) {
  ++evaluations_;
  train_epoch_loss_.push_back(train_epoch_loss);
  val_loss_.push_back(val_loss);
  const double chance = 1.0 / std::max(c_.num_classes, 1);
  if (evaluations_ >= 3 && step > c_.warmup_steps && val_accuracy <= 1.25 * chance) {
    std::vector<std::string> r;
    if (c_.lr == 0) r.push_back(flag("lr", "1e-3") + " (the learning rate is 0)");
    else if (reported_.count("unstable")) r.push_back(flag("lr", num(c_.lr / 10)) + " (the run was unstable: a lower one)");
    else r.push_back(flag("lr", num(c_.lr * 10)) + " or " + flag("lr", num(c_.lr / 10)) + " (another learning rate)");
    r.push_back("check that the eval data has the training data's classes and preprocessing");
    return once({"not_learning",
                 "not learning: validation accuracy " + num(100 * val_accuracy) + "% after " + std::to_string(evaluations_) +
                     " evaluations is at chance level (" + num(100 * chance) + "% for " + std::to_string(c_.num_classes) +
                     " classes)",
                 r});
  }
  const std::size_t n = val_loss_.size();
  if (n >= 3 && val_loss_[n - 1] > val_loss_[n - 2] && val_loss_[n - 2] > val_loss_[n - 3] &&
      train_epoch_loss_[n - 1] < train_epoch_loss_[n - 2] && train_epoch_loss_[n - 2] < train_epoch_loss_[n - 3]) {
    std::vector<std::string> r = {flag("weight_decay", num(std::max(0.05, c_.weight_decay * 2))) + " (more weight decay)",
                                  flag("drop_path", num(std::min(0.5, c_.drop_path + 0.1))) + " (more stochastic depth)"};
    if (!c_.augment_node.empty()) r.push_back("--set nodes." + c_.augment_node + ".plugin=randaugment (stronger augmentation)");
    r.push_back(flag("early_stopping_metric", "loss") + " (stop at the best validation loss)");
    return once({"overfitting",
                 "overfitting: validation loss rose over the last 3 evaluations (" + num(val_loss_[n - 3]) + " -> " +
                     num(val_loss_[n - 2]) + " -> " + num(val_loss_[n - 1]) + ") while training loss fell (" +
                     num(train_epoch_loss_[n - 3]) + " -> " + num(train_epoch_loss_[n - 1]) + ")",
                 r});
  }
  return std::nullopt;
}

Finding Diagnostics::out_of_memory(const std::string& what) const {
  std::vector<std::string> r;
  if (c_.batch_size > 1) {
    const std::string half = std::to_string(std::max<std::int64_t>(c_.batch_size / 2, 1));
    const std::string batch = c_.batch_node.empty() ? "the batch stage's batch_size=" + half
                                                    : "--set nodes." + c_.batch_node + ".params.batch_size=" + half;
    r.push_back(batch + " " + flag("accumulation", std::to_string(c_.accumulation * 2)) +
                " (half the batch, the same effective batch)");
  }
  if (c_.precision == "fp32" || c_.precision == "auto") r.push_back(flag("precision", "bf16") + " (mixed precision)");
  r.push_back(flag("depth", std::to_string(std::max(1, c_.depth / 2))) + " (a smaller model; or a smaller preset, or a smaller image_size)");
  return {"out_of_memory", "out of memory in the train step (" + what + ")", r};
}

Finding Diagnostics::diverged(const std::string& what) const {
  return {"unstable", "training diverged: " + what, stability_remedies()};
}

}  // namespace flowrun
