// An image in memory, the unit every CPU image operation (lib/image) works on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace flowrun {

// Pixels in one of two layouts; every CPU augmentation works on uint8 HWC, and
// normalize turns them into float32 CHW.
struct Image {
  enum class Type { U8_HWC, F32_CHW };
  Type type = Type::U8_HWC;
  int height = 0;
  int width = 0;
  int channels = 3;
  std::vector<std::uint8_t> u8;  // H*W*C, when U8_HWC
  std::vector<float> f32;        // C*H*W, when F32_CHW

  static Image u8_hwc(int height, int width, int channels = 3);
  std::uint8_t* row(int y) { return u8.data() + static_cast<std::size_t>(y) * width * channels; }
  const std::uint8_t* row(int y) const { return u8.data() + static_cast<std::size_t>(y) * width * channels; }
  std::size_t pixel_count() const { return static_cast<std::size_t>(height) * width; }
};

}  // namespace flowrun
