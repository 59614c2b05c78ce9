// Decoding: JPEG variants made with TurboJPEG itself and PNGs made with libpng, the
// header-size check against decompression bombs, DCT downscaling, and corrupt input.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "stages/decode/image_decode.hpp"
#include "support/test_util.hpp"

namespace flowrun {
namespace {

// A smooth test picture (JPEG-friendly), RGB or 4-channel.
std::vector<std::uint8_t> gradient(int h, int w, int channels) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(h) * w * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        px[(static_cast<std::size_t>(y) * w + x) * channels + c] = static_cast<std::uint8_t>((x * 4 + y * 2 + c * 60) % 256);
  return px;
}

std::vector<std::uint8_t> encode_jpeg(const std::vector<std::uint8_t>& px, int h, int w, int pixel_format,
                                      int subsampling, int flags = 0) {
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj, px.data(), w, 0, h, pixel_format, &out, &size, subsampling, 95, flags);
  EXPECT_EQ(rc, 0) << tjGetErrorStr2(tj);
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  return bytes;
}

std::vector<std::uint8_t> encode_png(const std::vector<std::uint8_t>& px, int h, int w, png_uint_32 format) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(w);
  png.height = static_cast<png_uint_32>(h);
  png.format = format;
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&png, nullptr, &size, 0, px.data(), 0, nullptr));
  std::vector<std::uint8_t> bytes(size);
  EXPECT_TRUE(png_image_write_to_memory(&png, bytes.data(), &size, 0, px.data(), 0, nullptr));
  bytes.resize(size);
  return bytes;
}

double mean_abs_diff(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / static_cast<double>(a.size());
}

Image decode(const std::vector<std::uint8_t>& bytes, DecodeOptions options = {}) {
  return decode_image(bytes.data(), bytes.size(), options);
}

TEST(Decode, JpegVariantsBecomeRgb) {
  const int h = 24, w = 40;
  const auto rgb = gradient(h, w, 3);
  for (int subsampling : {TJSAMP_444, TJSAMP_422, TJSAMP_420}) {
    for (int flags : {0, TJFLAG_PROGRESSIVE}) {
      const Image image = decode(encode_jpeg(rgb, h, w, TJPF_RGB, subsampling, flags));
      ASSERT_EQ(image.height, h);
      ASSERT_EQ(image.width, w);
      ASSERT_EQ(image.channels, 3);
      EXPECT_LT(mean_abs_diff(image.u8, rgb), 6.0) << "subsampling " << subsampling << " flags " << flags;
    }
  }
}

TEST(Decode, GrayscaleJpegIsReplicatedToThreeChannels) {
  const auto gray = gradient(16, 16, 1);
  const Image image = decode(encode_jpeg(gray, 16, 16, TJPF_GRAY, TJSAMP_GRAY));
  ASSERT_EQ(image.channels, 3);
  for (std::size_t p = 0; p < image.pixel_count(); ++p) {
    EXPECT_EQ(image.u8[p * 3], image.u8[p * 3 + 1]);
    EXPECT_EQ(image.u8[p * 3], image.u8[p * 3 + 2]);
    EXPECT_NEAR(image.u8[p * 3], gray[p], 6);
  }
}

TEST(Decode, CmykJpegIsConvertedToRgb) {
  // Inverted (Adobe) CMYK as libjpeg stores it: C' = 255 - C. White paper with a
  // full-black stripe: K' = 0 there.
  const int h = 16, w = 16;
  std::vector<std::uint8_t> cmyk(static_cast<std::size_t>(h) * w * 4, 255);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < 8; ++x) cmyk[(static_cast<std::size_t>(y) * w + x) * 4 + 3] = 0;
  const Image image = decode(encode_jpeg(cmyk, h, w, TJPF_CMYK, TJSAMP_444));
  ASSERT_EQ(image.channels, 3);
  EXPECT_LT(image.u8[(4 * w + 2) * 3], 20);     // black stripe
  EXPECT_GT(image.u8[(4 * w + 13) * 3], 235);   // white paper
}

TEST(Decode, PillowWrittenJpegsDecodeAsPillowDecodesThem) {
  // CMYK (Adobe, inverted), grayscale and progressive 4:2:0 files that Pillow wrote, and
  // what Pillow's convert("RGB") gives: tools/make_decode_fixtures.py.
  const std::string dir = flowrun::testing::source_dir() + "/tests/fixtures/decode/";
  const auto expected = nlohmann::json::parse(flowrun::testing::read_file(dir + "expected.json"));
  int checked = 0;
  for (const auto& [name, file] : expected["files"].items()) {
    const std::string bytes = flowrun::testing::read_file(dir + name);
    const Image image = decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), {});
    const auto shape = file["shape"].get<std::vector<int>>();
    ASSERT_EQ((std::vector<int>{image.height, image.width, image.channels}), shape) << name;
    const auto rgb = file["rgb"].get<std::vector<int>>();
    for (std::size_t i = 0; i < rgb.size(); ++i)
      ASSERT_LE(std::abs(int(image.u8[i]) - rgb[i]), 1) << name << " at " << i
                                                        << "; regenerate with tools/make_decode_fixtures.py";
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(Decode, PngRgbGrayAndAlphaAreExact) {
  const int h = 9, w = 7;
  const auto rgb = gradient(h, w, 3);
  EXPECT_EQ(decode(encode_png(rgb, h, w, PNG_FORMAT_RGB)).u8, rgb);
  const auto rgba = gradient(h, w, 4);
  const Image from_rgba = decode(encode_png(rgba, h, w, PNG_FORMAT_RGBA));
  for (std::size_t p = 0; p < from_rgba.pixel_count(); ++p)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(from_rgba.u8[p * 3 + c], rgba[p * 4 + c]) << "alpha must be dropped, not blended";
  const auto gray = gradient(h, w, 1);
  const Image from_gray = decode(encode_png(gray, h, w, PNG_FORMAT_GRAY));
  for (std::size_t p = 0; p < from_gray.pixel_count(); ++p) ASSERT_EQ(from_gray.u8[p * 3 + 1], gray[p]);
}

TEST(Decode, FormatComesFromTheBytes) {
  const auto rgb = gradient(8, 8, 3);
  EXPECT_EQ(detect_image_format(encode_png(rgb, 8, 8, PNG_FORMAT_RGB).data(), 100), ImageFormat::Png);
  const auto jpeg = encode_jpeg(rgb, 8, 8, TJPF_RGB, TJSAMP_444);
  EXPECT_EQ(detect_image_format(jpeg.data(), jpeg.size()), ImageFormat::Jpeg);
}

TEST(Decode, OversizedHeadersAreRefusedBeforeAllocating) {
  auto jpeg = encode_jpeg(gradient(16, 16, 3), 16, 16, TJPF_RGB, TJSAMP_444);
  // Patch the frame header (SOF0: FF C0 len(2) precision(1) height(2) width(2)) to 60000 x 60000.
  for (std::size_t i = 0; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = 0xEA, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xEA, jpeg[i + 8] = 0x60;
      break;
    }
  }
  DecodeOptions options;
  options.max_pixels = 89478485;
  try {
    decode(jpeg, options);
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("60000x60000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_pixels"), std::string::npos) << e.what();
  }
}

TEST(Decode, DctScalingKeepsTheShorterSideAtLeastTheTarget) {
  const auto jpeg = encode_jpeg(gradient(64, 96, 3), 64, 96, TJPF_RGB, TJSAMP_420);
  DecodeOptions options;
  options.dct_min_size = 16;
  Image image = decode(jpeg, options);
  EXPECT_EQ(image.height, 16);  // 1/4 scale
  EXPECT_EQ(image.width, 24);
  options.dct_min_size = 20;
  image = decode(jpeg, options);
  EXPECT_GE(std::min(image.height, image.width), 20);
  EXPECT_LT(image.height, 64);
}

TEST(Decode, CorruptInputSaysWhat) {
  const std::vector<std::uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_THROW(decode(text), DecodeError);
  EXPECT_THROW(decode({}), DecodeError);
  auto jpeg = encode_jpeg(gradient(16, 16, 3), 16, 16, TJPF_RGB, TJSAMP_444);
  jpeg.resize(40);  // header cut short
  EXPECT_THROW(decode(jpeg), DecodeError);
  auto png = encode_png(gradient(8, 8, 3), 8, 8, PNG_FORMAT_RGB);
  png.resize(png.size() / 2);
  EXPECT_THROW(decode(png), DecodeError);
}

}  // namespace
}  // namespace flowrun
