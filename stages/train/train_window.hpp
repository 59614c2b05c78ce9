// Running sums of the train steps between two log lines, or over an epoch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "lib/distributed/process_group.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {

struct TrainWindow {
  double loss_sum = 0, grad_norm_sum = 0;
  std::int64_t correct = 0, count = 0, steps = 0, batches = 0;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();

  void add(const StepStats& s) {
    loss_sum += s.loss;
    correct += s.correct;
    count += s.count;
    ++batches;
    if (s.stepped && !s.skipped) {  // an fp16 step skipped for non-finite gradients has no norm to average
      grad_norm_sum += s.grad_norm;
      ++steps;
    }
  }
  double loss() const { return batches ? loss_sum / static_cast<double>(batches) : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0; }
  double grad_norm() const { return steps ? grad_norm_sum / static_cast<double>(steps) : 0.0; }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count(); }
  double images_per_s() const {
    const double s = seconds();
    return s > 0 ? static_cast<double>(count) / s : 0.0;
  }

  // Data-parallel: the window over every rank's share, so the logged loss and accuracy
  // are the global batch's (as one process would log them) and images/s the job's.
  // The clock stays this rank's. Every rank calls it at the same step.
  TrainWindow summed_over(DataParallelGroup& group) const {
    std::vector<double> sums = {loss_sum, grad_norm_sum, static_cast<double>(correct), static_cast<double>(count),
                                static_cast<double>(steps), static_cast<double>(batches)};
    group.all_reduce_sum(sums);
    TrainWindow all = *this;
    all.loss_sum = sums[0];
    all.grad_norm_sum = sums[1];
    all.correct = static_cast<std::int64_t>(sums[2]);
    all.count = static_cast<std::int64_t>(sums[3]);
    all.steps = static_cast<std::int64_t>(sums[4]);
    all.batches = static_cast<std::int64_t>(sums[5]);
    return all;
  }

  // Checkpoints keep the sums as "stage/<name>_..." counters and values (the start
  // time is not state: a resumed window's images/s restarts).
  void save(TrainState& state, const std::string& name) const {
    const std::string p = "stage/" + name + "_";
    state.counters[p + "batches"] = batches;
    state.counters[p + "count"] = count;
    state.counters[p + "correct"] = correct;
    state.counters[p + "steps"] = steps;
    state.values[p + "loss_sum"] = loss_sum;
    state.values[p + "grad_norm_sum"] = grad_norm_sum;
  }
  void restore(const TrainState& state, const std::string& name) {
    const std::string p = "stage/" + name + "_";
    batches = state.counter(p + "batches");
    count = state.counter(p + "count");
    correct = state.counter(p + "correct");
    steps = state.counter(p + "steps");
    loss_sum = state.value(p + "loss_sum");
    grad_norm_sum = state.value(p + "grad_norm_sum");
  }
};

}  // namespace flowrun
