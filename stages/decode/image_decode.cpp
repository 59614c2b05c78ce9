#include "stages/decode/image_decode.hpp"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>

namespace flowrun {
namespace {

// TurboJPEG handles are not thread-safe but are reusable: one per thread. After a
// decoding error the handle can be left in a state that fails the next, valid
// file, so an error replaces it (seen with libjpeg-turbo 2.1: a corrupt file made
// the following JPEG on the same thread fail at random).
struct ThreadDecompressor {
  tjhandle handle = nullptr;
  ~ThreadDecompressor() { reset(); }
  tjhandle get() {
    if (!handle) handle = tjInitDecompress();
    if (!handle) throw DecodeError("cannot create a TurboJPEG decompressor");
    return handle;
  }
  void reset() {
    if (handle) tjDestroy(handle);
    handle = nullptr;
  }
};
thread_local ThreadDecompressor t_decompressor;

// Throws DecodeError with TurboJPEG's message, replacing the thread's handle.
[[noreturn]] void jpeg_failure(const std::string& what, tjhandle tj) {
  const std::string message = what + tjGetErrorStr2(tj);
  t_decompressor.reset();
  throw DecodeError(message);
}

void check_pixels(std::int64_t width, std::int64_t height, const DecodeOptions& options) {
  if (width <= 0 || height <= 0) throw DecodeError("image header gives an empty size");
  if (options.max_pixels > 0 && width * height > options.max_pixels) {
    throw DecodeError("image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                      std::to_string(width * height) + " pixels, above max_pixels " +
                      std::to_string(options.max_pixels) + " (a decompression bomb?)");
  }
}

// The smallest TurboJPEG scaling factor (<= 1) that keeps the shorter side >= min_size.
tjscalingfactor pick_scale(int width, int height, int min_size) {
  tjscalingfactor best{1, 1};
  if (min_size <= 0) return best;
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  for (int i = 0; i < count; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num > f.denom) continue;
    const int w = TJSCALED(width, f), h = TJSCALED(height, f);
    const bool smaller = f.num * best.denom < best.num * f.denom;
    if (std::min(w, h) >= min_size && smaller) best = f;
  }
  return best;
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const DecodeOptions& options) {
  tjhandle tj = t_decompressor.get();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &width, &height, &subsampling, &colorspace) != 0) {
    jpeg_failure("not a readable JPEG: ", tj);
  }
  check_pixels(width, height, options);
  const tjscalingfactor scale = pick_scale(width, height, options.dct_min_size);
  const int out_w = TJSCALED(width, scale), out_h = TJSCALED(height, scale);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  Image image = Image::u8_hwc(out_h, out_w, 3);
  // TJFLAG_LIMITSCANS refuses progressive files with absurd scan counts (a CPU bomb).
  const int flags = TJFLAG_LIMITSCANS;
  if (!cmyk) {
    if (tjDecompress2(tj, data, static_cast<unsigned long>(size), image.u8.data(), out_w, 0, out_h, TJPF_RGB, flags) !=
        0) {
      // A warning (damaged but decodable data, as libjpeg decodes it) keeps the image.
      if (tjGetErrorCode(tj) == TJERR_FATAL) jpeg_failure("corrupt JPEG: ", tj);
      t_decompressor.reset();
    }
    return image;
  }
  // CMYK/YCCK (Adobe, stored inverted): decode the four channels, then
  // R = C*K/255 on the stored values, as PIL does for such files.
  std::vector<std::uint8_t> four(static_cast<std::size_t>(out_w) * out_h * 4);
  if (tjDecompress2(tj, data, static_cast<unsigned long>(size), four.data(), out_w, 0, out_h, TJPF_CMYK, flags) != 0) {
    if (tjGetErrorCode(tj) == TJERR_FATAL) jpeg_failure("corrupt CMYK JPEG: ", tj);
    t_decompressor.reset();
  }
  for (std::size_t p = 0, n = image.pixel_count(); p < n; ++p) {
    const unsigned k = four[p * 4 + 3];
    for (int c = 0; c < 3; ++c) image.u8[p * 3 + c] = static_cast<std::uint8_t>((four[p * 4 + c] * k + 127) / 255);
  }
  return image;
}

Image decode_png(const std::uint8_t* data, std::size_t size, const DecodeOptions& options) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) {
    throw DecodeError(std::string("not a readable PNG: ") + png.message);
  }
  std::unique_ptr<png_image, void (*)(png_image*)> guard(&png, png_image_free);
  check_pixels(png.width, png.height, options);
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  // Read with alpha when there is one and drop it afterwards: the simplified API
  // would otherwise composite onto black, which PIL's convert("RGB") does not.
  png.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  const int channels = alpha ? 4 : 3;
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(png.width) * png.height * channels);
  if (!png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr)) {
    throw DecodeError(std::string("corrupt PNG: ") + png.message);
  }
  Image image = Image::u8_hwc(static_cast<int>(png.height), static_cast<int>(png.width), 3);
  if (!alpha) {
    image.u8 = std::move(pixels);
    return image;
  }
  for (std::size_t p = 0, n = image.pixel_count(); p < n; ++p)
    for (int c = 0; c < 3; ++c) image.u8[p * 3 + c] = pixels[p * 4 + c];
  return image;
}

}  // namespace

ImageFormat detect_image_format(const std::uint8_t* d, std::size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::Jpeg;
  static const std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(d, kPng, 8) == 0) return ImageFormat::Png;
  return ImageFormat::Unknown;
}

Image decode_image(const std::uint8_t* data, std::size_t size, const DecodeOptions& options) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::Jpeg: return decode_jpeg(data, size, options);
    case ImageFormat::Png: return decode_png(data, size, options);
    case ImageFormat::Unknown: break;
  }
  throw DecodeError(size == 0 ? "empty file" : "neither JPEG nor PNG (unrecognised first bytes)");
}

}  // namespace flowrun
