#include "lib/image/resample.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace flowrun {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// For each output position: the first input index, how many inputs, and their
// fixed-point weights (PIL's precompute_coeffs + normalize_coeffs_8bpc).
struct Coefficients {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;  // out_size x taps
};

Coefficients coefficients(int in_size, int out_size, Interpolation interpolation) {
  const double support_unit = interpolation == Interpolation::Bilinear ? 1.0 : 2.0;
  const auto filter = interpolation == Interpolation::Bilinear ? bilinear : bicubic;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = support_unit * filter_scale;
  Coefficients c;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<std::size_t>(out_size));
  c.count.resize(static_cast<std::size_t>(out_size));
  c.weights.assign(static_cast<std::size_t>(out_size) * c.taps, 0);
  std::vector<double> w(static_cast<std::size_t>(c.taps));
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int n = std::min(static_cast<int>(center + support + 0.5), in_size) - lo;
    double total = 0;
    for (int k = 0; k < n; ++k) {
      w[static_cast<std::size_t>(k)] = filter((k + lo - center + 0.5) / filter_scale);
      total += w[static_cast<std::size_t>(k)];
    }
    for (int k = 0; k < n; ++k) {
      const double v = total != 0.0 ? w[static_cast<std::size_t>(k)] / total : 0.0;
      c.weights[static_cast<std::size_t>(o) * c.taps + k] =
          static_cast<std::int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[static_cast<std::size_t>(o)] = lo;
    c.count[static_cast<std::size_t>(o)] = n;
  }
  return c;
}

std::uint8_t clip8(std::int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Sums fit in int32 as in Pillow: |weights| sum to little more than 1 << 22 and
// pixels are below 1 << 8, leaving two bits of headroom. int32 lets the compiler
// vectorize; target_clones builds an AVX2 copy picked at run time, so the binary
// still runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__)
#define FLOWRUN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FLOWRUN_VECTOR_CLONES
#endif

FLOWRUN_VECTOR_CLONES
Image resize_horizontal(const Image& src, int width, Interpolation interpolation) {
  const Coefficients c = coefficients(src.width, width, interpolation);
  const int ch = src.channels;
  Image out = Image::u8_hwc(src.height, width, ch);
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    std::uint8_t* dst = out.row(y);
    for (int x = 0; x < width; ++x) {
      const std::int32_t* k = &c.weights[static_cast<std::size_t>(x) * c.taps];
      const int lo = c.first[static_cast<std::size_t>(x)], n = c.count[static_cast<std::size_t>(x)];
      const std::uint8_t* from = in + lo * ch;
      if (ch == 3) {
        std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int t = 0; t < n; ++t) {
          s0 += from[t * 3] * k[t];
          s1 += from[t * 3 + 1] * k[t];
          s2 += from[t * 3 + 2] * k[t];
        }
        dst[x * 3] = clip8(s0);
        dst[x * 3 + 1] = clip8(s1);
        dst[x * 3 + 2] = clip8(s2);
        continue;
      }
      for (int p = 0; p < ch; ++p) {
        std::int32_t sum = 1 << (kPrecisionBits - 1);
        for (int t = 0; t < n; ++t) sum += from[t * ch + p] * k[t];
        dst[x * ch + p] = clip8(sum);
      }
    }
  }
  return out;
}

FLOWRUN_VECTOR_CLONES
Image resize_vertical(const Image& src, int height, Interpolation interpolation) {
  const Coefficients c = coefficients(src.height, height, interpolation);
  const int ch = src.channels;
  const std::size_t row = static_cast<std::size_t>(src.width) * ch;
  Image out = Image::u8_hwc(height, src.width, ch);
  std::vector<std::int32_t> sums(row);
  for (int y = 0; y < height; ++y) {
    const std::int32_t* k = &c.weights[static_cast<std::size_t>(y) * c.taps];
    const int lo = c.first[static_cast<std::size_t>(y)], n = c.count[static_cast<std::size_t>(y)];
    std::int32_t* __restrict acc = sums.data();
    std::fill(acc, acc + row, std::int32_t{1} << (kPrecisionBits - 1));
    for (int t = 0; t < n; ++t) {
      const std::uint8_t* __restrict in = src.row(lo + t);
      const std::int32_t w = k[t];
      for (std::size_t i = 0; i < row; ++i) acc[i] += in[i] * w;
    }
    std::uint8_t* __restrict dst = out.row(y);
    for (std::size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::Bilinear;
  if (name == "bicubic") return Interpolation::Bicubic;
  throw std::invalid_argument("unknown interpolation '" + name + "'");
}

Image resize(const Image& src, int height, int width, Interpolation interpolation) {
  if (src.type != Image::Type::U8_HWC) throw std::invalid_argument("resize works on uint8 images; place it before normalize");
  if (height <= 0 || width <= 0) throw std::invalid_argument("resize to an empty size");
  // Pillow runs the horizontal pass first, except when the height shrinks while the
  // width grows (found by comparing both orders with Pillow 13 on every combination
  // of growing and shrinking; the fixtures cover each). The order matters: each pass
  // rounds to uint8, and bicubic's negative lobes clip.
  if (height < src.height && width > src.width) {
    return resize_horizontal(resize_vertical(src, height, interpolation), width, interpolation);
  }
  Image horizontal = width == src.width ? src : resize_horizontal(src, width, interpolation);
  return height == src.height ? horizontal : resize_vertical(horizontal, height, interpolation);
}

void resized_shape(int in_h, int in_w, const std::vector<std::int64_t>& size, int& out_h, int& out_w) {
  if (size.size() == 2) {
    out_h = static_cast<int>(size[0]);
    out_w = static_cast<int>(size[1]);
    return;
  }
  const auto s = static_cast<int>(size[0]);
  if (in_h <= in_w) {
    out_h = s;
    out_w = static_cast<int>(static_cast<std::int64_t>(s) * in_w / in_h);
  } else {
    out_w = s;
    out_h = static_cast<int>(static_cast<std::int64_t>(s) * in_h / in_w);
  }
}

}  // namespace flowrun
