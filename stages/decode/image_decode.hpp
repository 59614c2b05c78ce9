// Decoding JPEG (libjpeg-turbo's TurboJPEG) and PNG (libpng) bytes into RGB uint8
// HWC images, whatever the input: grayscale, CMYK/YCCK, progressive, any chroma
// subsampling, palette, 16-bit, alpha (dropped, as PIL's convert("RGB") does). The
// format is detected from the bytes, never from the file name. Sizes are checked
// from the header before any pixel memory is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "stages/messages/sample.hpp"

namespace flowrun {

enum class ImageFormat { Jpeg, Png, Unknown };
ImageFormat detect_image_format(const std::uint8_t* data, std::size_t size);

struct DecodeOptions {
  std::int64_t max_pixels = 0;  // refuse larger images (decompression bombs); 0 = unlimited
  int dct_min_size = 0;         // JPEG: shrink in the DCT domain while the shorter side stays >= this; 0 = off
};

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws DecodeError saying what is wrong with the bytes.
Image decode_image(const std::uint8_t* data, std::size_t size, const DecodeOptions& options);

}  // namespace flowrun
