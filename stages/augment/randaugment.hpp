// RandAugment (Cubuk et al., 2019) as torchvision implements it: num_ops operations
// drawn uniformly from 14, each at the same magnitude bin, negated with probability
// 1/2 where the operation is signed. The plan is separate from the pixels so that
// the draw can be tested on its own.
#pragma once

#include <string>
#include <vector>

#include "flowrun/rng.hpp"
#include "stages/messages/sample.hpp"

namespace flowrun {

enum class RandAugmentOp {
  Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness,
  Color, Contrast, Sharpness, Posterize, Solarize, AutoContrast, Equalize
};
constexpr int kRandAugmentOps = 14;
const char* randaugment_op_name(RandAugmentOp op);

struct RandAugmentStep {
  RandAugmentOp op;
  double magnitude;  // signed, in the operation's own unit (ratio, pixels, degrees, bits, level)
};

// torchvision's _augmentation_space value for `op` at `bin` of `bins` (float32
// linspace, as torch computes it), for an image of height x width.
double randaugment_magnitude(RandAugmentOp op, int bin, int bins, int height, int width);

std::vector<RandAugmentStep> randaugment_plan(int num_ops, int bin, int bins, int height, int width, Rng& rng);
Image apply_randaugment_step(const Image& image, const RandAugmentStep& step);

}  // namespace flowrun
