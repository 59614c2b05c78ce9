#include "stages/batch_augment/batch_ops.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace flowrun {
namespace {

void require_images(const at::Tensor& images, const char* what) {
  if (images.dim() != 4)
    throw std::invalid_argument(std::string(what) + ": images must be (N, C, H, W), got " + std::to_string(images.dim()) +
                                " dimensions");
}

at::Tensor resample(const at::Tensor& x, std::int64_t height, std::int64_t width, Interpolation interpolation) {
  const std::vector<std::int64_t> size = {height, width};
  if (interpolation == Interpolation::Bicubic) return at::_upsample_bicubic2d_aa(x, size, /*align_corners=*/false);
  return at::_upsample_bilinear2d_aa(x, size, /*align_corners=*/false);
}

at::Tensor to_u8(at::Tensor x) { return x.round_().clamp_(0, 255); }

// (N, C, H, W) -> (N, C, height, width) in float32; uint8 input in PIL's two rounded passes.
at::Tensor resample_batch(const at::Tensor& images, std::int64_t height, std::int64_t width, Interpolation interpolation) {
  if (images.scalar_type() != at::kByte) return resample(images.to(at::kFloat), height, width, interpolation);
  at::Tensor x = images.to(at::kFloat);
  // Pillow's order, as the resize stage follows it (resample.cpp): horizontal pass
  // first unless the height shrinks while the width grows; it rounds to uint8 between
  // the passes, and so does this, which keeps bicubic's overshoot clipped as PIL clips
  // it (up to 20 grey levels apart otherwise).
  const auto horizontal = [&] {
    if (width != x.size(3)) x = to_u8(resample(x, x.size(2), width, interpolation));
  };
  const auto vertical = [&] {
    if (height != x.size(2)) x = to_u8(resample(x, height, x.size(3), interpolation));
  };
  if (height < x.size(2) && width > x.size(3)) {
    vertical();
    horizontal();
  } else {
    horizontal();
    vertical();
  }
  return x;
}

at::Tensor like_input(const at::Tensor& resampled, const at::Tensor& input) {
  return input.scalar_type() == at::kByte ? resampled.to(at::kByte) : resampled;
}

// One uint8 crop on the CPU: ATen's uint8 antialiased kernel, which follows Pillow's
// fixed-point passes (channels-last is its fast path): twice as fast as the float
// passes and as close to PIL. Elsewhere (CUDA has no uint8 kernel) the float passes.
at::Tensor resample_crop(const at::Tensor& crop, std::int64_t height, std::int64_t width, Interpolation interpolation) {
  if (crop.is_cpu() && crop.scalar_type() == at::kByte)
    return resample(crop.contiguous(at::MemoryFormat::ChannelsLast), height, width, interpolation);
  return like_input(resample_batch(crop, height, width, interpolation), crop);
}

}  // namespace

at::Tensor flip_samples(const at::Tensor& images, const std::vector<bool>& flip) {
  require_images(images, "batch_flip");
  if (std::none_of(flip.begin(), flip.end(), [](bool f) { return f; })) return images;
  std::vector<std::uint8_t> mask(flip.begin(), flip.end());
  const at::Tensor selected = at::tensor(mask, at::TensorOptions().dtype(at::kByte)).to(at::kBool)
                                  .to(images.device(), /*non_blocking=*/true).view({-1, 1, 1, 1});
  return at::where(selected, images.flip(3), images);
}

// On the CPU: the normalize stage's own table, one lookup per value, planes in parallel
// (a third of the time of four elementwise passes, and the same values by construction).
at::Tensor normalize_on_cpu(const at::Tensor& images, const std::vector<double>& mean, const std::vector<double>& std) {
  if (images.size(1) > 4) throw std::invalid_argument("batch_normalize handles at most 4 channels");
  const NormalizeTable table(mean, std);
  const at::Tensor in = images.contiguous();
  at::Tensor out = at::empty(in.sizes(), in.options().dtype(at::kFloat));
  const std::int64_t channels = in.size(1), plane = in.size(2) * in.size(3);
  const std::uint8_t* src = in.data_ptr<std::uint8_t>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, in.size(0) * channels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t p = begin; p < end; ++p) {
      const float* lut = table.values[static_cast<std::size_t>(p % channels)].data();
      const std::uint8_t* s = src + p * plane;
      float* __restrict d = dst + p * plane;
      for (std::int64_t k = 0; k < plane; ++k) d[k] = lut[s[k]];
    }
  });
  return out;
}

at::Tensor normalize_batch(const at::Tensor& images, const std::vector<double>& mean, const std::vector<double>& std) {
  require_images(images, "batch_normalize");
  if (images.scalar_type() != at::kByte)
    throw std::invalid_argument(std::string("batch_normalize: the batch is ") + std::string(images.dtype().name()) +
                                ", expected uint8 (is it normalized already, by the batch stage's mean/std?)");
  if (images.is_cpu()) return normalize_on_cpu(images, mean, std);
  const auto channels = images.size(1);
  std::vector<float> m, s;
  for (std::int64_t c = 0; c < channels; ++c) {
    m.push_back(static_cast<float>(mean[static_cast<std::size_t>(c) % mean.size()]));
    s.push_back(static_cast<float>(std[static_cast<std::size_t>(c) % std.size()]));
  }
  const auto on = [&](const std::vector<float>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).to(images.device(), true).view({1, -1, 1, 1});
  };
  // Divisions by tensors, not by a scalar: CUDA turns x / scalar into x * (1 / scalar),
  // which is not the table's float32 division.
  const at::Tensor by255 = at::full({1}, 255.0f, at::TensorOptions().dtype(at::kFloat).device(images.device()));
  return images.to(at::kFloat).div_(by255).sub_(on(m)).div_(on(s));
}

at::Tensor resize_batch(const at::Tensor& images, std::int64_t height, std::int64_t width, Interpolation interpolation) {
  require_images(images, "batch_resize");
  if (images.size(2) == height && images.size(3) == width) return images;
  return like_input(resample_batch(images, height, width, interpolation), images);
}

at::Tensor resized_crops(const at::Tensor& images, const std::vector<CropWindow>& windows, std::int64_t height,
                         std::int64_t width, Interpolation interpolation) {
  require_images(images, "batch_random_resized_crop");
  if (static_cast<std::int64_t>(windows.size()) != images.size(0))
    throw std::invalid_argument("batch_random_resized_crop: " + std::to_string(windows.size()) + " windows for " +
                                std::to_string(images.size(0)) + " samples");
  at::Tensor out = at::empty({images.size(0), images.size(1), height, width}, images.options());
  // One resample per sample: the windows differ in size, and each is filtered as its
  // own image (the CPU twin's crop, then resize), edges clamped to the window.
  const auto crop_one = [&](std::int64_t n) {
    const CropWindow& w = windows[static_cast<std::size_t>(n)];
    const at::Tensor crop = images.slice(0, n, n + 1).slice(2, w.top, w.top + w.height).slice(3, w.left, w.left + w.width);
    out.slice(0, n, n + 1).copy_(resample_crop(crop, height, width, interpolation));
  };
  if (images.is_cpu()) {
    // Samples in parallel, each resampled on one thread (ATen runs nested regions inline).
    at::parallel_for(0, images.size(0), 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t n = begin; n < end; ++n) crop_one(n);
    });
  } else {
    for (std::int64_t n = 0; n < images.size(0); ++n) crop_one(n);
  }
  return out;
}

at::Tensor erase_windows(const at::Tensor& images, const std::vector<Erasure>& erasures) {
  require_images(images, "batch_random_erasing");
  if (erasures.empty()) return images;
  at::Tensor out = images.clone();
  const bool u8 = images.scalar_type() == at::kByte;
  const auto channels = images.size(1);
  for (const Erasure& e : erasures) {
    const CropWindow& w = e.window;
    at::Tensor region = out.select(0, e.sample).slice(1, w.top, w.top + w.height).slice(2, w.left, w.left + w.width);
    const bool per_channel = static_cast<std::int64_t>(e.values.size()) != channels * w.height * w.width;
    at::Tensor values;
    if (u8) {
      std::vector<std::uint8_t> v;
      for (double x : e.values) v.push_back(static_cast<std::uint8_t>(std::clamp(std::nearbyint(x), 0.0, 255.0)));
      values = at::tensor(v, at::TensorOptions().dtype(at::kByte));
    } else {
      values = at::tensor(std::vector<float>(e.values.begin(), e.values.end()), at::TensorOptions().dtype(at::kFloat));
    }
    values = values.to(images.device(), /*non_blocking=*/true);
    if (per_channel) {
      std::vector<std::int64_t> pick;
      for (std::int64_t c = 0; c < channels; ++c) pick.push_back(c % static_cast<std::int64_t>(e.values.size()));
      values = values.index_select(0, at::tensor(pick).to(images.device(), true)).view({channels, 1, 1});
      region.copy_(values.expand_as(region));
    } else {
      region.copy_(values.view({channels, w.height, w.width}));
    }
  }
  return out;
}

}  // namespace flowrun
