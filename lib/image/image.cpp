#include "lib/image/image.hpp"

namespace flowrun {

Image Image::u8_hwc(int height, int width, int channels) {
  Image image;
  image.type = Type::U8_HWC;
  image.height = height;
  image.width = width;
  image.channels = channels;
  image.u8.resize(static_cast<std::size_t>(height) * width * channels);
  return image;
}

}  // namespace flowrun
