// Per-sample augmentations applied to a whole batch with tensor ops on the batch's
// device (CPU or CUDA): the arithmetic behind the batch_* stages, which draw each
// sample's parameters as their per-sample CPU twins do (stages/augment/) and pass
// them in. Pure functions; tests/augment/test_batch_augment.cpp holds each to its twin.
//
// Shapes: images (N, C, H, W), uint8 or float32, on any device.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "lib/image/image_ops.hpp"
#include "lib/image/resample.hpp"

namespace flowrun {

// Mirrors the samples whose flag is set; returns `images` itself when none is.
at::Tensor flip_samples(const at::Tensor& images, const std::vector<bool>& flip);

// uint8 -> float32 ((x / 255) - mean) / std per channel, with the same float32
// operations as the normalize stage's table (identical values); mean and std repeat
// when shorter than the channel count.
at::Tensor normalize_batch(const at::Tensor& images, const std::vector<double>& mean, const std::vector<double>& std);

// Resizes every sample to height x width. uint8 images resample as PIL does (and so
// the resize stage): horizontal pass, round to uint8, vertical pass, round, with
// the antialiased filter (widened by the scale when shrinking); each pass in float32
// instead of Pillow's 22-bit fixed point, which moves a value by at most one grey
// level. Float images resample in one float pass, unrounded.
at::Tensor resize_batch(const at::Tensor& images, std::int64_t height, std::int64_t width, Interpolation interpolation);

// Sample i's window (inside the image) cut out and resized to height x width, as resize_batch.
at::Tensor resized_crops(const at::Tensor& images, const std::vector<CropWindow>& windows, std::int64_t height,
                         std::int64_t width, Interpolation interpolation);

// A window of sample `sample` overwritten with `values`: C x height x width numbers
// in (channel, row, column) order, or one per channel. uint8 images get them
// rounded (std::nearbyint) and clamped to [0, 255], float ones cast, as random_erasing does.
struct Erasure {
  std::int64_t sample = 0;
  CropWindow window{0, 0, 0, 0};
  std::vector<double> values;
};
// Returns `images` itself when `erasures` is empty, a modified copy otherwise.
at::Tensor erase_windows(const at::Tensor& images, const std::vector<Erasure>& erasures);

}  // namespace flowrun
