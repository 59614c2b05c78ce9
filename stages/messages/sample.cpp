#include "stages/messages/sample.hpp"

namespace flowrun {

const std::string& SampleInfo::key() const {
  static const std::string none;
  return shared_key ? *shared_key : none;
}

std::string EncodedSample::describe() const {
  return "encoded " + info.key() + " label " + std::to_string(info.label) + " (" + std::to_string(size) + " bytes)";
}

std::string ImageSample::describe() const {
  return std::string(image.type == Image::Type::U8_HWC ? "image u8 " : "tensor f32 ") + std::to_string(image.height) +
         "x" + std::to_string(image.width) + "x" + std::to_string(image.channels) + " label " +
         std::to_string(info.label) + " " + info.key();
}

std::shared_ptr<const Payload> with_image(const Message& in, Image image) {
  auto out = std::make_shared<ImageSample>();
  out->info = in.as<ImageSample>().info;
  out->image = std::move(image);
  return out;
}

}  // namespace flowrun
