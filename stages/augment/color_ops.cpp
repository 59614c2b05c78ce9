#include "stages/augment/color_ops.hpp"

#include <cmath>
#include <stdexcept>

namespace flowrun {
namespace {

void require_rgb_u8(const Image& image, const char* op) {
  if (image.type != Image::Type::U8_HWC || image.channels != 3) {
    throw std::invalid_argument(std::string(op) + " works on RGB uint8 images; place it before normalize");
  }
}

// torchvision's _blend: (ratio * a + (1 - ratio) * b).clamp(0, 255), truncated to uint8.
std::uint8_t blend(float a, float b, float ratio) {
  float v = ratio * a + (1.0f - ratio) * b;
  v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
  return static_cast<std::uint8_t>(v);
}

// rgb_to_grayscale on uint8: (0.2989 r + 0.587 g + 0.114 b) in float32, truncated.
std::uint8_t gray(const std::uint8_t* px) {
  return static_cast<std::uint8_t>(0.2989f * px[0] + 0.587f * px[1] + 0.114f * px[2]);
}

}  // namespace

Image adjust_brightness(const Image& src, double factor) {
  require_rgb_u8(src, "brightness");
  Image out = src;
  const auto r = static_cast<float>(factor);
  for (auto& v : out.u8) v = blend(v, 0.0f, r);
  return out;
}

Image adjust_contrast(const Image& src, double factor) {
  require_rgb_u8(src, "contrast");
  double sum = 0;
  for (std::size_t p = 0; p < src.pixel_count(); ++p) sum += gray(&src.u8[p * 3]);
  const auto mean = static_cast<float>(sum / static_cast<double>(src.pixel_count()));
  Image out = src;
  const auto r = static_cast<float>(factor);
  for (auto& v : out.u8) v = blend(v, mean, r);
  return out;
}

Image adjust_saturation(const Image& src, double factor) {
  require_rgb_u8(src, "saturation");
  Image out = src;
  const auto r = static_cast<float>(factor);
  for (std::size_t p = 0; p < src.pixel_count(); ++p) {
    const float g = gray(&src.u8[p * 3]);
    for (int c = 0; c < 3; ++c) out.u8[p * 3 + c] = blend(src.u8[p * 3 + c], g, r);
  }
  return out;
}

Image adjust_hue(const Image& src, double shift) {
  require_rgb_u8(src, "hue");
  Image out = src;
  const auto hue_shift = static_cast<float>(shift);
  for (std::size_t p = 0; p < src.pixel_count(); ++p) {
    // uint8 -> float in [0, 1], then torchvision's _rgb2hsv.
    const float r = src.u8[p * 3] / 255.0f, g = src.u8[p * 3 + 1] / 255.0f, b = src.u8[p * 3 + 2] / 255.0f;
    const float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    const float s = cr / (eqc ? 1.0f : maxc);
    const float divisor = eqc ? 1.0f : cr;
    const float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
    float h = 0.0f;
    if (maxc == r) h = bc - gc;
    else if (maxc == g) h = 2.0f + rc - bc;
    else h = 4.0f + gc - rc;
    h = std::fmod(h / 6.0f + 1.0f, 1.0f);
    // Shift, then torchvision's _hsv2rgb.
    h = std::fmod(h + hue_shift, 1.0f);
    if (h < 0) h += 1.0f;  // Python's % keeps the sign of the divisor
    const float v = maxc;
    const float i_float = std::floor(h * 6.0f);
    const float f = h * 6.0f - i_float;
    const int i = ((static_cast<int>(i_float) % 6) + 6) % 6;
    const auto clamp01 = [](float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; };
    const float pv = clamp01(v * (1.0f - s)), qv = clamp01(v * (1.0f - s * f)), tv = clamp01(v * (1.0f - s * (1.0f - f)));
    const float table[6][3] = {{v, tv, pv}, {qv, v, pv}, {pv, v, tv}, {pv, qv, v}, {tv, pv, v}, {v, pv, qv}};
    // float -> uint8 as convert_image_dtype does: x * (255 + 1 - 1e-3), truncated.
    for (int c = 0; c < 3; ++c) out.u8[p * 3 + c] = static_cast<std::uint8_t>(table[i][c] * (255.0f + 1.0f - 1e-3f));
  }
  return out;
}

}  // namespace flowrun
