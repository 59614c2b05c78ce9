#include "lib/image/image_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

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
  // Columns [inside_begin, inside_end) of the window map straight onto source columns.
  const int inside_begin = std::clamp(-left, 0, width);
  const int inside_end = std::clamp(src.width - left, inside_begin, width);
  std::uint8_t fill_pixel[4] = {fill[0], fill[1], fill[2], fill[0]};
  // Where each column outside the source comes from is the same on every row: found once
  // (-1 = fill), not per pixel (the mirroring modes' modulo was most of a small crop's time).
  const auto outside_count = static_cast<std::size_t>(width - (inside_end - inside_begin));
  int on_stack[64];
  std::vector<int> on_heap(outside_count > 64 ? outside_count : 0);
  int* const outside_from = outside_count > 64 ? on_heap.data() : on_stack;
  int* put = outside_from;
  for (int x = 0; x < inside_begin; ++x) *put++ = source_index(left + x, src.width, mode);
  for (int x = inside_end; x < width; ++x) *put++ = source_index(left + x, src.width, mode);
  const auto put_outside = [&](std::uint8_t* dst, const std::uint8_t* row, int x, int sx) {
    for (int k = 0; k < c; ++k) dst[x * c + k] = sx < 0 ? fill_pixel[k % 3] : row[static_cast<std::size_t>(sx) * c + k];
  };
  for (int y = 0; y < height; ++y) {
    std::uint8_t* dst = out.row(y);
    const int sy = source_index(top + y, src.height, mode);
    if (sy < 0) {  // a constant-padding row
      for (int x = 0; x < width; ++x)
        for (int k = 0; k < c; ++k) dst[x * c + k] = fill_pixel[k % 3];
      continue;
    }
    const std::uint8_t* row = src.row(sy);
    const int* from = outside_from;
    for (int x = 0; x < inside_begin; ++x) put_outside(dst, row, x, *from++);
    std::memcpy(dst + static_cast<std::size_t>(inside_begin) * c, row + static_cast<std::size_t>(left + inside_begin) * c,
                static_cast<std::size_t>(inside_end - inside_begin) * c);
    for (int x = inside_end; x < width; ++x) put_outside(dst, row, x, *from++);
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
  const int c = src.channels, w = src.width;
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    std::uint8_t* dst = out.row(y);
    if (c == 3) {
      // Four bytes per pixel, the fourth overwritten by the next pixel: one load and one
      // store per pixel instead of three (the byte-wise loop was most of the stage's time).
      // The two pixels whose fourth byte lies past a row's end (the source's last, the
      // destination's last) are copied bytewise.
      const auto pixel = [&](int x) {
        const std::uint8_t* from = in + (w - 1 - x) * 3;
        dst[x * 3] = from[0];
        dst[x * 3 + 1] = from[1];
        dst[x * 3 + 2] = from[2];
      };
      pixel(0);
      for (int x = 1; x < w - 1; ++x) std::memcpy(dst + x * 3, in + (w - 1 - x) * 3, 4);
      if (w > 1) pixel(w - 1);
      continue;
    }
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) dst[x * c + k] = in[(w - 1 - x) * c + k];
  }
  return out;
}

CropWindow random_resized_crop_window(int H, int W, const std::vector<double>& scale, const std::vector<double>& ratio,
                                      Rng& rng) {
  const double area = static_cast<double>(H) * W;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale[0], scale[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target / aspect)));
    if (0 < w && w <= W && 0 < h && h <= H) {
      const int top = static_cast<int>(rng.below(static_cast<std::uint64_t>(H - h + 1)));
      const int left = static_cast<int>(rng.below(static_cast<std::uint64_t>(W - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(W) / H;
  int w = W, h = H;
  if (in_ratio < ratio[0]) h = static_cast<int>(std::nearbyint(w / ratio[0]));
  else if (in_ratio > ratio[1]) w = static_cast<int>(std::nearbyint(h * ratio[1]));
  return {(H - h) / 2, (W - w) / 2, h, w};
}

bool random_erasing_window(int H, int W, const std::vector<double>& scale, const std::vector<double>& ratio, Rng& rng,
                           CropWindow& window) {
  const double area = static_cast<double>(H) * W;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase = area * rng.uniform(scale[0], scale[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(erase * aspect)));
    const int w = static_cast<int>(std::nearbyint(std::sqrt(erase / aspect)));
    if (!(h < H && w < W)) continue;
    const int top = static_cast<int>(rng.below(static_cast<std::uint64_t>(H - h + 1)));
    const int left = static_cast<int>(rng.below(static_cast<std::uint64_t>(W - w + 1)));
    window = {top, left, h, w};
    return true;
  }
  return false;
}

NormalizeTable::NormalizeTable(const std::vector<double>& mean, const std::vector<double>& std) {
  for (std::size_t k = 0; k < values.size(); ++k) {
    // The same float32 operations as to_tensor (x / 255) then normalize ((v - m) / s).
    const float m = static_cast<float>(mean[k % mean.size()]);
    const float s = static_cast<float>(std[k % std.size()]);
    for (int v = 0; v < 256; ++v) values[k][static_cast<std::size_t>(v)] = (static_cast<float>(v) / 255.0f - m) / s;
  }
}

Image normalize(const Image& src, const NormalizeTable& table) {
  require_u8(src, "normalize");
  const int c = src.channels;
  if (c > 4) throw std::invalid_argument("normalize handles at most 4 channels");
  Image out;
  out.type = Image::Type::F32_CHW;
  out.height = src.height;
  out.width = src.width;
  out.channels = c;
  out.f32.resize(src.u8.size());
  const std::size_t plane = src.pixel_count();
  if (c == 3) {  // the common case in one pass over the pixels
    const float *t0 = table.values[0].data(), *t1 = table.values[1].data(), *t2 = table.values[2].data();
    float *d0 = out.f32.data(), *d1 = d0 + plane, *d2 = d1 + plane;
    const std::uint8_t* in = src.u8.data();
    for (std::size_t p = 0; p < plane; ++p, in += 3) {
      d0[p] = t0[in[0]];
      d1[p] = t1[in[1]];
      d2[p] = t2[in[2]];
    }
    return out;
  }
  for (int k = 0; k < c; ++k) {
    const float* lut = table.values[static_cast<std::size_t>(k)].data();
    float* dst = out.f32.data() + plane * static_cast<std::size_t>(k);
    const std::uint8_t* in = src.u8.data() + k;
    for (std::size_t p = 0; p < plane; ++p) dst[p] = lut[in[p * c]];
  }
  return out;
}

Image normalize(const Image& src, const std::vector<double>& mean, const std::vector<double>& std) {
  return normalize(src, NormalizeTable(mean, std));
}

}  // namespace flowrun
