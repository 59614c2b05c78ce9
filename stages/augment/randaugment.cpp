// randaugment: the stage, and the operation table behind it.
//
//   {"id": "augment", "plugin": "randaugment", "params": {"num_ops": 2, "magnitude": 9}}
#include "stages/augment/randaugment.hpp"

#include <cmath>
#include <stdexcept>

#include "flowrun/options.hpp"
#include "stages/augment/augment_plugins.hpp"
#include "stages/augment/color_ops.hpp"
#include "stages/augment/randaugment_ops.hpp"

namespace flowrun {
namespace {

struct RandAugmentOptions {
  int num_ops = 2;
  int magnitude = 9;
  int num_magnitude_bins = 31;
  template <typename D>
  static void declare(D& d) {
    using O = RandAugmentOptions;
    d(&O::num_ops, "num_ops", "operations applied in sequence to each image").range(0, 16);
    d(&O::magnitude, "magnitude", "magnitude bin, from 0 (weakest) to num_magnitude_bins - 1").range(0, 1000);
    d(&O::num_magnitude_bins, "num_magnitude_bins", "number of magnitude bins").range(2, 1001);
  }
};

// torch.linspace(start, end, steps)[i] in float32: from the start for the lower half,
// from the end for the upper half.
float linspace_at(float start, float end, int steps, int i) {
  if (steps == 1) return start;
  const float step = (end - start) / static_cast<float>(steps - 1);
  return i < steps / 2 ? start + step * static_cast<float>(i) : end - step * static_cast<float>(steps - i - 1);
}

bool is_signed(RandAugmentOp op) {
  switch (op) {
    case RandAugmentOp::ShearX: case RandAugmentOp::ShearY: case RandAugmentOp::TranslateX:
    case RandAugmentOp::TranslateY: case RandAugmentOp::Rotate: case RandAugmentOp::Brightness:
    case RandAugmentOp::Color: case RandAugmentOp::Contrast: case RandAugmentOp::Sharpness:
      return true;
    default:
      return false;
  }
}

class RandAugment : public MapStage {
 public:
  explicit RandAugment(const StageArgs& args) : RandAugment(args, read_options<RandAugmentOptions>(args.params)) {}
  RandAugment(const StageArgs& args, const RandAugmentOptions& o)
      : MapStage(args), num_ops_(o.num_ops), magnitude_(o.magnitude), bins_(o.num_magnitude_bins) {}

  std::shared_ptr<const Payload> process(const Message& in) override {
    const auto& sample = in.as<ImageSample>();
    Rng rng = item_rng(in);
    const auto plan = randaugment_plan(num_ops_, magnitude_, bins_, sample.image.height, sample.image.width, rng);
    Image image = sample.image;
    for (const RandAugmentStep& step : plan) image = apply_randaugment_step(image, step);
    return with_image(in, std::move(image));
  }

 private:
  int num_ops_, magnitude_, bins_;
};

}  // namespace

const char* randaugment_op_name(RandAugmentOp op) {
  static const char* const names[kRandAugmentOps] = {
      "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
      "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"};
  return names[static_cast<int>(op)];
}

double randaugment_magnitude(RandAugmentOp op, int bin, int bins, int height, int width) {
  switch (op) {
    case RandAugmentOp::ShearX:
    case RandAugmentOp::ShearY: return linspace_at(0.0f, 0.3f, bins, bin);
    case RandAugmentOp::TranslateX: return linspace_at(0.0f, static_cast<float>(150.0 / 331.0 * width), bins, bin);
    case RandAugmentOp::TranslateY: return linspace_at(0.0f, static_cast<float>(150.0 / 331.0 * height), bins, bin);
    case RandAugmentOp::Rotate: return linspace_at(0.0f, 30.0f, bins, bin);
    case RandAugmentOp::Brightness:
    case RandAugmentOp::Color:
    case RandAugmentOp::Contrast:
    case RandAugmentOp::Sharpness: return linspace_at(0.0f, 0.9f, bins, bin);
    case RandAugmentOp::Posterize: {  // 8 - round(bin / ((bins - 1) / 4)), half to even
      const float quarter = static_cast<float>(bins - 1) / 4.0f;
      return 8 - static_cast<int>(std::nearbyint(static_cast<float>(bin) / quarter));
    }
    case RandAugmentOp::Solarize: return linspace_at(255.0f, 0.0f, bins, bin);
    default: return 0.0;
  }
}

std::vector<RandAugmentStep> randaugment_plan(int num_ops, int bin, int bins, int height, int width, Rng& rng) {
  std::vector<RandAugmentStep> plan;
  for (int k = 0; k < num_ops; ++k) {
    const auto op = static_cast<RandAugmentOp>(rng.below(kRandAugmentOps));
    double magnitude = randaugment_magnitude(op, bin, bins, height, width);
    if (is_signed(op) && rng.below(2)) magnitude = -magnitude;
    plan.push_back({op, magnitude});
  }
  return plan;
}

Image apply_randaugment_step(const Image& image, const RandAugmentStep& step) {
  const double m = step.magnitude;
  const double shear = std::atan(m) * 180.0 / M_PI;  // the magnitude is a tangent
  switch (step.op) {
    case RandAugmentOp::Identity: return image;
    case RandAugmentOp::ShearX: return affine_nearest(image, 0, 0, 0, shear, 0, true);
    case RandAugmentOp::ShearY: return affine_nearest(image, 0, 0, 0, 0, shear, true);
    case RandAugmentOp::TranslateX: return affine_nearest(image, 0, std::trunc(m), 0, 0, 0, false);
    case RandAugmentOp::TranslateY: return affine_nearest(image, 0, 0, std::trunc(m), 0, 0, false);
    case RandAugmentOp::Rotate: return rotate_nearest(image, m);
    case RandAugmentOp::Brightness: return adjust_brightness(image, 1.0 + m);
    case RandAugmentOp::Color: return adjust_saturation(image, 1.0 + m);
    case RandAugmentOp::Contrast: return adjust_contrast(image, 1.0 + m);
    case RandAugmentOp::Sharpness: return adjust_sharpness(image, 1.0 + m);
    case RandAugmentOp::Posterize: return posterize(image, static_cast<int>(m));
    case RandAugmentOp::Solarize: return solarize(image, m);
    case RandAugmentOp::AutoContrast: return autocontrast(image);
    case RandAugmentOp::Equalize: return equalize(image);
  }
  return image;
}

PluginInfo randaugment_plugin() {
  PluginInfo p;
  p.name = "randaugment";
  p.summary = "RandAugment: num_ops random operations out of 14 at one magnitude (torchvision RandAugment)";
  p.description =
      "Each item gets num_ops operations drawn uniformly (with replacement) from Identity, ShearX,\n"
      "ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness, Posterize,\n"
      "Solarize, AutoContrast and Equalize, all at magnitude bin `magnitude` of\n"
      "`num_magnitude_bins`, signed ones negated half of the time: torchvision's table and\n"
      "arithmetic on uint8 tensors (nearest-neighbour warps, zeros outside).\n"
      "\n"
      "  {\"id\": \"augment\", \"plugin\": \"randaugment\", \"params\": {\"num_ops\": 2, \"magnitude\": 9}}";
  p.role = Role::Map;
  p.inputs = {{"in", kImageSampleKind, "RGB images, uint8 HWC"}};
  p.outputs = {{"out", kImageSampleKind, "augmented images, uint8 HWC"}};
  declare_options<RandAugmentOptions>(p.params);
  // Before the run: a magnitude bin beyond the bins.
  p.check = [](const CheckedNode& node, std::vector<CheckFinding>& findings) {
    const auto o = read_options<RandAugmentOptions>(*node.params);
    if (o.magnitude >= o.num_magnitude_bins)
      findings.push_back({"magnitude", "magnitude " + std::to_string(o.magnitude) + " must be below num_magnitude_bins " +
                                           std::to_string(o.num_magnitude_bins)});
  };
  p.create = [](const StageArgs& args) { return std::make_unique<RandAugment>(args); };
  return p;
}

}  // namespace flowrun
