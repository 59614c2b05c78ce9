#include "stages/train/trainer.hpp"

#include <ATen/autocast_mode.h>
#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include "flowrun/logging.hpp"
#include "lib/distributed/gradient_sync.hpp"
#include "lib/distributed/process_group.hpp"
#include "stages/train/loss_scaler.hpp"

namespace flowrun {
namespace {

void log_skipped_step(std::int64_t step) {
  log::warn("fp16: non-finite gradients at step ", step, ": the optimizer skipped it and the loss scale was halved");
}

// GradScaler would halve the scale forever; after this many skipped steps in a row the
// scale is 65536 / 2^25 (about 0.002), so gradients that still overflow are not finite
// at any scale: the run has diverged, and says so as an fp32 run would.
constexpr int kMaxSkippedInARow = 25;

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<ParamGroup>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const ParamGroup& g : groups) {
    if (c.optimizer == Optimizer::AdamW) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(c.lr * g.lr_scale);
      o->betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(g.weight_decay);
      param_groups.emplace_back(g.params, std::move(o));
    } else {
      auto o = std::make_unique<torch::optim::SGDOptions>(c.lr * g.lr_scale);
      o->momentum(c.momentum).nesterov(c.nesterov).weight_decay(g.weight_decay);
      param_groups.emplace_back(g.params, std::move(o));
    }
  }
  if (c.optimizer == Optimizer::AdamW) return std::make_unique<torch::optim::AdamW>(std::move(param_groups));
  return std::make_unique<torch::optim::SGD>(std::move(param_groups), torch::optim::SGDOptions(c.lr));
}

}  // namespace

// Deferred reads: the step's numbers, stacked into one double tensor (loss, correct,
// grad norm) plus the per-sample outcomes (predicted, confidence, loss), copied
// non-blocking into page-locked host memory right behind the step on its stream, and
// an event recorded after the copy. Reading waits for that event only, so while the
// host reads step k the device already runs the steps queued after it. On the CPU the
// copy is done at once and there is no event.
struct StepReadout {
  torch::Tensor numbers;   // (4) double: loss, correct, grad norm, fp16 found-inf flag
  torch::Tensor outcomes;  // (N, 3) double, or undefined
  std::optional<c10::Event> copied;
  bool carries_skip_flag = false;  // fp16 with fused AdamW: the skip is learnt here
};

Trainer::Trainer(TrainConfig config) : config_(std::move(config)), device_(config_.device) {
  if (config_.accumulation < 1) throw std::invalid_argument("accumulation must be >= 1");
  config_.unfreeze.check();
  torch::manual_seed(config_.seed);  // model init, dropout and drop path draw from it
  model_ = Vit(config_.model, config_.init);
  if (!config_.pretrained.empty()) {
    load_report_ = std::make_unique<LoadReport>(load_vit_weights(model_, config_.pretrained, config_.load));
    for (const auto& line : load_report_->lines()) log::info(line);
  }
  model_->to(device_);
  model_->train();
  if (config_.data_parallel) {
    // Every rank starts from rank 0's weights (a random init differs by rank otherwise).
    std::vector<torch::Tensor> state = model_->parameters();
    for (const torch::Tensor& b : model_->buffers()) state.push_back(b);
    broadcast_from_rank0(*config_.data_parallel, state);
  }
  const double layer_decay = config_.strategy == Strategy::Llrd ? config_.layer_decay : 1.0;
  groups_ = vit_param_groups(model_, config_.weight_decay, layer_decay);
  optimizer_ = make_optimizer(config_, groups_);
  if (config_.ema_decay > 0) {
    ema_ = Vit(model_->config);
    ema_->to(device_);
    torch::NoGradGuard no_grad;
    auto src = model_->named_parameters();
    for (auto& p : ema_->named_parameters()) {
      p.value().copy_(src[p.key()]);
      ema_pairs_.emplace_back(p.value(), src[p.key()]);
    }
    ema_->eval();
  }
  input_ = InputTransform(device_, config_.mean, config_.std);
  if (config_.precision == Precision::Fp16) {
    scaler_ = std::make_unique<LossScaler>(device_);
    if (!device_.is_cuda())
      log::warn("fp16 on the CPU: without fp16 units (AVX512-FP16, AMX-FP16) ATen emulates half precision (vit_cifar_micro "
                "trained at 12-14 images/s on a 2-core EPYC, against ~250 in fp32); bf16 or fp32 are the CPU's choices");
  }
  update_trainable(0);
}

Trainer::~Trainer() = default;

void Trainer::set_total_steps(std::int64_t steps) {
  schedule_ = LrSchedule::make(config_.schedule, steps, config_.warmup_steps, config_.warmup_fraction, config_.min_lr_ratio);
  apply_schedule();
}

double Trainer::lr(std::size_t group) const { return optimizer_->param_groups()[group].options().get_lr(); }

double Trainer::weight_decay(std::size_t group) const {
  const auto& options = optimizer_->param_groups()[group].options();
  if (config_.optimizer == Optimizer::AdamW) return static_cast<const torch::optim::AdamWOptions&>(options).weight_decay();
  return static_cast<const torch::optim::SGDOptions&>(options).weight_decay();
}

double Trainer::base_lr_now() const { return config_.lr * schedule_.factor(step_); }

std::int64_t Trainer::trainable_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : model_->parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

void Trainer::apply_schedule() {
  const double factor = schedule_.factor(step_);
  auto& groups = optimizer_->param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(config_.lr * groups_[i].lr_scale * factor);
}

void Trainer::update_trainable(std::int64_t epoch) {
  const int blocks = unfrozen_blocks(config_.strategy, config_.unfreeze, epoch, step_);
  if (blocks == unfrozen_) return;
  unfrozen_ = blocks;
  const int depth = model_->config.depth;
  for (auto& p : model_->named_parameters()) p.value().set_requires_grad(is_trainable(p.key(), depth, blocks));
  if (config_.strategy == Strategy::GradualUnfreeze || config_.strategy == Strategy::LinearProbe) {
    const std::string what = blocks < 0 || blocks >= depth ? std::string("everything")
                             : blocks == 0 ? std::string("the head only")
                                           : "the head and the last " + std::to_string(blocks) + " block(s)";
    log::info(strategy_name(config_.strategy), ": training ", what, " from epoch ", epoch, ", step ", step_, " (",
              trainable_parameters(), " parameters)");
  }
  sync_trainable();
}

// The gradient averaging covers exactly the parameters trainable now (frozen ones have
// no gradient): rebuilt when gradual unfreezing changes the set, on every rank alike.
void Trainer::sync_trainable() {
  if (!config_.data_parallel) return;
  sync_.reset();  // its hooks go before the new one's are registered
  std::vector<torch::Tensor> trainable;
  for (const torch::Tensor& p : model_->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  if (trainable.empty()) return;
  sync_ = std::make_unique<GradientSync>(*config_.data_parallel, trainable,
                                         static_cast<std::int64_t>(config_.gradient_bucket_mb * (1 << 20)));
}

// Soft targets (Mixup/CutMix) arrive smoothed by the stage that made them (timm's
// mixup_target), so they are used as they are: PyTorch's cross_entropy would smooth
// probability targets a second time (timm trains on them with SoftTargetCrossEntropy).
torch::Tensor Trainer::loss_of(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& soft) const {
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions().label_smoothing(soft.defined() ? 0.0 : config_.label_smoothing);
  return F::cross_entropy(logits.to(torch::kFloat), soft.defined() ? soft : labels, options);
}

StepStats Trainer::train_batch(const torch::Tensor& images, const torch::Tensor& labels, const torch::Tensor& soft_targets,
                               std::int64_t epoch, std::vector<Outcome>* outcomes) {
  update_trainable(epoch);
  StepStats stats;
  const torch::Tensor x = input_(images);
  const torch::Tensor y = labels.to(device_, true);
  const torch::Tensor soft = soft_targets.defined() ? soft_targets.to(device_, true) : soft_targets;
  torch::Tensor logits, loss;
  {
    AutocastScope autocast(config_.precision, device_);
    logits = model_->forward(x);
  }
  loss = loss_of(logits, y, soft);
  stats.at_step = step_;
  const bool defer = config_.defer_reads;
  if (!defer) {
    stats.loss = loss.item<double>();
    if (!std::isfinite(stats.loss) && config_.precision != Precision::Fp16) {
      throw DivergedError("the training loss is " + std::to_string(stats.loss) + " at step " + std::to_string(step_));
    }
  }
  torch::Tensor scaled = loss / config_.accumulation;
  if (scaler_) scaled = scaler_->scale(scaled);
  // Data-parallel: the optimizer's micro-batch averages the accumulated gradients across
  // ranks while the backward pass runs (the others accumulate locally, as DDP's no_sync).
  if (sync_ && micro_ + 1 == config_.accumulation) sync_->expect_backward(scaled);
  scaled.backward();
  torch::Tensor correct, sample_outcomes;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor target = soft.defined() ? soft.argmax(1) : y;
    correct = logits.argmax(1).eq(target).sum();
    stats.count = x.size(0);
    if (!defer) stats.correct = correct.item<std::int64_t>();
    if (outcomes) {
      const torch::Tensor detached = logits.detach().to(torch::kFloat);
      if (defer) {
        const auto [top, predicted] = detached.softmax(1).max(1);
        sample_outcomes = torch::stack({predicted.to(torch::kDouble), top.to(torch::kDouble),
                                        per_sample_losses(detached, y)}, 1);
      } else {
        append_outcomes(detached, per_sample_losses(detached, y), *outcomes);
      }
    }
  }
  torch::Tensor norm, found_inf;
  if (++micro_ == config_.accumulation) optimizer_step(stats, defer ? &norm : nullptr, defer ? &found_inf : nullptr);
  if (defer) queue_readout(stats, loss.detach(), correct, norm, found_inf, sample_outcomes);
  return stats;
}

void Trainer::queue_readout(StepStats& stats, const torch::Tensor& loss, const torch::Tensor& correct,
                            const torch::Tensor& grad_norm, const torch::Tensor& found_inf, const torch::Tensor& outcomes) {
  torch::NoGradGuard no_grad;
  auto readout = std::make_shared<StepReadout>();
  readout->carries_skip_flag = found_inf.defined();
  const auto as_double = [&](const torch::Tensor& t) {
    return t.defined() ? t.reshape({}).to(torch::kDouble) : torch::zeros({}, loss.options().dtype(torch::kDouble));
  };
  const torch::Tensor numbers = torch::stack({loss.to(torch::kDouble), correct.to(torch::kDouble), as_double(grad_norm),
                                              as_double(found_inf)});
  if (!device_.is_cuda()) {
    readout->numbers = numbers;
    readout->outcomes = outcomes.defined() ? outcomes.contiguous() : outcomes;
  } else {
    const auto pinned = torch::TensorOptions().dtype(torch::kDouble).pinned_memory(true);
    readout->numbers = torch::empty({4}, pinned).copy_(numbers, /*non_blocking=*/true);
    if (outcomes.defined()) readout->outcomes = torch::empty(outcomes.sizes(), pinned).copy_(outcomes, true);
    const c10::Stream stream = c10::impl::getDeviceGuardImpl(device_.type())->getStream(device_);
    readout->copied.emplace(device_.type());
    readout->copied->record(stream);
  }
  stats.pending = std::move(readout);
}

void Trainer::read_stats(StepStats& stats, std::vector<Outcome>* outcomes) const {
  if (!stats.pending) return;
  const std::shared_ptr<StepReadout> readout = std::move(stats.pending);
  if (readout->copied) readout->copied->synchronize();
  const double* v = readout->numbers.data_ptr<double>();
  stats.loss = v[0];
  stats.correct = static_cast<std::int64_t>(v[1]);
  if (stats.stepped) {
    stats.grad_norm = v[2];
    if (readout->carries_skip_flag) {
      stats.skipped = v[3] > 0;
      note_skipped_step(stats.skipped, stats.at_step);
    }
  }
  if (config_.precision != Precision::Fp16) {  // the checks the immediate step makes, in its words
    if (!std::isfinite(stats.loss))
      throw DivergedError("the training loss is " + std::to_string(stats.loss) + " at step " + std::to_string(stats.at_step));
    if (stats.stepped && !std::isfinite(stats.grad_norm))
      throw DivergedError("the gradient norm is " + std::to_string(stats.grad_norm) + " at step " + std::to_string(stats.at_step));
  }
  if (!outcomes || !readout->outcomes.defined()) return;
  const double* o = readout->outcomes.data_ptr<double>();
  for (int64_t i = 0; i < readout->outcomes.size(0); ++i)
    outcomes->push_back({static_cast<std::int64_t>(o[3 * i]), o[3 * i + 1], o[3 * i + 2]});
}

// AdamW through ATen's fused kernel, as torch.optim.AdamW(fused=True): one pass per
// parameter over weight, gradient and both moments (on CUDA a few multi-tensor
// launches) instead of ~8 ops per parameter in torch::optim::AdamW::step. The state
// stays in torch::optim::AdamW's per-parameter records (checkpoints do not change);
// the kernel also wants each parameter's step count as a float tensor on the device,
// kept beside them (adamw_steps_) and advanced with one multi-tensor add.
void Trainer::fused_adamw_step(const torch::Tensor& found_inf) {
  torch::NoGradGuard no_grad;
  auto& states = optimizer_->state();
  for (auto& group : optimizer_->param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;  // frozen
      void* key = p.unsafeGetTensorImpl();
      auto& slot = states[key];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      torch::Tensor& step = adamw_steps_[key];
      if (!step.defined()) step = torch::full({}, static_cast<double>(state.step()), p.options());
      state.step(state.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(state.exp_avg());
      exp_avg_sqs.push_back(state.exp_avg_sq());
      steps.push_back(step);
    }
    if (params.empty()) continue;
    at::_foreach_add_(steps, 1.0);  // the kernel reads the count of the step it takes
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, o.lr(), std::get<0>(o.betas()),
                      std::get<1>(o.betas()), o.weight_decay(), o.eps(), o.amsgrad(), /*maximize=*/false,
                      /*grad_scale=*/std::nullopt, found_inf.defined() ? std::optional<at::Tensor>(found_inf) : std::nullopt);
    // A flagged step did not happen: its counts go back (torch.optim's fused path does
    // the same). The host counts ran on; checkpoints read these (save_state).
    if (found_inf.defined()) at::_foreach_sub_(steps, std::vector<at::Tensor>(steps.size(), found_inf.reshape({})));
  }
}

// The global L2 norm of the gradients, and clipping to clip_grad_norm, with the
// multi-tensor (_foreach) kernels (on CUDA a few launches instead of two per
// parameter), without reading the norm on the host: as torch.nn.utils.clip_grad_norm_'s
// foreach path, the gradients are multiplied by min(1, max_norm / (norm + 1e-6)),
// computed on the device in double and applied as float32 (1 when under the limit).
torch::Tensor Trainer::clip_and_measure() {
  std::vector<torch::Tensor> grads;
  for (const auto& p : model_->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return {};
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> norms = at::_foreach_norm(grads, 2);
  torch::Tensor norm = norms.size() == 1 ? norms[0] : at::stack(norms).norm(2);
  if (config_.clip_grad_norm > 0) {
    const torch::Tensor coef = (config_.clip_grad_norm / (norm.to(torch::kDouble) + 1e-6)).clamp_max(1.0).to(torch::kFloat);
    at::_foreach_mul_(grads, coef);
  }
  return norm;
}

// fp16: the loss scaler unscales the gradients and flags non-finite ones on the device.
// The fused AdamW kernel takes the flag and leaves weights, moments and step counts as
// they were; any other optimizer needs the flag on the host first (GradScaler reads it
// for those too), as does the step-by-step mode. Either way the step counts towards the
// schedule, as PyTorch's scheduler steps on after a skipped GradScaler step.
void Trainer::optimizer_step(StepStats& stats, torch::Tensor* device_norm, torch::Tensor* device_found_inf) {
  micro_ = 0;
  torch::Tensor found_inf;
  if (scaler_) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : model_->parameters())
      if (p.grad().defined()) grads.push_back(p.grad());
    found_inf = scaler_->unscale(grads);
  }
  const torch::Tensor norm = clip_and_measure();
  if (device_norm) {
    *device_norm = norm;
  } else {
    stats.grad_norm = norm.defined() ? norm.item<double>() : 0.0;
    if (!std::isfinite(stats.grad_norm) && !scaler_) {
      throw DivergedError("the gradient norm is " + std::to_string(stats.grad_norm) + " at step " + std::to_string(step_));
    }
  }
  const bool fused = config_.optimizer == Optimizer::AdamW && config_.fused_optimizer;
  const bool flag_read_later = found_inf.defined() && fused && device_found_inf;  // with the step's other numbers
  if (flag_read_later) *device_found_inf = found_inf;
  else if (found_inf.defined()) stats.skipped = found_inf.item<float>() > 0;
  if (!stats.skipped) {
    if (fused) fused_adamw_step(found_inf);
    else optimizer_->step();
  }
  if (scaler_) scaler_->update(found_inf);
  if (found_inf.defined() && !flag_read_later) note_skipped_step(stats.skipped, step_);
  optimizer_->zero_grad();
  stats.stepped = true;
  ++step_;
  update_ema();
  apply_schedule();
}

void Trainer::note_skipped_step(bool skipped, std::int64_t step) const {
  if (!skipped) {
    skipped_in_a_row_ = 0;
    return;
  }
  log_skipped_step(step);
  if (++skipped_in_a_row_ >= kMaxSkippedInARow)
    throw DivergedError("fp16: " + std::to_string(skipped_in_a_row_) + " steps in a row up to step " + std::to_string(step) +
                        " had non-finite gradients, down to a loss scale of 65536 / 2^" +
                        std::to_string(skipped_in_a_row_) + ": the loss or the weights are not finite");
}

void Trainer::update_ema() {
  if (!ema_) return;
  torch::NoGradGuard no_grad;
  for (auto& [ema, live] : ema_pairs_) ema.lerp_(live, 1.0 - config_.ema_decay);
}

torch::Tensor Trainer::predict(const torch::Tensor& images, bool ema) {
  Vit& m = ema ? ema_ : model_;
  if (!m) throw std::logic_error("no EMA model (ema_decay is 0)");
  return predict_logits(m, input_, config_.precision, images);
}

void Trainer::evaluate_batch(const torch::Tensor& images, const torch::Tensor& labels, ClassificationMetrics& metrics,
                             bool ema, std::vector<Outcome>* outcomes) {
  Vit& m = ema ? ema_ : model_;
  if (!m) throw std::logic_error("no EMA model (ema_decay is 0)");
  flowrun::evaluate_batch(m, input_, config_.precision, images, labels, metrics, outcomes);
}

}  // namespace flowrun
