// Payloads of the image data path and their port kinds:
//
//   sample/encoded  EncodedSample  the file's bytes (JPEG, PNG) as stored, plus label and key
//   sample/image    ImageSample    decoded pixels: uint8, H x W x C (HWC), RGB
//   sample/tensor   ImageSample    normalized pixels: float32, C x H x W (CHW)
//
// Legend: N batch, C channels (3, RGB), H height, W width.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/message.hpp"
#include "lib/image/image.hpp"

namespace flowrun {

constexpr const char* kEncodedSampleKind = "sample/encoded";
constexpr const char* kImageSampleKind = "sample/image";
constexpr const char* kTensorSampleKind = "sample/tensor";
constexpr const char* kImageOrTensorKind = "sample/image|sample/tensor";

// What a dataset source is emitting, shared by all its samples: lets the batcher
// and the train step know the class names and the length of training (for
// learning-rate schedules) without being told twice.
struct DatasetInfo {
  std::string source;                // node id of the source
  std::vector<std::string> classes;  // label -> name
  std::uint64_t epoch_size = 0;      // samples per epoch (this rank)
  std::uint64_t epochs = 0;
};

// Where a sample came from and what it is: travels with it through every stage.
struct SampleInfo {
  SampleInfo() = default;
  SampleInfo(std::int64_t label_, std::string key_)
      : label(label_), shared_key(std::make_shared<const std::string>(std::move(key_))) {}
  SampleInfo(std::int64_t label_, std::shared_ptr<const std::string> key_) : label(label_), shared_key(std::move(key_)) {}

  // Path or tar member name, for messages. Shared, not copied, from stage to stage.
  const std::string& key() const;

  std::int64_t label = -1;
  std::uint64_t position = 0;  // in its epoch's order: where a resumed stream continues
  std::shared_ptr<const std::string> shared_key;
  std::shared_ptr<const DatasetInfo> dataset;  // null for samples made outside a dataset source
};

struct EncodedSample : Payload {
  SampleInfo info;
  const std::uint8_t* data = nullptr;  // points into `owner` (a file buffer or a mapped tar)
  std::size_t size = 0;
  std::shared_ptr<const void> owner;

  std::string describe() const override;
};

struct ImageSample : Payload {
  SampleInfo info;
  Image image;

  std::string describe() const override;
};

// A new sample with the label and key of `in` (an ImageSample) and other pixels: what
// every augmentation returns.
std::shared_ptr<const Payload> with_image(const Message& in, Image image);

}  // namespace flowrun
