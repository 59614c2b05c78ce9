#include "stages/train/loss_scaler.hpp"

#include <ATen/ATen.h>

namespace flowrun {

LossScaler::LossScaler(c10::Device device)
    : scale_(at::full({1}, kInitialScale, at::TensorOptions().dtype(at::kFloat).device(device))),
      growth_(at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device))) {}

// In float32 whatever the loss's dtype: 65536 is past fp16's largest value.
at::Tensor LossScaler::scale(const at::Tensor& loss) const { return loss.to(at::kFloat) * scale_; }

at::Tensor LossScaler::unscale(std::vector<at::Tensor>& grads) const {
  at::Tensor found_inf = at::zeros({1}, scale_.options());
  if (!grads.empty()) at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, scale_.reciprocal());
  return found_inf;
}

void LossScaler::update(const at::Tensor& found_inf) {
  at::_amp_update_scale_(scale_, growth_, found_inf, kGrowthFactor, kBackoffFactor, kGrowthInterval);
}

double LossScaler::scale_value() const { return scale_.item<double>(); }

std::int64_t LossScaler::finite_steps() const { return growth_.item<std::int64_t>(); }

void LossScaler::restore(double scale, std::int64_t finite_steps) {
  scale_.fill_(scale);
  growth_.fill_(finite_steps);
}

}  // namespace flowrun
