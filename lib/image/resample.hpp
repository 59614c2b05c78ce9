// Resizing uint8 HWC images the way PIL does (Image.resize with BILINEAR or BICUBIC,
// which torchvision uses for PIL images and mimics for uint8 tensors): separable
// convolution with antialiasing when shrinking (the filter widens by the scale),
// two passes in Pillow's order, 22-bit fixed-point coefficients, rounding to uint8
// after each pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/image/image.hpp"

namespace flowrun {

enum class Interpolation { Bilinear, Bicubic };
Interpolation parse_interpolation(const std::string& name);

Image resize(const Image& src, int height, int width, Interpolation interpolation);

// torchvision's size rule for Resize([s]): the shorter side becomes s, the longer
// int(s * long / short); [h, w] is used as given.
void resized_shape(int in_h, int in_w, const std::vector<std::int64_t>& size, int& out_h, int& out_w);

}  // namespace flowrun
