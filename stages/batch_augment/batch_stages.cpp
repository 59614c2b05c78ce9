// The batch twins of the per-sample CPU augmentations: the same parameters, names
// and defaults as horizontal_flip, normalize, resize, random_resized_crop and
// random_erasing, applied to a whole (N, C, H, W) batch on its device. Each sample's
// random parameters come from the stream its CPU twin would use (keyed on the node
// id, the epoch and the sample's dataset index), so a twin under the same node id
// makes the same draws: swapping one for the other changes where the work runs, not
// which crops or flips a run sees.
//
//   {"id": "flip", "plugin": "batch_flip", "params": {"p": 0.5}}
//   {"id": "crop", "plugin": "batch_random_resized_crop", "params": {"size": [224], "scale": [0.5, 1.0]}}
//   {"id": "norm", "plugin": "batch_normalize", "params": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
#include <ATen/ATen.h>


#include "stages/batch_augment/batch_augment_plugins.hpp"
#include "stages/batch_augment/batch_ops.hpp"
#include "stages/batch_augment/batch_transform.hpp"
#include "stages/common/augment_params.hpp"
#include "stages/common/batch_checks.hpp"

namespace flowrun {

std::vector<std::int64_t> BatchTransform::dataset_indices(const Batch& batch) {
  const at::Tensor host = batch.indices.to(at::kCPU, at::kLong).contiguous();
  const auto* p = host.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(p, p + host.numel());
}

PluginInfo batch_transform_plugin(const std::string& name, const std::string& summary, const std::string& description) {
  PluginInfo p;
  p.name = name;
  p.summary = summary;
  p.description = description;
  p.role = Role::Ordered;
  p.inputs = {{"in", kBatchKind, "batches (N, C, H, W), uint8 or float, on any device"}};
  p.outputs = {{"out", kBatchKind, "the batches transformed, on the same device"}};
  return p;
}

namespace {

struct OutputSize {
  std::int64_t height, width;
};
OutputSize square_or_pair(const std::vector<std::int64_t>& v) { return v.size() == 1 ? OutputSize{v[0], v[0]} : OutputSize{v[0], v[1]}; }


class BatchFlip : public BatchTransform {
 public:
  explicit BatchFlip(const StageArgs& args) : BatchTransform(args), p_(read_options<FlipOptions>(args.params).p) {}

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>& self) override {
    const std::vector<std::int64_t> indices = dataset_indices(batch);
    std::vector<bool> flip;
    for (std::int64_t index : indices) flip.push_back(item_rng(batch.epoch, static_cast<std::uint64_t>(index)).bernoulli(p_));
    at::Tensor images = flip_samples(batch.images, flip);
    if (images.is_same(batch.images)) return self;
    return with_images(batch, std::move(images));
  }

 private:
  double p_;
};

class BatchNormalize : public BatchTransform {
 public:
  explicit BatchNormalize(const StageArgs& args) : BatchNormalize(args, read_options<NormalizeOptions>(args.params)) {}
  BatchNormalize(const StageArgs& args, const NormalizeOptions& o) : BatchTransform(args), mean_(o.mean), std_(o.std) {}

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>&) override {
    return with_images(batch, normalize_batch(batch.images, mean_, std_));
  }

 private:
  std::vector<double> mean_, std_;
};

class BatchResize : public BatchTransform {
 public:
  explicit BatchResize(const StageArgs& args) : BatchResize(args, read_options<ResizeOptions>(args.params)) {}
  BatchResize(const StageArgs& args, const ResizeOptions& o)
      : BatchTransform(args), size_(o.size), interpolation_(o.interpolation) {}

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>& self) override {
    int h = 0, w = 0;
    resized_shape(static_cast<int>(batch.images.size(2)), static_cast<int>(batch.images.size(3)), size_, h, w);
    at::Tensor images = resize_batch(batch.images, h, w, interpolation_);
    if (images.is_same(batch.images)) return self;
    return with_images(batch, std::move(images));
  }

 private:
  std::vector<std::int64_t> size_;
  Interpolation interpolation_;
};

class BatchRandomResizedCrop : public BatchTransform {
 public:
  explicit BatchRandomResizedCrop(const StageArgs& args)
      : BatchRandomResizedCrop(args, read_options<RandomResizedCropOptions>(args.params)) {}
  BatchRandomResizedCrop(const StageArgs& args, const RandomResizedCropOptions& o)
      : BatchTransform(args), size_(square_or_pair(o.size)), scale_(o.scale), ratio_(o.ratio), interpolation_(o.interpolation) {}

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>&) override {
    const int height = static_cast<int>(batch.images.size(2)), width = static_cast<int>(batch.images.size(3));
    std::vector<CropWindow> windows;
    for (std::int64_t index : dataset_indices(batch)) {
      Rng rng = item_rng(batch.epoch, static_cast<std::uint64_t>(index));
      windows.push_back(random_resized_crop_window(height, width, scale_, ratio_, rng));
    }
    return with_images(batch, resized_crops(batch.images, windows, size_.height, size_.width, interpolation_));
  }

 private:
  OutputSize size_;
  std::vector<double> scale_, ratio_;
  Interpolation interpolation_;
};

class BatchRandomErasing : public BatchTransform {
 public:
  explicit BatchRandomErasing(const StageArgs& args)
      : BatchRandomErasing(args, read_options<RandomErasingOptions>(args.params)) {}
  BatchRandomErasing(const StageArgs& args, const RandomErasingOptions& o)
      : BatchTransform(args), p_(o.p), scale_(o.scale), ratio_(o.ratio), value_(o.value), noise_(o.random_value) {}

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>& self) override {
    const int height = static_cast<int>(batch.images.size(2)), width = static_cast<int>(batch.images.size(3));
    const auto channels = batch.images.size(1);
    const std::vector<std::int64_t> indices = dataset_indices(batch);
    std::vector<Erasure> erasures;
    for (std::size_t i = 0; i < indices.size(); ++i) {
      Rng rng = item_rng(batch.epoch, static_cast<std::uint64_t>(indices[i]));
      if (!rng.bernoulli(p_)) continue;
      Erasure e;
      if (!random_erasing_window(height, width, scale_, ratio_, rng, e.window)) continue;
      e.sample = static_cast<std::int64_t>(i);
      if (noise_) {  // in the CPU twin's order: channel, row, column
        const auto count = static_cast<std::size_t>(channels * e.window.height * e.window.width);
        e.values.reserve(count);
        for (std::size_t k = 0; k < count; ++k) e.values.push_back(rng.normal());
      } else {
        e.values = value_;
      }
      erasures.push_back(std::move(e));
    }
    if (erasures.empty()) return self;
    return with_images(batch, erase_windows(batch.images, erasures));
  }

 private:
  double p_;
  std::vector<double> scale_, ratio_, value_;
  bool noise_;
};

}  // namespace

PluginInfo batch_flip_plugin() {
  PluginInfo p = batch_transform_plugin(
      "batch_flip", "Mirrors each sample of a batch left-right with probability p (twin of horizontal_flip)",
      "Per sample, on the batch's device. Draws as horizontal_flip does under the same node id,\n"
      "so the same samples flip; the pixels are identical.\n"
      "\n"
      "  {\"id\": \"flip\", \"plugin\": \"batch_flip\", \"params\": {\"p\": 0.5}}");
  declare_options<FlipOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<BatchFlip>(args); };
  return p;
}

PluginInfo batch_normalize_plugin() {
  PluginInfo p = batch_transform_plugin(
      "batch_normalize", "uint8 batch -> float32 ((x / 255) - mean) / std on its device (twin of normalize)",
      "The normalize stage's float32 arithmetic on a whole batch: the values are identical. Put it\n"
      "after to_device so that batches cross to the device as uint8 (4x fewer bytes).\n"
      "\n"
      "  {\"id\": \"norm\", \"plugin\": \"batch_normalize\",\n"
      "   \"params\": {\"mean\": [0.4914, 0.4822, 0.4465], \"std\": [0.247, 0.2435, 0.2616]}}");
  p.outputs = {{"out", kBatchKind, "normalized float32 batches, on the same device"}};
  declare_options<NormalizeOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<BatchNormalize>(args); };
  p.check = [](const CheckedNode& node, std::vector<CheckFinding>& findings) {
    if (node.inputs.empty()) return;
    if (const CheckedNode::Upstream* done = normalizing_node(node.inputs[0])) {
      findings.push_back({"", "its batches are normalized already, by node '" + done->id + "' (" + done->plugin +
                                  "): remove one of the two (batch_normalize wants uint8 batches)"});
    }
  };
  return p;
}

PluginInfo batch_resize_plugin() {
  PluginInfo p = batch_transform_plugin(
      "batch_resize", "Resizes a batch, antialiased, on its device (twin of resize; 32 -> 224 for ViT-B/16)",
      "[s] scales the shorter side to s keeping the aspect ratio, [h, w] resizes to exactly that, as\n"
      "resize does. uint8 batches resample as PIL does (horizontal pass, round, vertical pass,\n"
      "round; the filter widened when shrinking) in float32 rather than Pillow's fixed point: values\n"
      "within one grey level of the resize stage (most identical). Float batches: one float pass.\n"
      "\n"
      "  {\"id\": \"resize\", \"plugin\": \"batch_resize\", \"params\": {\"size\": [224]}}");
  declare_options<ResizeOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<BatchResize>(args); };
  return p;
}

PluginInfo batch_random_resized_crop_plugin() {
  PluginInfo p = batch_transform_plugin(
      "batch_random_resized_crop",
      "Per sample: a random area and aspect ratio, cut and resized, on the batch's device (twin of random_resized_crop)",
      "Each sample's window is drawn as random_resized_crop draws it (torchvision's get_params, from\n"
      "the stream that stage would use under the same node id: the same windows), then resampled to\n"
      "size as batch_resize does: within one grey level of the CPU twin.\n"
      "\n"
      "  {\"id\": \"crop\", \"plugin\": \"batch_random_resized_crop\", \"params\": {\"size\": [224], \"scale\": [0.5, 1.0]}}");
  declare_options<RandomResizedCropOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<BatchRandomResizedCrop>(args); };
  return p;
}

PluginInfo batch_random_erasing_plugin() {
  PluginInfo p = batch_transform_plugin(
      "batch_random_erasing", "Per sample, with probability p, erases a random rectangle on the batch's device (twin of random_erasing)",
      "Draws as random_erasing does under the same node id (window, and the noise values with\n"
      "random_value), so the result is identical to the CPU twin's. Usually after batch_normalize;\n"
      "on uint8 batches values are rounded and clamped to [0, 255]. The noise is drawn on the host\n"
      "from the sample's stream (bit-identical to the twin), then copied to the device.\n"
      "\n"
      "  {\"id\": \"erase\", \"plugin\": \"batch_random_erasing\", \"params\": {\"p\": 0.25, \"random_value\": true}}");
  declare_options<RandomErasingOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<BatchRandomErasing>(args); };
  return p;
}

}  // namespace flowrun
