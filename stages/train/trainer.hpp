// The train step of a ViT, independent of the flow graph: owns the model, the
// optimizer, the schedule and the optional EMA copy; the train stage
// (train_stage.cpp) feeds it batches and the tests drive it directly.
//
// One call to train_batch() is one micro-batch; the optimizer steps every
// `accumulation` micro-batches (the loss is divided by it, so accumulation 4 of
// batch 16 gives the gradient of batch 64). Frozen parameters have no gradient and
// are skipped by the optimizer, so they stay bitwise unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/metrics/classification_metrics.hpp"
#include "lib/model/inference.hpp"
#include "lib/model/vit.hpp"
#include "lib/model/weights.hpp"
#include "stages/train/param_groups.hpp"
#include "stages/train/schedule.hpp"
#include "stages/train/strategy.hpp"
#include "stages/train/train_options.hpp"

namespace flowrun {

struct TrainState;
class DataParallelGroup;
class GradientSync;
class LossScaler;

// What a Trainer is built from. A default-constructed one holds the train stage's
// defaults (TrainOptions, train_options.hpp) on the CPU: the defaults are declared there
// once; apply_train_options() (train_params.cpp) fills one from a node's options.
struct TrainConfig {
  TrainConfig();
  VitConfig model;
  VitInit init;            // the random start; weights loaded below overwrite it
  std::string pretrained;  // a .safetensors file, or "" to start from random weights
  LoadOptions load;
  Strategy strategy;
  UnfreezePlan unfreeze;
  Optimizer optimizer;
  double lr;
  double weight_decay;
  double beta1, beta2, eps;  // AdamW
  double momentum;           // SGD
  bool fused_optimizer;      // AdamW through ATen's fused kernel (false: LibTorch's per-parameter loop)
  bool nesterov;
  double layer_decay;  // llrd only
  ScheduleKind schedule;
  std::int64_t warmup_steps;  // < 0: use warmup_fraction
  double warmup_fraction;
  double min_lr_ratio;
  double label_smoothing;
  double clip_grad_norm;  // 0 = no clipping (the norm is still measured)
  int accumulation;
  Precision precision;
  double ema_decay;               // 0 = no EMA
  std::vector<double> mean, std;  // normalization of uint8 batches; empty = batches come normalized
  std::string device;
  std::uint64_t seed;
  // Leave each step's loss, correct count and gradient norm (and outcomes) on the
  // device, copied to the host behind the step, so the host never waits for the step
  // it just queued: read_stats() reads them later. The train stage sets it; off, the
  // step reads them at once (the unit tests' mode).
  bool defer_reads;
  // Data-parallel: rank 0's weights are copied to every rank at the start, and each
  // step's gradients are averaged across the ranks during the backward pass (in
  // buckets of gradient_bucket_mb). Null: alone.
  std::shared_ptr<DataParallelGroup> data_parallel;
  double gradient_bucket_mb;
};

struct StepReadout;  // a step's numbers on their way to the host (trainer.cpp)

struct StepStats {
  double loss = 0;          // of this micro-batch (not divided by accumulation)
  std::int64_t correct = 0; // top-1 against the label (or the soft target's argmax)
  std::int64_t count = 0;
  bool stepped = false;     // the optimizer stepped after this micro-batch
  double grad_norm = 0;     // global norm before clipping, when stepped
  // fp16: the gradients were not finite, so the optimizer left the weights and the loss
  // scale came down (the step still counts towards the schedule, as with GradScaler);
  // with defer_reads, known after read_stats().
  bool skipped = false;
  std::int64_t at_step = 0; // optimizer steps taken before this micro-batch
  // defer_reads: loss, correct and grad_norm above are not filled in until read_stats().
  std::shared_ptr<StepReadout> pending;
};

// The loss or the gradient norm became NaN or infinite (outside fp16 loss scaling).
class DivergedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Trainer {
 public:
  explicit Trainer(TrainConfig config);
  ~Trainer();

  // The schedule's length in optimizer steps; call before the first batch.
  void set_total_steps(std::int64_t steps);
  // images (N, C, H, W) uint8 or float; labels (N) int64; soft_targets (N, classes) or undefined.
  // A sample's prediction: the top class, its softmax probability, the true label's loss.
  using Outcome = SampleOutcome;
  // With `outcomes`, each sample's prediction as the step saw it (training mode).
  StepStats train_batch(const torch::Tensor& images, const torch::Tensor& labels, const torch::Tensor& soft_targets,
                        std::int64_t epoch, std::vector<Outcome>* outcomes = nullptr);
  // Adds a batch to `metrics`: each sample's loss (no label smoothing) and ranked top-k
  // classes; `ema` uses the EMA weights.
  // With `outcomes`, also each sample's predicted class, its probability and the loss.
  void evaluate_batch(const torch::Tensor& images, const torch::Tensor& labels, ClassificationMetrics& metrics,
                      bool ema = false, std::vector<Outcome>* outcomes = nullptr);
  torch::Tensor predict(const torch::Tensor& images, bool ema = false);  // logits, eval mode
  // defer_reads: fills `stats`' loss, correct count and gradient norm (and `outcomes`,
  // when the step was asked for them), waiting for that step's copy only; throws
  // DivergedError as the step itself would have. A no-op for a stats already read.
  void read_stats(StepStats& stats, std::vector<Outcome>* outcomes = nullptr) const;

  // Appends the trainer's state to `out` (CPU copies; see train_state.hpp), and
  // restores it into a trainer built with the same configuration.
  void save_state(TrainState& out) const;
  void load_state(const TrainState& state);

  Vit& model() { return model_; }
  Vit& ema_model() { return ema_; }  // null without EMA
  const InputTransform& input() const { return input_; }
  bool has_ema() const { return static_cast<bool>(ema_); }
  const TrainConfig& config() const { return config_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  const LoadReport* load_report() const { return load_report_.get(); }
  std::int64_t step() const { return step_; }  // optimizer steps taken
  std::int64_t total_steps() const { return schedule_.total_steps; }
  double lr(std::size_t group) const;          // current lr of a group
  double weight_decay(std::size_t group) const;  // as the optimizer holds it
  double base_lr_now() const;                  // lr of a scale-1 group now
  int unfrozen_blocks_now() const { return unfrozen_; }
  std::int64_t trainable_parameters() const;

 private:
  void update_trainable(std::int64_t epoch);
  void apply_schedule();
  torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& soft) const;
  torch::Tensor clip_and_measure();  // the norm before clipping, on the device; undefined without gradients
  void fused_adamw_step(const torch::Tensor& found_inf);
  void optimizer_step(StepStats& stats, torch::Tensor* device_norm, torch::Tensor* device_found_inf);
  void queue_readout(StepStats& stats, const torch::Tensor& loss, const torch::Tensor& correct,
                     const torch::Tensor& grad_norm, const torch::Tensor& found_inf, const torch::Tensor& outcomes);
  void update_ema();
  void note_skipped_step(bool skipped, std::int64_t step) const;  // fp16: logs, and fails a run that only skips
  void sync_trainable();

  TrainConfig config_;
  torch::Device device_;
  Vit model_{nullptr};
  Vit ema_{nullptr};
  std::vector<std::pair<torch::Tensor, torch::Tensor>> ema_pairs_;  // (EMA parameter, live parameter)
  std::vector<ParamGroup> groups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unordered_map<void*, torch::Tensor> adamw_steps_;  // fused AdamW: step counts as tensors, by parameter
  std::unique_ptr<LoadReport> load_report_;
  std::unique_ptr<GradientSync> sync_;  // data-parallel: over the parameters trainable now
  LrSchedule schedule_;
  InputTransform input_;
  std::int64_t step_ = 0;
  int micro_ = 0;       // micro-batches accumulated towards the next step
  int unfrozen_ = -2;   // last applied unfreeze state (-2 = none yet)
  std::unique_ptr<LossScaler> scaler_;  // fp16 only
  mutable int skipped_in_a_row_ = 0;     // fp16: counted where each step's flag is read
};

}  // namespace flowrun
