// Per-sample CPU augmentations, one plugin each, parameters named as torchvision
// names them. Each stage chooses its random parameters from the item's own random
// stream and calls the pure operations in image_ops.hpp.
//
//   {"id": "crop", "plugin": "random_crop", "params": {"size": [32], "padding": [4], "padding_mode": "reflect"}}
//   {"id": "flip", "plugin": "horizontal_flip", "params": {"p": 0.5}}
//   {"id": "norm", "plugin": "normalize", "params": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.243, 0.261]}}
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lib/image/image_ops.hpp"
#include "lib/image/resample.hpp"
#include "stages/augment/augment_plugins.hpp"
#include "stages/augment/color_ops.hpp"
#include "stages/common/augment_params.hpp"

namespace flowrun {
namespace {

using augment_params::kCropSizeDoc;

struct RandomCropOptions {
  std::vector<std::int64_t> size;
  std::vector<std::int64_t> padding;
  bool pad_if_needed = false;
  std::vector<std::int64_t> fill = {0};
  PadMode padding_mode = PadMode::Constant;
  template <typename D>
  static void declare(D& d) {
    using O = RandomCropOptions;
    d.required(&O::size, "size", kCropSizeDoc).min_length(1).max_length(2).range(1, 65535);
    d(&O::padding, "padding", "pixels added before cropping: [all], [left/right, top/bottom] or [left, top, right, "
                              "bottom]; [] = none")
        .max_length(4)
        .range(0, 65535);
    d(&O::pad_if_needed, "pad_if_needed", "pad images smaller than size (by the shortfall on both sides)");
    d(&O::fill, "fill", "constant padding value: [v] or [r, g, b]").min_length(1).max_length(3).range(0, 255);
    d(&O::padding_mode, "padding_mode", "how padding pixels are made (as torchvision's padding_mode)",
      {{"constant", PadMode::Constant}, {"edge", PadMode::Edge}, {"reflect", PadMode::Reflect}, {"symmetric", PadMode::Symmetric}});
  }
};

struct CenterCropOptions {
  std::vector<std::int64_t> size;
  template <typename D>
  static void declare(D& d) {
    d.required(&CenterCropOptions::size, "size", kCropSizeDoc).min_length(1).max_length(2).range(1, 65535);
  }
};

struct ColorJitterOptions {
  std::vector<double> brightness = {0.0}, contrast = {0.0}, saturation = {0.0}, hue = {0.0};
  template <typename D>
  static void declare(D& d) {
    using O = ColorJitterOptions;
    d(&O::brightness, "brightness", "[f] or [low, high] brightness factor; [0] = off").min_length(1).max_length(2).range(0, 100).ascending();
    d(&O::contrast, "contrast", "[f] or [low, high] contrast factor; [0] = off").min_length(1).max_length(2).range(0, 100).ascending();
    d(&O::saturation, "saturation", "[f] or [low, high] saturation factor; [0] = off").min_length(1).max_length(2).range(0, 100).ascending();
    d(&O::hue, "hue", "[h] or [low, high] hue shift, within [-0.5, 0.5]; [0] = off").min_length(1).max_length(2).range(-0.5, 0.5).ascending();
  }
};

struct Size {
  int height;
  int width;
};

// torchvision's size convention: [s] is s x s, [h, w] is h x w.
Size parse_size(const std::vector<std::int64_t>& v) {
  return v.size() == 1 ? Size{static_cast<int>(v[0]), static_cast<int>(v[0])}
                       : Size{static_cast<int>(v[0]), static_cast<int>(v[1])};
}

class RandomCrop : public MapStage {
 public:
  explicit RandomCrop(const StageArgs& args) : RandomCrop(args, read_options<RandomCropOptions>(args.params)) {}
  RandomCrop(const StageArgs& args, const RandomCropOptions& o)
      : MapStage(args), size_(parse_size(o.size)), pad_if_needed_(o.pad_if_needed), mode_(o.padding_mode) {
    const auto& padding = o.padding;
    // torchvision: [p] all sides, [lr, tb], or [left, top, right, bottom].
    if (padding.size() == 1) pad_ = {padding[0], padding[0], padding[0], padding[0]};
    else if (padding.size() == 2) pad_ = {padding[0], padding[1], padding[0], padding[1]};
    else if (padding.size() == 4) pad_ = {padding[0], padding[1], padding[2], padding[3]};
    else if (!padding.empty()) throw std::invalid_argument("padding takes 1, 2 or 4 values, got " + std::to_string(padding.size()));
    const auto& fill = o.fill;
    for (std::size_t k = 0; k < 3; ++k) fill_[k] = static_cast<std::uint8_t>(fill[k % fill.size()]);
  }

  std::shared_ptr<const Payload> process(const Message& in) override {
    const Image& image = in.as<ImageSample>().image;
    // The padded image's extent, in source coordinates: [-pad_top, h + pad_bottom).
    int top = -static_cast<int>(pad_[1]), left = -static_cast<int>(pad_[0]);
    int height = image.height + static_cast<int>(pad_[1] + pad_[3]);
    int width = image.width + static_cast<int>(pad_[0] + pad_[2]);
    if (pad_if_needed_ && width < size_.width) {  // torchvision pads both sides by the shortfall
      left -= size_.width - width;
      width += 2 * (size_.width - width);
    }
    if (pad_if_needed_ && height < size_.height) {
      top -= size_.height - height;
      height += 2 * (size_.height - height);
    }
    if (height < size_.height || width < size_.width) {
      throw std::runtime_error("image " + in.as<ImageSample>().info.key() + " is " + std::to_string(height) + "x" +
                               std::to_string(width) + " after padding, smaller than the crop " +
                               std::to_string(size_.height) + "x" + std::to_string(size_.width) +
                               "; set pad_if_needed or resize first");
    }
    Rng rng = item_rng(in);
    const int i = static_cast<int>(rng.below(static_cast<std::uint64_t>(height - size_.height + 1)));
    const int j = static_cast<int>(rng.below(static_cast<std::uint64_t>(width - size_.width + 1)));
    return with_image(in, crop_padded(image, top + i, left + j, size_.height, size_.width, mode_, fill_));
  }

 private:
  Size size_;
  bool pad_if_needed_;
  PadMode mode_;
  std::array<std::int64_t, 4> pad_{0, 0, 0, 0};  // left, top, right, bottom
  std::array<std::uint8_t, 3> fill_{0, 0, 0};
};

class CenterCrop : public MapStage {
 public:
  explicit CenterCrop(const StageArgs& args)
      : MapStage(args), size_(parse_size(read_options<CenterCropOptions>(args.params).size)) {}
  std::shared_ptr<const Payload> process(const Message& in) override {
    return with_image(in, center_crop(in.as<ImageSample>().image, size_.height, size_.width));
  }

 private:
  Size size_;
};

class HorizontalFlip : public MapStage {
 public:
  explicit HorizontalFlip(const StageArgs& args) : MapStage(args), p_(read_options<FlipOptions>(args.params).p) {}
  std::shared_ptr<const Payload> process(const Message& in) override {
    if (!item_rng(in).bernoulli(p_)) return in.payload;  // unchanged: pass the same payload on
    return with_image(in, flip_horizontal(in.as<ImageSample>().image));
  }

 private:
  double p_;
};

class Normalize : public MapStage {
 public:
  explicit Normalize(const StageArgs& args) : Normalize(args, read_options<NormalizeOptions>(args.params)) {}
  Normalize(const StageArgs& args, const NormalizeOptions& o) : MapStage(args), table_(o.mean, o.std) {}
  std::shared_ptr<const Payload> process(const Message& in) override {
    return with_image(in, normalize(in.as<ImageSample>().image, table_));
  }

 private:
  NormalizeTable table_;
};

class Resize : public MapStage {
 public:
  explicit Resize(const StageArgs& args) : Resize(args, read_options<ResizeOptions>(args.params)) {}
  Resize(const StageArgs& args, const ResizeOptions& o) : MapStage(args), size_(o.size), interpolation_(o.interpolation) {}
  std::shared_ptr<const Payload> process(const Message& in) override {
    const Image& image = in.as<ImageSample>().image;
    int h = 0, w = 0;
    resized_shape(image.height, image.width, size_, h, w);
    if (h == image.height && w == image.width) return in.payload;
    return with_image(in, resize(image, h, w, interpolation_));
  }

 private:
  std::vector<std::int64_t> size_;
  Interpolation interpolation_;
};

class RandomResizedCrop : public MapStage {
 public:
  explicit RandomResizedCrop(const StageArgs& args)
      : RandomResizedCrop(args, read_options<RandomResizedCropOptions>(args.params)) {}
  RandomResizedCrop(const StageArgs& args, const RandomResizedCropOptions& o)
      : MapStage(args), size_(parse_size(o.size)), scale_(o.scale), ratio_(o.ratio), interpolation_(o.interpolation) {}

  std::shared_ptr<const Payload> process(const Message& in) override {
    const Image& image = in.as<ImageSample>().image;
    Rng rng = item_rng(in);
    const CropWindow win = random_resized_crop_window(image.height, image.width, scale_, ratio_, rng);
    const Image cropped = crop_padded(image, win.top, win.left, win.height, win.width, PadMode::Constant);
    return with_image(in, resize(cropped, size_.height, size_.width, interpolation_));
  }

 private:
  Size size_;
  std::vector<double> scale_, ratio_;
  Interpolation interpolation_;
};

// torchvision's RandomErasing: with probability p, a window of a `scale` share of
// the area and an aspect ratio drawn log-uniformly from `ratio` (10 attempts, else
// nothing) is overwritten with `value` or with standard-normal noise. Works on uint8
// images and on normalized float samples (where it usually goes, after normalize).
class RandomErasing : public MapStage {
 public:
  explicit RandomErasing(const StageArgs& args) : RandomErasing(args, read_options<RandomErasingOptions>(args.params)) {}
  RandomErasing(const StageArgs& args, const RandomErasingOptions& o)
      : MapStage(args), p_(o.p), scale_(o.scale), ratio_(o.ratio), value_(o.value), noise_(o.random_value) {}

  std::shared_ptr<const Payload> process(const Message& in) override {
    Rng rng = item_rng(in);
    if (!rng.bernoulli(p_)) return in.payload;
    const Image& image = in.as<ImageSample>().image;
    CropWindow w{0, 0, 0, 0};
    if (random_erasing_window(image.height, image.width, scale_, ratio_, rng, w)) {
      Image out = image;
      erase_window(out, w.top, w.left, w.height, w.width, rng);
      return with_image(in, std::move(out));
    }
    return in.payload;  // no window fitted: unchanged, as torchvision
  }

 private:
  void erase_window(Image& image, int top, int left, int h, int w, Rng& rng) const {
    for (int c = 0; c < image.channels; ++c) {
      const double fill = value_[static_cast<std::size_t>(c) % value_.size()];
      for (int y = top; y < top + h; ++y) {
        for (int x = left; x < left + w; ++x) {
          const double v = noise_ ? rng.normal() : fill;
          if (image.type == Image::Type::F32_CHW) {
            image.f32[(static_cast<std::size_t>(c) * image.height + y) * image.width + x] = static_cast<float>(v);
          } else {
            image.u8[(static_cast<std::size_t>(y) * image.width + x) * image.channels + c] =
                static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0, 255.0));
          }
        }
      }
    }
  }

  double p_;
  std::vector<double> scale_, ratio_, value_;
  bool noise_;
};

// torchvision's ColorJitter: the four adjustments in a random order, each with a
// factor drawn uniformly from its range ([f] means [max(0, 1 - f), 1 + f]; hue [h]
// means [-h, h]); an adjustment whose range is [0] is off.
class ColorJitter : public MapStage {
 public:
  explicit ColorJitter(const StageArgs& args) : ColorJitter(args, read_options<ColorJitterOptions>(args.params)) {}
  ColorJitter(const StageArgs& args, const ColorJitterOptions& o)
      : MapStage(args),
        ranges_{factor_range(o.brightness), factor_range(o.contrast), factor_range(o.saturation), hue_range(o.hue)} {}

  std::shared_ptr<const Payload> process(const Message& in) override {
    Rng rng = item_rng(in);
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<std::uint64_t>(i + 1))]);
    double factors[4];
    for (int k = 0; k < 4; ++k) factors[k] = ranges_[k].active ? rng.uniform(ranges_[k].lo, ranges_[k].hi) : 0;
    Image image = in.as<ImageSample>().image;
    for (int k : order) {
      if (!ranges_[k].active) continue;
      switch (k) {
        case 0: image = adjust_brightness(image, factors[k]); break;
        case 1: image = adjust_contrast(image, factors[k]); break;
        case 2: image = adjust_saturation(image, factors[k]); break;
        case 3: image = adjust_hue(image, factors[k]); break;
      }
    }
    return with_image(in, std::move(image));
  }

 private:
  struct Range {
    bool active = false;
    double lo = 0, hi = 0;
  };
  static Range factor_range(const std::vector<double>& v) {
    if (v.size() == 1) return v[0] == 0 ? Range{} : Range{true, std::max(0.0, 1 - v[0]), 1 + v[0]};
    return Range{true, v[0], v[1]};
  }
  static Range hue_range(const std::vector<double>& v) {
    if (v.size() == 1) return v[0] == 0 ? Range{} : Range{true, -v[0], v[0]};
    return Range{true, v[0], v[1]};
  }
  Range ranges_[4];
};

PluginInfo image_map(const std::string& name, const std::string& summary, const std::string& description) {
  PluginInfo p;
  p.name = name;
  p.summary = summary;
  p.description = description;
  p.role = Role::Map;
  p.inputs = {{"in", kImageSampleKind, "RGB images, uint8 HWC"}};
  p.outputs = {{"out", kImageSampleKind, "transformed images, uint8 HWC"}};
  return p;
}

}  // namespace

PluginInfo random_crop_plugin() {
  PluginInfo p = image_map(
      "random_crop", "Crops a random window, after optional padding (torchvision RandomCrop)",
      "Pads the image (padding, padding_mode, fill), then cuts a size window at a position drawn\n"
      "uniformly from the item's random stream. The pixels of a given window match\n"
      "torchvision's F.crop(F.pad(...)) exactly.\n"
      "\n"
      "  {\"id\": \"crop\", \"plugin\": \"random_crop\", \"params\": {\"size\": [32], \"padding\": [4]}}");
  declare_options<RandomCropOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<RandomCrop>(args); };
  return p;
}

PluginInfo resize_plugin() {
  PluginInfo p = image_map("resize", "Resizes images, antialiased, as PIL and torchvision do (Resize)",
                           "[s] scales the shorter side to s keeping the aspect ratio (the longer side becomes\n"
                           "int(s * long / short)); [h, w] resizes to exactly that. Shrinking widens the filter\n"
                           "(antialiasing), as PIL does; values match torchvision on PIL images within one grey level.\n"
                           "\n"
                           "  {\"id\": \"resize\", \"plugin\": \"resize\", \"params\": {\"size\": [256]}}");
  declare_options<ResizeOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<Resize>(args); };
  return p;
}

PluginInfo random_resized_crop_plugin() {
  PluginInfo p = image_map(
      "random_resized_crop", "Crops a random area and aspect ratio, then resizes (RandomResizedCrop)",
      "Draws a window covering a `scale` share of the image with an aspect ratio drawn\n"
      "log-uniformly from `ratio` (10 attempts, then a central fallback), exactly as torchvision's\n"
      "get_params does, from the item's own random stream; then crops and resizes it to size.\n"
      "\n"
      "  {\"id\": \"crop\", \"plugin\": \"random_resized_crop\", \"params\": {\"size\": [224]}}");
  declare_options<RandomResizedCropOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<RandomResizedCrop>(args); };
  return p;
}

PluginInfo color_jitter_plugin() {
  PluginInfo p = image_map(
      "color_jitter", "Random brightness, contrast, saturation and hue, in random order (ColorJitter)",
      "Applies the four adjustments in an order drawn per item, each with a factor drawn uniformly\n"
      "from its range: [f] means [max(0, 1 - f), 1 + f] (hue: [-h, h]), [low, high] is used as\n"
      "given, [0] turns an adjustment off. The adjustments match torchvision's functional ones on\n"
      "uint8 tensors within one grey level (tests/fixtures).\n"
      "\n"
      "  {\"id\": \"jitter\", \"plugin\": \"color_jitter\",\n"
      "   \"params\": {\"brightness\": [0.4], \"contrast\": [0.4], \"saturation\": [0.4], \"hue\": [0.1]}}");
  declare_options<ColorJitterOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<ColorJitter>(args); };
  return p;
}

PluginInfo random_erasing_plugin() {
  PluginInfo p;
  p.name = "random_erasing";
  p.summary = "Erases a random rectangle with probability p (torchvision RandomErasing)";
  p.description =
      "With probability p, overwrites a window covering a `scale` share of the image, aspect ratio\n"
      "log-uniform in `ratio` (10 attempts, else unchanged), with `value` per channel or, with\n"
      "random_value, standard-normal noise per pixel (timm's 'pixel' mode). Usually placed after\n"
      "normalize, on float samples; on uint8 images values are rounded and clamped to [0, 255].\n"
      "\n"
      "  {\"id\": \"erase\", \"plugin\": \"random_erasing\", \"params\": {\"p\": 0.25, \"random_value\": true}}";
  p.role = Role::Map;
  p.inputs = {{"in", kImageOrTensorKind, "uint8 images or normalized float samples"}};
  p.outputs = {{"out", kSameKind, "the same kind, with a rectangle erased"}};
  declare_options<RandomErasingOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<RandomErasing>(args); };
  return p;
}

PluginInfo center_crop_plugin() {
  PluginInfo p = image_map("center_crop", "Crops the central window (torchvision CenterCrop)",
                           "Cuts the central size window; a crop larger than the image pads with zeros first,\n"
                           "as torchvision does.\n"
                           "\n"
                           "  {\"id\": \"crop\", \"plugin\": \"center_crop\", \"params\": {\"size\": [224]}}");
  declare_options<CenterCropOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<CenterCrop>(args); };
  return p;
}

PluginInfo horizontal_flip_plugin() {
  PluginInfo p = image_map("horizontal_flip", "Mirrors images left-right with probability p (RandomHorizontalFlip)",
                           "  {\"id\": \"flip\", \"plugin\": \"horizontal_flip\", \"params\": {\"p\": 0.5}}");
  declare_options<FlipOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<HorizontalFlip>(args); };
  return p;
}

PluginInfo normalize_plugin() {
  PluginInfo p = image_map("normalize", "Scales to [0, 1], subtracts mean, divides by std; float32 CHW out",
                           "torchvision's ToTensor followed by Normalize, computed in float32 the same way:\n"
                           "((x / 255) - mean) / std per channel, laid out C x H x W.\n"
                           "\n"
                           "  {\"id\": \"norm\", \"plugin\": \"normalize\",\n"
                           "   \"params\": {\"mean\": [0.4914, 0.4822, 0.4465], \"std\": [0.247, 0.243, 0.261]}}");
  p.outputs = {{"out", kTensorSampleKind, "normalized images, float32 CHW"}};
  declare_options<NormalizeOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<Normalize>(args); };
  return p;
}

}  // namespace flowrun
