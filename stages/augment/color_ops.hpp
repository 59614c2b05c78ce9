// Colour adjustments on uint8 HWC RGB images, matching torchvision.transforms.
// functional on uint8 tensors (its tensor implementation: float32 arithmetic,
// truncation back to uint8). Pure functions; color_jitter draws the factors.
#pragma once

#include "stages/messages/sample.hpp"

namespace flowrun {

Image adjust_brightness(const Image& src, double factor);  // blend with black
Image adjust_contrast(const Image& src, double factor);    // blend with the mean grey level
Image adjust_saturation(const Image& src, double factor);  // blend with the greyscale image
Image adjust_hue(const Image& src, double shift);          // rotate hue by shift in [-0.5, 0.5]

}  // namespace flowrun
