#include "stages/batch_augment/mix_ops.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace flowrun {
namespace {

std::int64_t clip(std::int64_t v, std::int64_t hi) { return std::clamp<std::int64_t>(v, 0, hi); }

// Host-built per-sample values, moved to the images' device without a host sync
// (a non-blocking copy from pageable memory is staged at once).
at::Tensor on_device_of(const std::vector<float>& values, const at::Tensor& like) {
  return at::tensor(values, at::TensorOptions().dtype(at::kFloat)).to(like.device(), /*non_blocking=*/true);
}
at::Tensor on_device_of(const std::vector<std::int64_t>& values, const at::Tensor& like) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong)).to(like.device(), /*non_blocking=*/true);
}

at::Tensor smoothed_one_hot(const at::Tensor& labels, std::int64_t num_classes, double smoothing, const at::Device& device) {
  const double off = smoothing / static_cast<double>(num_classes);
  const double on = 1.0 - smoothing + off;
  const at::Tensor y = labels.to(device, at::kLong, /*non_blocking=*/true).view({-1, 1});
  return at::full({y.size(0), num_classes}, off, at::TensorOptions().dtype(at::kFloat).device(device)).scatter_(1, y, on);
}

// uint8 batches mix in float32 and round half to even, as FastCollateMixup's np.rint.
at::Tensor blend(const at::Tensor& x, const at::Tensor& partner, const at::Tensor& weight) {
  if (x.scalar_type() != at::kByte) return x * weight + partner * (1 - weight);
  const at::Tensor mixed = x.to(at::kFloat) * weight + partner.to(at::kFloat) * (1 - weight);
  return mixed.round_().clamp_(0, 255).to(at::kByte);
}

MixedBatch mix_whole_batch(const at::Tensor& images, const at::Tensor& labels, const SampleMix& m, std::int64_t num_classes,
                           double smoothing) {
  MixedBatch out;
  const at::Tensor y1 = smoothed_one_hot(labels, num_classes, smoothing, images.device());
  if (m.lam == 1.0) {  // timm's _mix_batch returns before mixing; lam 1 leaves y1 as it is
    out.images = images;
    out.targets = y1;
    return out;
  }
  if (m.cutmix) {
    out.images = images.clone();
    const auto region = [&](const at::Tensor& t) {
      return t.slice(2, m.box.top, m.box.bottom).slice(3, m.box.left, m.box.right);
    };
    region(out.images).copy_(region(images).flip(0));
  } else if (images.scalar_type() == at::kByte) {
    const at::Tensor x = images.to(at::kFloat);
    out.images = (x * m.lam + x.flip(0) * (1.0 - m.lam)).round_().clamp_(0, 255).to(at::kByte);
  } else {
    out.images = images * m.lam + images.flip(0) * (1.0 - m.lam);  // timm: x * lam + x.flip(0) * (1 - lam)
  }
  out.targets = y1 * m.lam + y1.flip(0) * (1.0 - m.lam);
  return out;
}

MixedBatch mix_per_sample(const at::Tensor& images, const at::Tensor& labels, const std::vector<SampleMix>& mixes,
                          std::int64_t num_classes, double smoothing) {
  const auto n = static_cast<std::size_t>(images.size(0));
  std::vector<float> lam(n), weight(n, 1.0f);
  std::vector<std::int64_t> top(n, 0), bottom(n, 0), left(n, 0), right(n, 0);
  bool any_blend = false, any_cut = false;
  for (std::size_t i = 0; i < n; ++i) {
    const SampleMix& m = mixes[i];
    lam[i] = static_cast<float>(m.lam);  // timm keeps per-sample lam in a float32 array
    if (m.lam == 1.0) continue;
    if (m.cutmix) {
      top[i] = m.box.top, bottom[i] = m.box.bottom, left[i] = m.box.left, right[i] = m.box.right;
      any_cut = true;
    } else {
      weight[i] = lam[i];
      any_blend = true;
    }
  }
  MixedBatch out;
  const at::Tensor partner = images.flip(0);
  out.images = images;
  if (any_blend) out.images = blend(images, partner, on_device_of(weight, images).view({-1, 1, 1, 1}));
  if (any_cut) {
    // One mask for every sample's box: (N, 1, H, W), true inside the box.
    const auto long_on = at::TensorOptions().dtype(at::kLong).device(images.device());
    const at::Tensor rows = at::arange(images.size(2), long_on).view({1, 1, -1, 1});
    const at::Tensor cols = at::arange(images.size(3), long_on).view({1, 1, 1, -1});
    const auto per_sample = [&](const std::vector<std::int64_t>& v) { return on_device_of(v, images).view({-1, 1, 1, 1}); };
    const at::Tensor in_rows = rows.ge(per_sample(top)).logical_and_(rows.lt(per_sample(bottom)));  // (N, 1, H, 1)
    const at::Tensor in_cols = cols.ge(per_sample(left)).logical_and_(cols.lt(per_sample(right)));  // (N, 1, 1, W)
    const at::Tensor inside = in_rows.logical_and(in_cols);
    out.images = at::where(inside, partner, out.images);
  }
  const at::Tensor y1 = smoothed_one_hot(labels, num_classes, smoothing, images.device());
  const at::Tensor l = on_device_of(lam, images).view({-1, 1});
  out.targets = y1 * l + y1.flip(0) * (1 - l);
  return out;
}

}  // namespace

CutBox centred_box(std::int64_t height, std::int64_t width, double lam, std::int64_t cy, std::int64_t cx, bool float32_lam) {
  std::int64_t cut_h = 0, cut_w = 0;
  if (float32_lam) {
    const float ratio = std::sqrt(1.0f - static_cast<float>(lam));
    cut_h = static_cast<std::int64_t>(static_cast<float>(height) * ratio);
    cut_w = static_cast<std::int64_t>(static_cast<float>(width) * ratio);
  } else {
    const double ratio = std::sqrt(1.0 - lam);
    cut_h = static_cast<std::int64_t>(static_cast<double>(height) * ratio);
    cut_w = static_cast<std::int64_t>(static_cast<double>(width) * ratio);
  }
  CutBox box;
  box.top = clip(cy - cut_h / 2, height);
  box.bottom = clip(cy + (cut_h + 1) / 2, height);
  box.left = clip(cx - cut_w / 2, width);
  box.right = clip(cx + (cut_w + 1) / 2, width);
  return box;
}

IntRange minmax_cut_range(std::int64_t size, double ratio_lo, double ratio_hi) {
  return {static_cast<std::int64_t>(static_cast<double>(size) * ratio_lo),
          static_cast<std::int64_t>(static_cast<double>(size) * ratio_hi)};
}

CutBox corner_box(std::int64_t cut_h, std::int64_t cut_w, std::int64_t top, std::int64_t left) {
  return {top, top + cut_h, left, left + cut_w};
}

double box_lam(const CutBox& box, std::int64_t height, std::int64_t width) {
  return 1.0 - static_cast<double>(box.area()) / static_cast<double>(height * width);
}

MixedBatch apply_mix(const at::Tensor& images, const at::Tensor& labels, const std::vector<SampleMix>& mixes,
                     std::int64_t num_classes, double label_smoothing) {
  if (images.dim() != 4) throw std::invalid_argument("mix: images must be (N, C, H, W), got " + std::to_string(images.dim()) + " dimensions");
  if (mixes.size() == 1) return mix_whole_batch(images, labels, mixes[0], num_classes, label_smoothing);
  if (static_cast<std::int64_t>(mixes.size()) != images.size(0))
    throw std::invalid_argument("mix: " + std::to_string(mixes.size()) + " draws for a batch of " + std::to_string(images.size(0)));
  return mix_per_sample(images, labels, mixes, num_classes, label_smoothing);
}

}  // namespace flowrun
