// jpeg_decode: encoded bytes (JPEG or PNG, told apart by their first bytes) to RGB
// uint8 HWC pixels, on as many threads as the graph gives it.
//
//   {"id": "decode", "plugin": "jpeg_decode", "params": {"on_error": "skip"}}
//
// A file that cannot be decoded either fails the run (the message names it) or is
// skipped: logged with its key, counted, and carried on as a skip so that batch
// composition stays deterministic and no label shifts.
#include <atomic>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "stages/decode/decode_plugins.hpp"
#include "stages/decode/image_decode.hpp"

namespace flowrun {
namespace {

enum class OnError { Fail, Skip };

struct DecodeStageOptions {
  OnError on_error = OnError::Fail;
  std::int64_t max_pixels = 89478485;  // PIL's MAX_IMAGE_PIXELS
  int dct_min_size = 0;                // no DCT scaling
  template <typename D>
  static void declare(D& d) {
    d(&DecodeStageOptions::on_error, "on_error",
      "a file that cannot be decoded: fail the run naming it, or skip it (logged, counted)",
      {{"fail", OnError::Fail}, {"skip", OnError::Skip}});
    d(&DecodeStageOptions::max_pixels, "max_pixels", "refuse images with more pixels than this; 0 = no limit").min(0);
    d(&DecodeStageOptions::dct_min_size, "dct_min_size",
      "JPEG only: decode at a reduced DCT scale while the shorter side stays >= this; 0 = full size")
        .range(0, 65535);
  }
};

class DecodeStage : public MapStage {
 public:
  explicit DecodeStage(const StageArgs& args) : DecodeStage(args, read_options<DecodeStageOptions>(args.params)) {}
  DecodeStage(const StageArgs& args, const DecodeStageOptions& o) : MapStage(args), skip_(o.on_error == OnError::Skip) {
    options_.max_pixels = o.max_pixels;
    options_.dct_min_size = o.dct_min_size;
  }

  std::shared_ptr<const Payload> process(const Message& in) override {
    const auto& encoded = in.as<EncodedSample>();
    auto out = std::make_shared<ImageSample>();
    out->info = encoded.info;
    try {
      out->image = decode_image(encoded.data, encoded.size, options_);
    } catch (const DecodeError& e) {
      if (!skip_) throw std::runtime_error("cannot decode " + encoded.info.key() + ": " + e.what());
      ++skipped_;
      log::warn("[", node_id(), "] skipping ", encoded.info.key(), ": ", e.what());
      return nullptr;
    }
    return out;
  }

  void stop(StopReason) override {
    if (skipped_ > 0) log::warn("[", node_id(), "] ", skipped_.load(), " undecodable file(s) skipped in this run");
  }

 private:
  bool skip_;
  DecodeOptions options_;
  std::atomic<std::uint64_t> skipped_{0};
};

}  // namespace

PluginInfo jpeg_decode_plugin() {
  PluginInfo p;
  p.name = "jpeg_decode";
  p.summary = "Decodes JPEG (libjpeg-turbo) and PNG bytes to RGB uint8 images";
  p.description =
      "Detects the format from the bytes. JPEG of any kind (baseline, progressive, grayscale,\n"
      "CMYK/YCCK, any chroma subsampling) and PNG (palette, gray, 16-bit, alpha dropped) become\n"
      "RGB uint8 HWC. The pixel count is checked from the header before any allocation. With\n"
      "dct_min_size, a JPEG is decoded directly at 1/2, 1/4 or 1/8 scale (much faster) while its\n"
      "shorter side stays at least that large: set it to the size a later resize produces.\n"
      "\n"
      "  {\"id\": \"decode\", \"plugin\": \"jpeg_decode\", \"params\": {\"on_error\": \"skip\"}}";
  p.role = Role::Map;
  p.inputs = {{"in", kEncodedSampleKind, "encoded images"}};
  p.outputs = {{"out", kImageSampleKind, "decoded RGB images, uint8 HWC"}};
  declare_options<DecodeStageOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<DecodeStage>(args); };
  return p;
}

}  // namespace flowrun
