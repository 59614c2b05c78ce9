// Trainer::save_state / load_state: the trainer's part of a checkpoint. Together
// with the data positions the train stage adds, loading a state and feeding the
// same batches continues the run bit for bit (on CPU, same thread count): weights,
// EMA, optimizer moments and step counts, accumulated gradients, loss scale, the
// schedule position and the generator states that dropout and drop path draw from.
#include <ATen/Context.h>

#include <cmath>

#include "stages/messages/train_state.hpp"
#include "stages/train/loss_scaler.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {
namespace {

torch::Tensor cpu_copy(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
}

const torch::Tensor& need(const TrainState& state, const std::string& name) {
  const at::Tensor* t = state.find(name);
  if (!t) throw std::runtime_error("the checkpoint lacks '" + name + "' (saved from another model or another version?)");
  return *t;
}

void restore(torch::Tensor& into, const torch::Tensor& from, const std::string& name) {
  if (into.sizes() != from.sizes()) {
    throw std::runtime_error("checkpoint tensor '" + name + "' has shape " + c10::str(from.sizes()) +
                             " but the model's is " + c10::str(into.sizes()) + " (another model configuration?)");
  }
  torch::NoGradGuard no_grad;
  into.copy_(from);
}

at::Generator default_generator(const torch::Device& device) {
  return device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
}

}  // namespace

void Trainer::save_state(TrainState& out) const {
  for (const auto& p : model_->named_parameters()) out.tensors.emplace_back("model/" + p.key(), cpu_copy(p.value()));
  for (const auto& b : model_->named_buffers()) out.tensors.emplace_back("model/" + b.key(), cpu_copy(b.value()));
  if (ema_) {
    for (const auto& p : ema_->named_parameters()) out.tensors.emplace_back("ema/" + p.key(), cpu_copy(p.value()));
  }
  const auto& states = optimizer_->state();
  for (const auto& p : model_->named_parameters()) {
    const std::string prefix = "optimizer/" + p.key() + "/";
    const auto it = states.find(p.value().unsafeGetTensorImpl());
    if (it != states.end()) {
      if (config_.optimizer == Optimizer::AdamW) {
        const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        // Fused AdamW keeps the counts on the device, where a skipped fp16 step took its back.
        const auto counted = adamw_steps_.find(it->first);
        const std::int64_t step = counted != adamw_steps_.end() && counted->second.defined()
                                      ? std::llround(counted->second.item<double>())
                                      : s.step();
        out.tensors.emplace_back(prefix + "step", torch::tensor(step, torch::kLong));
        out.tensors.emplace_back(prefix + "exp_avg", cpu_copy(s.exp_avg()));
        out.tensors.emplace_back(prefix + "exp_avg_sq", cpu_copy(s.exp_avg_sq()));
      } else {
        const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
        if (s.momentum_buffer().defined()) out.tensors.emplace_back(prefix + "momentum_buffer", cpu_copy(s.momentum_buffer()));
      }
    }
    if (micro_ > 0 && p.value().grad().defined()) out.tensors.emplace_back("grad/" + p.key(), cpu_copy(p.value().grad()));
  }
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    out.tensors.emplace_back("rng/torch_cpu", cpu.get_state());
  }
  if (device_.is_cuda()) {
    at::Generator gen = default_generator(device_);
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.tensors.emplace_back("rng/torch_cuda", gen.get_state());
  }
  out.counters["trainer/step"] = step_;
  out.counters["trainer/micro"] = micro_;
  out.counters["trainer/good_steps"] = scaler_ ? scaler_->finite_steps() : 0;
  out.counters["trainer/total_steps"] = schedule_.total_steps;
  out.values["trainer/loss_scale"] = scaler_ ? scaler_->scale_value() : LossScaler::kInitialScale;
}

void Trainer::load_state(const TrainState& state) {
  for (auto& p : model_->named_parameters()) restore(p.value(), need(state, "model/" + p.key()), "model/" + p.key());
  for (auto& b : model_->named_buffers()) restore(b.value(), need(state, "model/" + b.key()), "model/" + b.key());
  if (ema_) {
    if (!state.find("ema/" + model_->named_parameters().begin()->key()))
      throw std::runtime_error("the checkpoint has no EMA weights but ema_decay is set: resume with the settings it was saved with");
    for (auto& p : ema_->named_parameters()) restore(p.value(), need(state, "ema/" + p.key()), "ema/" + p.key());
  }
  auto& states = optimizer_->state();
  states.clear();
  adamw_steps_.clear();  // rebuilt from the restored step counts
  for (auto& p : model_->named_parameters()) {
    const std::string prefix = "optimizer/" + p.key() + "/";
    void* key = p.value().unsafeGetTensorImpl();
    if (config_.optimizer == Optimizer::AdamW) {
      if (const at::Tensor* step = state.find(prefix + "step")) {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(step->item<std::int64_t>());
        s->exp_avg(need(state, prefix + "exp_avg").to(device_, /*non_blocking=*/false, /*copy=*/true));
        s->exp_avg_sq(need(state, prefix + "exp_avg_sq").to(device_, false, true));
        states[key] = std::move(s);
      }
    } else if (const at::Tensor* buffer = state.find(prefix + "momentum_buffer")) {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(buffer->to(device_, false, true));
      states[key] = std::move(s);
    }
    if (const at::Tensor* grad = state.find("grad/" + p.key())) p.value().mutable_grad() = grad->to(device_, false, true);
    else p.value().mutable_grad() = torch::Tensor();
  }
  step_ = state.counter("trainer/step");
  micro_ = static_cast<int>(state.counter("trainer/micro"));
  if (scaler_)
    scaler_->restore(state.value("trainer/loss_scale", LossScaler::kInitialScale), state.counter("trainer/good_steps"));
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(need(state, "rng/torch_cpu"));
  }
  if (device_.is_cuda()) {
    if (const at::Tensor* rng = state.find("rng/torch_cuda")) {
      at::Generator gen = default_generator(device_);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(*rng);
    }
  }
  if (schedule_.total_steps > 0) apply_schedule();
}

}  // namespace flowrun
