// The operations RandAugment draws from that color_ops.hpp does not already have,
// on uint8 HWC RGB images, matching torchvision.transforms.functional on uint8
// tensors: affine warps sampled with nearest neighbour (grid_sample's arithmetic,
// zeros outside), sharpness, posterize, solarize, autocontrast, equalize.
#pragma once

#include <array>
#include <cstdint>

#include "stages/messages/sample.hpp"

namespace flowrun {

// F.affine(img, angle, translate, scale=1, shear, NEAREST, center=None or [0, 0]).
// Angles in degrees; `origin_center` false places the centre at the top-left pixel
// corner, as RandAugment's shears do (center=[0, 0]).
Image affine_nearest(const Image& src, double angle, double translate_x, double translate_y, double shear_x,
                     double shear_y, bool origin_center);
// F.rotate(img, angle, NEAREST): counter-clockwise degrees, about the centre, same size.
Image rotate_nearest(const Image& src, double angle);

Image adjust_sharpness(const Image& src, double factor);
Image posterize(const Image& src, int bits);
Image solarize(const Image& src, double threshold);
Image autocontrast(const Image& src);
Image equalize(const Image& src);

}  // namespace flowrun
