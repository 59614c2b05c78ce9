#include "stages/augment/randaugment_ops.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace flowrun {
namespace {

void require_rgb_u8(const Image& image, const char* op) {
  if (image.type != Image::Type::U8_HWC || image.channels != 3) {
    throw std::invalid_argument(std::string(op) + " works on RGB uint8 images; place it before normalize");
  }
}

// torchvision's _get_inverse_affine_matrix (scale 1): maps output pixel coordinates,
// relative to the centre, back to input ones.
std::array<double, 6> inverse_affine(double cx, double cy, double angle, double tx, double ty, double shear_x,
                                     double shear_y) {
  const double rot = angle * M_PI / 180.0, sx = shear_x * M_PI / 180.0, sy = shear_y * M_PI / 180.0;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m = {d, -b, 0.0, -c, a, 0.0};
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

// _gen_affine_grid + grid_sample(nearest, zeros, align_corners=False), in float32
// like torch, so that rounding ties fall the same way.
Image warp_nearest(const Image& src, const std::array<double, 6>& matrix) {
  const int w = src.width, h = src.height;
  const float half_w = 0.5f * static_cast<float>(w), half_h = 0.5f * static_cast<float>(h);
  float theta[6];
  for (int i = 0; i < 6; ++i) theta[i] = static_cast<float>(matrix[static_cast<std::size_t>(i)]);
  // rescaled_theta = theta^T / [0.5 w, 0.5 h]
  const float r00 = theta[0] / half_w, r01 = theta[3] / half_h;
  const float r10 = theta[1] / half_w, r11 = theta[4] / half_h;
  const float r20 = theta[2] / half_w, r21 = theta[5] / half_h;
  Image out = Image::u8_hwc(h, w, 3);
  // torch.linspace(-n/2 + 0.5, n/2 - 0.5, n): start + i * step, from the far end for the upper half.
  const auto grid_coord = [](int i, int n) {
    const float start = -static_cast<float>(n) * 0.5f + 0.5f, end = static_cast<float>(n) * 0.5f + 0.5f - 1.0f;
    if (n == 1) return start;
    const float step = (end - start) / static_cast<float>(n - 1);
    return i < n / 2 ? start + step * static_cast<float>(i) : end - step * static_cast<float>(n - i - 1);
  };
  for (int y = 0; y < h; ++y) {
    const float by = grid_coord(y, h);
    for (int x = 0; x < w; ++x) {
      const float bx = grid_coord(x, w);
      const float gx = bx * r00 + by * r10 + r20;
      const float gy = bx * r01 + by * r11 + r21;
      const float ix = ((gx + 1.0f) * static_cast<float>(w) - 1.0f) / 2.0f;
      const float iy = ((gy + 1.0f) * static_cast<float>(h) - 1.0f) / 2.0f;
      const long sx = std::lrint(std::nearbyint(ix)), sy = std::lrint(std::nearbyint(iy));
      std::uint8_t* dst = &out.u8[(static_cast<std::size_t>(y) * w + x) * 3];
      if (sx < 0 || sx >= w || sy < 0 || sy >= h) {
        dst[0] = dst[1] = dst[2] = 0;
        continue;
      }
      const std::uint8_t* from = &src.u8[(static_cast<std::size_t>(sy) * w + sx) * 3];
      dst[0] = from[0], dst[1] = from[1], dst[2] = from[2];
    }
  }
  return out;
}

}  // namespace

Image affine_nearest(const Image& src, double angle, double translate_x, double translate_y, double shear_x,
                     double shear_y, bool origin_center) {
  require_rgb_u8(src, "affine");
  // center=[0, 0] in pixels is (-w/2, -h/2) relative to the image centre.
  const double cx = origin_center ? -0.5 * src.width : 0.0, cy = origin_center ? -0.5 * src.height : 0.0;
  return warp_nearest(src, inverse_affine(cx, cy, angle, translate_x, translate_y, shear_x, shear_y));
}

Image rotate_nearest(const Image& src, double angle) {
  require_rgb_u8(src, "rotate");
  // F.rotate passes -angle to the matrix builder (its convention differs from affine's).
  return warp_nearest(src, inverse_affine(0, 0, -angle, 0, 0, 0, 0));
}

Image adjust_sharpness(const Image& src, double factor) {
  require_rgb_u8(src, "sharpness");
  if (src.width <= 2 || src.height <= 2) return src;
  // The degenerate image: a 3x3 smoothing (centre weight 5, others 1, / 13), rounded,
  // on the interior only; then a blend as in adjust_brightness.
  Image blurred = src;
  const float k = 1.0f / 13.0f, centre = 5.0f / 13.0f;
  const int w = src.width;
  for (int y = 1; y < src.height - 1; ++y) {
    for (int x = 1; x < w - 1; ++x) {
      for (int c = 0; c < 3; ++c) {
        float sum = 0.0f;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            sum += static_cast<float>(src.u8[(static_cast<std::size_t>(y + dy) * w + (x + dx)) * 3 + c]) *
                   (dx == 0 && dy == 0 ? centre : k);
        blurred.u8[(static_cast<std::size_t>(y) * w + x) * 3 + c] = static_cast<std::uint8_t>(std::nearbyint(sum));
      }
    }
  }
  Image out = src;
  const auto r = static_cast<float>(factor);
  for (std::size_t i = 0; i < out.u8.size(); ++i) {
    float v = r * static_cast<float>(src.u8[i]) + (1.0f - r) * static_cast<float>(blurred.u8[i]);
    v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
    out.u8[i] = static_cast<std::uint8_t>(v);
  }
  return out;
}

Image posterize(const Image& src, int bits) {
  require_rgb_u8(src, "posterize");
  Image out = src;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - bits));
  for (auto& v : out.u8) v &= mask;
  return out;
}

Image solarize(const Image& src, double threshold) {
  require_rgb_u8(src, "solarize");
  Image out = src;
  for (auto& v : out.u8)
    if (static_cast<double>(v) >= threshold) v = static_cast<std::uint8_t>(255 - v);
  return out;
}

Image autocontrast(const Image& src) {
  require_rgb_u8(src, "autocontrast");
  Image out = src;
  for (int c = 0; c < 3; ++c) {
    std::uint8_t lo = 255, hi = 0;
    for (std::size_t p = 0; p < src.pixel_count(); ++p) {
      lo = std::min(lo, src.u8[p * 3 + c]);
      hi = std::max(hi, src.u8[p * 3 + c]);
    }
    float minimum = lo;
    float scale = 255.0f / (static_cast<float>(hi) - static_cast<float>(lo));
    if (!std::isfinite(scale)) {  // a flat channel stays as it is
      minimum = 0.0f;
      scale = 1.0f;
    }
    for (std::size_t p = 0; p < src.pixel_count(); ++p) {
      float v = (static_cast<float>(src.u8[p * 3 + c]) - minimum) * scale;
      v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
      out.u8[p * 3 + c] = static_cast<std::uint8_t>(v);
    }
  }
  return out;
}

Image equalize(const Image& src) {
  require_rgb_u8(src, "equalize");
  Image out = src;
  for (int c = 0; c < 3; ++c) {
    std::int64_t hist[256] = {};
    for (std::size_t p = 0; p < src.pixel_count(); ++p) ++hist[src.u8[p * 3 + c]];
    // step = (sum of the non-zero bins but the last) // 255
    std::int64_t last_nonzero = -1, total = 0;
    for (int v = 0; v < 256; ++v)
      if (hist[v]) last_nonzero = v;
    for (int v = 0; v < 256; ++v)
      if (hist[v] && v != last_nonzero) total += hist[v];
    const std::int64_t step = total / 255;
    if (step == 0) continue;
    std::int64_t lut[256];
    std::int64_t cumulative = 0;
    lut[0] = 0;
    for (int v = 0; v < 255; ++v) {  // lut shifted by one: lut[v + 1] from the sum up to v
      cumulative += hist[v];
      lut[v + 1] = std::min<std::int64_t>(255, (cumulative + step / 2) / step);
    }
    for (std::size_t p = 0; p < src.pixel_count(); ++p)
      out.u8[p * 3 + c] = static_cast<std::uint8_t>(lut[src.u8[p * 3 + c]]);
  }
  return out;
}

}  // namespace flowrun
