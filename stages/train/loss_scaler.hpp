// Dynamic loss scaling for fp16 training, with torch.amp.GradScaler's rule (scale
// 65536, halved when a step's gradients are not finite and that step skipped, doubled
// after 2,000 finite steps in a row), kept on the device: the scale, the count of
// finite steps and each step's found-inf flag are tensors, so scaling, unscaling and
// updating never wait for the host. The fused AdamW kernel takes the flag and skips
// the update itself; only an optimizer without that input has to read it (as
// GradScaler reads it for such optimizers).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

namespace flowrun {

class LossScaler {
 public:
  static constexpr double kInitialScale = 65536.0;
  static constexpr double kGrowthFactor = 2.0;
  static constexpr double kBackoffFactor = 0.5;
  static constexpr std::int64_t kGrowthInterval = 2000;

  explicit LossScaler(c10::Device device);

  at::Tensor scale(const at::Tensor& loss) const;  // loss times the scale
  // Divides the gradients by the scale in place; returns the found-inf flag (one float
  // on the device): 1 when any of them holds an inf or a NaN, else 0.
  at::Tensor unscale(std::vector<at::Tensor>& grads) const;
  // After the step that `found_inf` belongs to: backs off or grows the scale.
  void update(const at::Tensor& found_inf);

  // Host reads, for checkpoints and tests (they wait for the device).
  double scale_value() const;
  std::int64_t finite_steps() const;  // since the scale last changed
  void restore(double scale, std::int64_t finite_steps);

 private:
  at::Tensor scale_;   // (1) float32
  at::Tensor growth_;  // (1) int32: finite steps in a row
};

}  // namespace flowrun
