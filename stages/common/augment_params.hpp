// The parameters of the augmentations that have a per-sample CPU stage and a batch
// twin (stages/batch_augment/): one options struct each (flowrun/options.hpp), so
// that both plugins take the same names, defaults and ranges and swapping one for
// the other is a one-line change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flowrun/options.hpp"
#include "lib/image/resample.hpp"

namespace flowrun {

namespace augment_params {
inline const Choices<Interpolation> kInterpolations = {{"bilinear", Interpolation::Bilinear},
                                                      {"bicubic", Interpolation::Bicubic}};
constexpr const char* kCropSizeDoc = "output size: [s] for s x s, or [height, width]";
}  // namespace augment_params

struct FlipOptions {
  double p = 0.5;
  template <typename D>
  static void declare(D& d) {
    d(&FlipOptions::p, "p", "probability of flipping each image").range(0, 1);
  }
};

struct NormalizeOptions {
  std::vector<double> mean = {0.485, 0.456, 0.406};  // ImageNet
  std::vector<double> std = {0.229, 0.224, 0.225};
  template <typename D>
  static void declare(D& d) {
    d(&NormalizeOptions::mean, "mean", "per-channel mean, on the [0, 1] scale (default: ImageNet)")
        .min_length(1)
        .max_length(4)
        .range(-10, 10);
    d(&NormalizeOptions::std, "std", "per-channel standard deviation, > 0 (default: ImageNet)")
        .min_length(1)
        .max_length(4)
        .range(1e-6, 100);
  }
};

struct ResizeOptions {
  std::vector<std::int64_t> size;
  Interpolation interpolation = Interpolation::Bilinear;
  template <typename D>
  static void declare(D& d) {
    d.required(&ResizeOptions::size, "size", "[s]: shorter side to s, keeping the aspect ratio; [height, width]: exactly")
        .min_length(1)
        .max_length(2)
        .range(1, 65535);
    d(&ResizeOptions::interpolation, "interpolation", "resampling filter", augment_params::kInterpolations);
  }
};

struct RandomResizedCropOptions {
  std::vector<std::int64_t> size;
  std::vector<double> scale = {0.08, 1.0};
  std::vector<double> ratio = {3.0 / 4.0, 4.0 / 3.0};
  Interpolation interpolation = Interpolation::Bilinear;
  template <typename D>
  static void declare(D& d) {
    using O = RandomResizedCropOptions;
    d.required(&O::size, "size", augment_params::kCropSizeDoc).min_length(1).max_length(2).range(1, 65535);
    d(&O::scale, "scale", "[low, high] share of the image's area to keep").length(2).range(0, 1).ascending();
    d(&O::ratio, "ratio", "[low, high] aspect ratio (width / height) of the window").length(2).range(1e-3, 1e3).ascending();
    d(&O::interpolation, "interpolation", "resampling filter", augment_params::kInterpolations);
  }
};

struct RandomErasingOptions {
  double p = 0.5;
  std::vector<double> scale = {0.02, 0.33};
  std::vector<double> ratio = {0.3, 3.3};
  std::vector<double> value = {0.0};
  bool random_value = false;
  template <typename D>
  static void declare(D& d) {
    using O = RandomErasingOptions;
    d(&O::p, "p", "probability of erasing each sample").range(0, 1);
    d(&O::scale, "scale", "[low, high] share of the area to erase").length(2).range(0, 1).ascending();
    d(&O::ratio, "ratio", "[low, high] aspect ratio of the erased window").length(2).range(1e-3, 1e3).ascending();
    d(&O::value, "value", "fill value, one per channel or one for all").min_length(1).max_length(4).range(-1000, 1000);
    d(&O::random_value, "random_value", "fill with standard-normal noise per pixel instead of value");
  }
};

}  // namespace flowrun
