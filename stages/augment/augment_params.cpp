#include "stages/augment/augment_params.hpp"

#include <vector>

namespace flowrun {
namespace {

const std::vector<double> kImagenetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImagenetStd = {0.229, 0.224, 0.225};
constexpr double kDefaultFlipProbability = 0.5;
constexpr double kDefaultErasingProbability = 0.5;

void declare_size(Schema& s, const std::string& doc) {
  s.required("size", ParamType::IntList, doc).min_length(1).max_length(2).range(1, 65535);
}

void declare_interpolation(Schema& s) { s.choice("interpolation", "bilinear", {"bilinear", "bicubic"}, "resampling filter"); }

}  // namespace

void declare_flip_params(Schema& s) {
  s.number("p", kDefaultFlipProbability, "probability of flipping each image").range(0, 1);
}

void declare_normalize_params(Schema& s) {
  s.number_list("mean", kImagenetMean, "per-channel mean, on the [0, 1] scale (default: ImageNet)")
      .min_length(1).max_length(4).range(-10, 10);
  s.number_list("std", kImagenetStd, "per-channel standard deviation, > 0 (default: ImageNet)")
      .min_length(1).max_length(4).range(1e-6, 100);
}

void declare_resize_params(Schema& s) {
  declare_size(s, "[s]: shorter side to s, keeping the aspect ratio; [height, width]: exactly");
  declare_interpolation(s);
}

void declare_random_resized_crop_params(Schema& s) {
  declare_size(s, "output size: [s] for s x s, or [height, width]");
  s.number_list("scale", {0.08, 1.0}, "[low, high] share of the image's area to keep").length(2).range(0, 1).ascending();
  s.number_list("ratio", {3.0 / 4.0, 4.0 / 3.0}, "[low, high] aspect ratio (width / height) of the window")
      .length(2).range(1e-3, 1e3).ascending();
  declare_interpolation(s);
}

void declare_random_erasing_params(Schema& s) {
  s.number("p", kDefaultErasingProbability, "probability of erasing each sample").range(0, 1);
  s.number_list("scale", {0.02, 0.33}, "[low, high] share of the area to erase").length(2).range(0, 1).ascending();
  s.number_list("ratio", {0.3, 3.3}, "[low, high] aspect ratio of the erased window").length(2).range(1e-3, 1e3).ascending();
  s.number_list("value", {0.0}, "fill value, one per channel or one for all").min_length(1).max_length(4).range(-1000, 1000);
  s.boolean("random_value", false, "fill with standard-normal noise per pixel instead of value");
}

}  // namespace flowrun
