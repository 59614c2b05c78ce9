#include "stages/augment/image_ops.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace flowrun {
namespace {

// Maps a coordinate outside [0, n) back inside for the mirroring modes; -1 for
// constant fill.
int source_index(int i, int n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Constant: return -1;
    case PadMode::Edge: return i < 0 ? 0 : n - 1;
    case PadMode::Reflect: {
      if (n == 1) return 0;
      const int period = 2 * (n - 1);
      int m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    case PadMode::Symmetric: {
      const int period = 2 * n;
      int m = ((i % period) + period) % period;
      return m < n ? m : period - 1 - m;
    }
  }
  return -1;
}

void require_u8(const Image& image, const char* op) {
  if (image.type != Image::Type::U8_HWC) {
    throw std::invalid_argument(std::string(op) + " works on uint8 images; place it before normalize");
  }
}

}  // namespace

PadMode parse_pad_mode(const std::string& name) {
  if (name == "constant") return PadMode::Constant;
  if (name == "edge") return PadMode::Edge;
  if (name == "reflect") return PadMode::Reflect;
  if (name == "symmetric") return PadMode::Symmetric;
  throw std::invalid_argument("unknown padding mode '" + name + "'");
}

Image crop_padded(const Image& src, int top, int left, int height, int width, PadMode mode,
                  std::array<std::uint8_t, 3> fill) {
  require_u8(src, "crop");
  const int c = src.channels;
  Image out = Image::u8_hwc(height, width, c);
  std::vector<int> columns(static_cast<std::size_t>(width));
  bool columns_inside = left >= 0 && left + width <= src.width;
  for (int x = 0; x < width; ++x) columns[static_cast<std::size_t>(x)] = source_index(left + x, src.width, mode);
  for (int y = 0; y < height; ++y) {
    std::uint8_t* dst = out.row(y);
    const int sy = source_index(top + y, src.height, mode);
    if (sy < 0) {
      for (int x = 0; x < width; ++x)
        for (int k = 0; k < c; ++k) dst[x * c + k] = fill[static_cast<std::size_t>(k % 3)];
      continue;
    }
    const std::uint8_t* row = src.row(sy);
    if (columns_inside) {
      std::memcpy(dst, row + static_cast<std::size_t>(left) * c, static_cast<std::size_t>(width) * c);
      continue;
    }
    for (int x = 0; x < width; ++x) {
      const int sx = columns[static_cast<std::size_t>(x)];
      for (int k = 0; k < c; ++k) dst[x * c + k] = sx < 0 ? fill[static_cast<std::size_t>(k % 3)] : row[sx * c + k];
    }
  }
  return out;
}

Image center_crop(const Image& src, int height, int width) {
  // torchvision pads first when the crop is larger, putting the odd pixel at the end.
  const int pad_top = height > src.height ? (height - src.height) / 2 : 0;
  const int pad_left = width > src.width ? (width - src.width) / 2 : 0;
  const int padded_h = std::max(src.height, height), padded_w = std::max(src.width, width);
  const int top = static_cast<int>(std::nearbyint((padded_h - height) / 2.0)) - pad_top;
  const int left = static_cast<int>(std::nearbyint((padded_w - width) / 2.0)) - pad_left;
  return crop_padded(src, top, left, height, width, PadMode::Constant);
}

Image flip_horizontal(const Image& src) {
  require_u8(src, "horizontal_flip");
  Image out = Image::u8_hwc(src.height, src.width, src.channels);
  const int c = src.channels;
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    std::uint8_t* dst = out.row(y);
    for (int x = 0; x < src.width; ++x) std::memcpy(dst + x * c, in + (src.width - 1 - x) * c, static_cast<std::size_t>(c));
  }
  return out;
}

Image normalize(const Image& src, const std::vector<double>& mean, const std::vector<double>& std) {
  require_u8(src, "normalize");
  const int c = src.channels;
  Image out;
  out.type = Image::Type::F32_CHW;
  out.height = src.height;
  out.width = src.width;
  out.channels = c;
  out.f32.resize(src.u8.size());
  const std::size_t plane = src.pixel_count();
  for (int k = 0; k < c; ++k) {
    // The result depends on the byte value alone: a 256-entry table computed with
    // the same float32 operations as to_tensor (x / 255) then normalize ((v - m) / s)
    // gives identical values at a fraction of the cost.
    const float m = static_cast<float>(mean[static_cast<std::size_t>(k) % mean.size()]);
    const float s = static_cast<float>(std[static_cast<std::size_t>(k) % std.size()]);
    float table[256];
    for (int v = 0; v < 256; ++v) table[v] = (static_cast<float>(v) / 255.0f - m) / s;
    float* dst = out.f32.data() + plane * static_cast<std::size_t>(k);
    const std::uint8_t* in = src.u8.data() + k;
    for (std::size_t p = 0; p < plane; ++p) dst[p] = table[in[p * c]];
  }
  return out;
}

}  // namespace flowrun
