// Pixel operations on uint8 HWC images, written to match torchvision.transforms.
// functional on the same input (tests compare against fixtures written by
// torchvision: tools/make_augment_fixtures.py). Pure functions: the stages around
// them choose the random parameters.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "flowrun/rng.hpp"
#include "lib/image/image.hpp"

namespace flowrun {

// torchvision's padding modes: constant (fill), edge (repeat the border pixel),
// reflect (mirror without repeating the border), symmetric (mirror repeating it).
enum class PadMode { Constant, Edge, Reflect, Symmetric };
PadMode parse_pad_mode(const std::string& name);

// The height x width window whose top-left corner is (top, left) in the source's
// coordinates; parts outside the source are filled as `mode` says. Padding then
// cropping in one pass: F.crop(F.pad(img, pad, fill, mode), top + pad_top, ...).
Image crop_padded(const Image& src, int top, int left, int height, int width, PadMode mode,
                  std::array<std::uint8_t, 3> fill = {0, 0, 0});

// F.center_crop: rounds offsets half to even as Python's round() does; pads with 0
// when the crop is larger than the image.
Image center_crop(const Image& src, int height, int width);

Image flip_horizontal(const Image& src);

struct CropWindow {
  int top, left, height, width;
};
// torchvision's RandomResizedCrop.get_params, draw for draw: up to 10 attempts at an
// area share drawn from scale and a log-uniform aspect ratio from ratio (rounded half
// to even, as Python does), then the central crop with the ratio clamped.
CropWindow random_resized_crop_window(int height, int width, const std::vector<double>& scale,
                                      const std::vector<double>& ratio, Rng& rng);

// torchvision's RandomErasing.get_params, draw for draw: up to 10 attempts at an area
// share drawn from scale and a log-uniform aspect ratio from ratio (sides rounded half
// to even), the window strictly smaller than the image; false when none fitted.
bool random_erasing_window(int height, int width, const std::vector<double>& scale, const std::vector<double>& ratio,
                           Rng& rng, CropWindow& window);

// F.to_tensor then F.normalize, in float32: ((x / 255) - mean) / std, CHW. The result
// depends on the byte value alone, so it is a table lookup per channel, computed
// with the same float32 operations (identical values, a fraction of the cost).
struct NormalizeTable {
  NormalizeTable(const std::vector<double>& mean, const std::vector<double>& std);
  std::array<std::array<float, 256>, 4> values;  // per channel (mean/std repeat when shorter)
};
Image normalize(const Image& src, const NormalizeTable& table);
Image normalize(const Image& src, const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace flowrun
