// Payload kind "train_state": a consistent snapshot of everything a training run
// needs to continue exactly where it was taken, emitted by the train stage on its
// "state" port and written to HDF5 by the checkpoint stage (stages/checkpoint/).
//
// Tensors are CPU copies made at the moment of the snapshot, so the train stage can
// step on while the checkpoint stage writes on another thread. Tensor names:
//   model/<parameter>                      parameters and buffers (timm names)
//   ema/<parameter>                        the EMA copy, when there is one
//   optimizer/<parameter>/<slot>           exp_avg, exp_avg_sq, step (AdamW); momentum_buffer (SGD)
//   grad/<parameter>                       only when taken mid-accumulation
//   rng/torch_cpu, rng/torch_cuda          generator states (dropout, drop path)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flowrun/message.hpp"
#include "flowrun/stage.hpp"
#include "stages/messages/metrics.hpp"

namespace flowrun {

constexpr const char* kTrainStateKind = "train_state";

struct TrainState : Payload {
  std::string reason;  // why it was taken: "step", "epoch", "final", "stop"
  std::string node;    // the train stage's node id
  std::uint64_t step = 0;   // optimizer steps taken
  std::uint64_t epoch = 0;  // the epoch the next batch belongs to
  std::string model_config;  // vit_config_to_json
  std::vector<std::string> classes;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::int64_t> counters;  // trainer and stage counters, by name
  std::map<std::string, double> values;          // the same for real numbers
  std::map<std::string, StreamPosition> positions;  // source node id -> where its stream resumes
  std::vector<Metrics> history;                  // every metrics record so far

  const at::Tensor* find(const std::string& name) const;
  std::int64_t counter(const std::string& name, std::int64_t fallback = 0) const;
  double value(const std::string& name, double fallback = 0) const;
  std::string describe() const override;  // "train_state step 120 epoch 1 (step), 58 tensors"
};

}  // namespace flowrun
