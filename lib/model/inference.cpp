#include "lib/model/inference.hpp"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <stdexcept>

namespace flowrun {

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) : type_(device.type()) {
  if (precision == Precision::Fp32) return;
  active_ = true;
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, precision == Precision::Bf16 ? at::kBFloat16 : at::kHalf);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  at::autocast::set_autocast_enabled(type_, false);
  at::autocast::clear_cache();
}

InputTransform::InputTransform(const torch::Device& device, const std::vector<double>& mean, const std::vector<double>& std)
    : device_(device) {
  if (mean.empty()) return;
  if (mean.size() != std.size()) throw std::invalid_argument("mean and std need the same length");
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  const auto n = static_cast<int64_t>(mean.size());
  std::vector<float> inv;
  for (double s : std) inv.push_back(static_cast<float>(1.0 / (255.0 * s)));
  inv_std_ = torch::tensor(inv, opts).reshape({1, n, 1, 1}).to(device_);
  mean_ = (torch::tensor(std::vector<float>(mean.begin(), mean.end()), opts).reshape({1, n, 1, 1}) * 255.0).to(device_);
}

torch::Tensor InputTransform::operator()(const torch::Tensor& images) const {
  torch::Tensor x = images.to(device_, /*non_blocking=*/true);
  if (x.scalar_type() != torch::kByte) return x;
  if (!mean_.defined()) throw std::invalid_argument("batches are uint8: set mean and std on the batch stage or on the train stage");
  return (x.to(torch::kFloat) - mean_) * inv_std_;
}

torch::Tensor predict_logits(Vit& model, const InputTransform& input, Precision precision, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  torch::Tensor logits;
  {
    AutocastScope autocast(precision, input.device());
    logits = model->forward(input(images)).to(torch::kFloat);
  }
  if (was_training) model->train();
  return logits;
}

torch::Tensor per_sample_losses(const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kNone)).to(torch::kDouble);
}

void append_outcomes(const torch::Tensor& logits, const torch::Tensor& losses, std::vector<SampleOutcome>& out) {
  const auto [top, predicted] = logits.softmax(1).max(1);
  const torch::Tensor p = top.to(torch::kCPU, torch::kDouble).contiguous();
  const torch::Tensor c = predicted.to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor l = losses.to(torch::kCPU).contiguous();
  for (int64_t i = 0; i < logits.size(0); ++i)
    out.push_back({c.data_ptr<std::int64_t>()[i], p.data_ptr<double>()[i], l.data_ptr<double>()[i]});
}

void evaluate_batch(Vit& model, const InputTransform& input, Precision precision, const torch::Tensor& images,
                    const torch::Tensor& labels, ClassificationMetrics& metrics, std::vector<SampleOutcome>* outcomes) {
  const torch::Tensor logits = predict_logits(model, input, precision, images);
  const torch::Tensor losses = per_sample_losses(logits, labels.to(input.device(), true)).to(torch::kCPU).contiguous();
  const int k = static_cast<int>(std::min<int64_t>(metrics.top_k(), logits.size(1)));
  const torch::Tensor ranked = std::get<1>(logits.topk(k, 1)).to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor y_cpu = labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto* r = ranked.data_ptr<std::int64_t>();
  const auto* l = y_cpu.data_ptr<std::int64_t>();
  const auto* loss = losses.data_ptr<double>();
  for (int64_t i = 0; i < logits.size(0); ++i) metrics.add(l[i], r + i * k, k, loss[i]);
  if (outcomes) append_outcomes(logits, losses, *outcomes);
}

}  // namespace flowrun
