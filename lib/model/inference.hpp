// Running a ViT for predictions, shared by the train step and the evaluate stage so
// that both see a batch the same way: uint8 batches normalized on the device, the
// run's autocast precision, eval mode, and the same per-sample scoring. An
// evaluation on the evaluate node therefore gives the numbers, bit for bit, that it
// gave inside the train stage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/metrics/classification_metrics.hpp"
#include "lib/model/precision.hpp"
#include "lib/model/vit.hpp"

namespace flowrun {

// Mixed precision for a forward pass: autocast to bf16 or fp16 (CPU or CUDA).
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType type_;
  bool active_ = false;
};

// Batches as the model takes them: moved to the device and, when uint8, normalized
// there ((x - 255 mean) / (255 std)).
class InputTransform {
 public:
  InputTransform() = default;
  // mean/std per channel; empty = batches arrive normalized.
  InputTransform(const torch::Device& device, const std::vector<double>& mean, const std::vector<double>& std);
  torch::Tensor operator()(const torch::Tensor& images) const;
  const torch::Device& device() const { return device_; }

 private:
  torch::Device device_ = torch::kCPU;
  torch::Tensor mean_, inv_std_;  // (1, C, 1, 1) on the device, in uint8 units
};

// A sample's prediction: the top class, its softmax probability, the true label's loss.
struct SampleOutcome {
  std::int64_t predicted = 0;
  double confidence = 0;
  double loss = 0;
};

// Float logits of `model` in eval mode under `precision` (the module's mode is restored).
torch::Tensor predict_logits(Vit& model, const InputTransform& input, Precision precision, const torch::Tensor& images);

// Each sample's cross-entropy (no label smoothing) as double, on the logits' device.
torch::Tensor per_sample_losses(const torch::Tensor& logits, const torch::Tensor& labels);
// Appends each sample's outcome; `losses` from per_sample_losses.
void append_outcomes(const torch::Tensor& logits, const torch::Tensor& losses, std::vector<SampleOutcome>& out);

// Predicts a labelled batch and adds it to `metrics` (each sample's loss and ranked
// top-k classes); with `outcomes`, also each sample's outcome.
void evaluate_batch(Vit& model, const InputTransform& input, Precision precision, const torch::Tensor& images,
                    const torch::Tensor& labels, ClassificationMetrics& metrics,
                    std::vector<SampleOutcome>* outcomes = nullptr);

}  // namespace flowrun
