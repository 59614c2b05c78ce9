// batch: stacks samples, in stream order, into one contiguous (N, C, H, W) tensor
// plus labels and dataset indices. Sample k of an epoch's order lands in batch
// k / batch_size whatever the thread count (skipped samples are not waited for:
// later samples move up, the same way every run).
//
//   {"id": "batch", "plugin": "batch", "params": {"batch_size": 128, "drop_last": true}}
//
// The batch keeps its samples' in-flight leases until it is released downstream,
// so prefetch bounds batches waiting for the train step too.
#include <ATen/ops/empty.h>

#include <cstring>
#include <stdexcept>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "lib/image/image_ops.hpp"
#include "stages/batch/batch_plugins.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/sample.hpp"

namespace flowrun {

namespace {

enum class PinMemory { Auto, On, Off };

struct BatchOptions {
  std::int64_t batch_size = 128;
  bool drop_last = false;
  PinMemory pin_memory = PinMemory::Auto;
  std::vector<double> mean, std;
  template <typename D>
  static void declare(D& d) {
    using O = BatchOptions;
    d(&O::batch_size, "batch_size", "samples per batch").range(1, 1 << 20);
    d(&O::drop_last, "drop_last", "drop each epoch's last batch when it is not full");
    d(&O::pin_memory, "pin_memory", "page-locked batch memory: auto = when the device is CUDA",
      {{"auto", PinMemory::Auto}, {"on", PinMemory::On}, {"off", PinMemory::Off}});
    d(&O::mean, "mean", "with std: normalize uint8 samples while batching, as the normalize stage would (float32 "
                        "batch, one pass; faster at large sizes); [] = off")
        .max_length(4)
        .range(-10, 10);
    d(&O::std, "std", "per-channel standard deviation for the mean above; [] = off").max_length(4).range(1e-6, 100);
  }
};

class BatchStage : public OrderedStage {
 public:
  explicit BatchStage(const StageArgs& args) : BatchStage(args, read_options<BatchOptions>(args.params)) {}
  BatchStage(const StageArgs& args, const BatchOptions& o)
      : OrderedStage(args), batch_size_(o.batch_size), drop_last_(o.drop_last) {
    pin_ = o.pin_memory == PinMemory::On || (o.pin_memory == PinMemory::Auto && args.device.rfind("cuda", 0) == 0);
    // Validation refuses these before the run (p.check below); a stage built by hand must not either.
    if (o.mean.empty() != o.std.empty()) throw std::invalid_argument("set both mean and std, or neither");
    if (!o.mean.empty()) table_ = std::make_unique<NormalizeTable>(o.mean, o.std);
  }

  void process(Message in, Emitter& out) override {
    const auto& sample = in.as<ImageSample>();
    const Image& image = sample.image;
    if (filled_ == 0) {
      begin_batch(image, in.epoch);
      dataset_ = sample.info.dataset;
      if (first_batch_) number_first_batch(sample.info, in.epoch);
    }
    if (image.height != height_ || image.width != width_ || image.channels != channels_ || image.type != type_) {
      throw std::runtime_error("sample " + sample.info.key() + " is " + std::to_string(image.height) + "x" +
                               std::to_string(image.width) + "x" + std::to_string(image.channels) +
                               " but this batch holds " + std::to_string(height_) + "x" + std::to_string(width_) +
                               "x" + std::to_string(channels_) +
                               " images: resize or crop to one size before batching");
    }
    copy_into_batch(image, filled_);
    labels_[filled_] = sample.info.label;
    next_position_ = sample.info.position + 1;
    indices_[filled_] = static_cast<std::int64_t>(in.index);
    keys_.push_back(sample.info.key());
    leases_.push_back(std::move(in.lease));
    if (++filled_ == batch_size_) emit_batch(out);
  }

  void skipped(const Message& in) override { ++skipped_in_epoch_; }

  void epoch_end(int, std::uint64_t epoch, Emitter& out) override {
    if (filled_ > 0 && !drop_last_) emit_batch(out);
    discard_partial();
    if (skipped_in_epoch_ > 0) {
      log::warn("[", node_id(), "] epoch ", epoch, ": ", skipped_in_epoch_, " sample(s) were skipped upstream");
    }
    skipped_in_epoch_ = 0;
  }

  void finish(Emitter& out) override {
    if (filled_ > 0 && !drop_last_) emit_batch(out);
    discard_partial();
  }

 private:
  void begin_batch(const Image& first, std::uint64_t epoch) {
    height_ = first.height;
    width_ = first.width;
    channels_ = first.channels;
    type_ = first.type;
    epoch_ = epoch;
    const auto dtype = (type_ == Image::Type::U8_HWC && !table_) ? at::kByte : at::kFloat;
    const std::vector<std::int64_t> shape = {batch_size_, channels_, height_, width_};
    if (!reuse_buffers(shape, dtype)) {
      auto options = at::TensorOptions().dtype(dtype).pinned_memory(pin_);
      images_ = at::empty(shape, options);
      labels_tensor_ = at::empty({batch_size_}, at::TensorOptions().dtype(at::kLong).pinned_memory(pin_));
      indices_tensor_ = at::empty({batch_size_}, at::TensorOptions().dtype(at::kLong));
      if (pool_.size() < kMaxPooledBatches) pool_.push_back({images_, labels_tensor_, indices_tensor_});
    }
    labels_ = labels_tensor_.data_ptr<std::int64_t>();
    indices_ = indices_tensor_.data_ptr<std::int64_t>();
  }

  // Batch memory is recycled once every consumer has let go of a batch: fresh
  // memory costs a page fault per 4 KiB on first touch (about 2 us each here), a
  // large share of a batch's assembly time. A buffer is free when the pool holds
  // the only references to its tensors and their storage.
  bool reuse_buffers(const std::vector<std::int64_t>& shape, at::ScalarType dtype) {
    for (Buffers& b : pool_) {
      if (!only_pool_holds(b.images) || !only_pool_holds(b.labels) || !only_pool_holds(b.indices) ||
          b.images.scalar_type() != dtype || b.images.sizes() != shape) {
        continue;
      }
      images_ = b.images;
      labels_tensor_ = b.labels;
      indices_tensor_ = b.indices;
      return true;
    }
    return false;
  }

  // A batch shares the pool's tensor (one more reference to the TensorImpl) or a
  // narrowed view of it (another TensorImpl, one more reference to the storage).
  static bool only_pool_holds(const at::Tensor& t) { return t.use_count() == 1 && t.storage().use_count() == 1; }

  // uint8 HWC is transposed to CHW on the way in; float CHW is copied as is.
  void copy_into_batch(const Image& image, std::int64_t slot) {
    const std::size_t plane = image.pixel_count();
    if (type_ == Image::Type::F32_CHW) {
      float* dst = images_.data_ptr<float>() + static_cast<std::size_t>(slot) * plane * channels_;
      std::memcpy(dst, image.f32.data(), image.f32.size() * sizeof(float));
      return;
    }
    const std::uint8_t* src = image.u8.data();
    if (table_) {  // normalize on the way in: one pass, no float image per sample
      float* dst = images_.data_ptr<float>() + static_cast<std::size_t>(slot) * plane * channels_;
      for (int c = 0; c < channels_; ++c) {
        const float* lut = table_->values[static_cast<std::size_t>(c)].data();
        float* __restrict out = dst + plane * static_cast<std::size_t>(c);
        for (std::size_t p = 0; p < plane; ++p) out[p] = lut[src[p * channels_ + c]];
      }
      return;
    }
    std::uint8_t* dst = images_.data_ptr<std::uint8_t>() + static_cast<std::size_t>(slot) * plane * channels_;
    for (int c = 0; c < channels_; ++c) {
      std::uint8_t* out = dst + plane * static_cast<std::size_t>(c);
      for (std::size_t p = 0; p < plane; ++p) out[p] = src[p * channels_ + c];
    }
  }

  void emit_batch(Emitter& out) {
    auto batch = std::make_shared<Batch>();
    const bool full = filled_ == batch_size_;
    batch->images = full ? images_ : images_.narrow(0, 0, filled_);
    batch->labels = full ? labels_tensor_ : labels_tensor_.narrow(0, 0, filled_);
    batch->indices = full ? indices_tensor_ : indices_tensor_.narrow(0, 0, filled_);
    batch->keys = std::move(keys_);
    batch->epoch = epoch_;
    batch->step = step_;
    batch->dataset = dataset_;
    batch->next_position = next_position_;
    if (dataset_) {
      const auto size = static_cast<std::uint64_t>(batch_size_);
      batch->steps_per_epoch = drop_last_ ? dataset_->epoch_size / size : (dataset_->epoch_size + size - 1) / size;
    }
    out.emit(0, batch, epoch_, step_, combine_leases(std::move(leases_)));
    ++step_;
    discard_partial();
  }

  // A resumed stream starts mid-way: number its batches as the uninterrupted run did.
  void number_first_batch(const SampleInfo& info, std::uint64_t epoch) {
    first_batch_ = false;
    if (!info.dataset || (epoch == 0 && info.position == 0)) return;
    const auto size = static_cast<std::uint64_t>(batch_size_);
    const std::uint64_t per_epoch = drop_last_ ? info.dataset->epoch_size / size : (info.dataset->epoch_size + size - 1) / size;
    step_ = epoch * per_epoch + info.position / size;
  }

  void discard_partial() {
    filled_ = 0;
    keys_.clear();
    leases_.clear();
    images_ = at::Tensor();  // the pool keeps its own reference
    labels_tensor_ = at::Tensor();
    indices_tensor_ = at::Tensor();
  }

  struct Buffers {
    at::Tensor images, labels, indices;
  };
  static constexpr std::size_t kMaxPooledBatches = 64;
  std::vector<Buffers> pool_;

  std::int64_t batch_size_;
  bool drop_last_;
  std::unique_ptr<NormalizeTable> table_;  // set: uint8 samples are normalized into a float batch
  bool pin_ = false;
  int height_ = 0, width_ = 0, channels_ = 0;
  Image::Type type_ = Image::Type::U8_HWC;
  std::uint64_t epoch_ = 0;
  std::uint64_t step_ = 0;
  bool first_batch_ = true;
  std::uint64_t next_position_ = 0;
  std::int64_t filled_ = 0;
  std::uint64_t skipped_in_epoch_ = 0;
  at::Tensor images_, labels_tensor_, indices_tensor_;
  std::int64_t* labels_ = nullptr;
  std::int64_t* indices_ = nullptr;
  std::vector<std::string> keys_;
  std::vector<Lease> leases_;
  std::shared_ptr<const DatasetInfo> dataset_;
};

}  // namespace

PluginInfo batch_plugin() {
  PluginInfo p;
  p.name = "batch";
  p.summary = "Stacks samples in stream order into (N, C, H, W) tensors with labels and indices";
  p.description =
      "Ordered stage: receives samples in the epoch's order whatever the thread count, so batch\n"
      "contents are reproducible. uint8 images give a uint8 batch (4x smaller to keep and to copy\n"
      "to the device; normalize there), normalized float samples a float32 batch. An epoch's last\n"
      "partial batch is emitted unless drop_last. With mean and std, uint8 samples are normalized\n"
      "as they are copied in (what the normalize stage does, without its per-sample float image).\n"
      "With pin_memory, tensors are allocated in\n"
      "page-locked memory for asynchronous host-to-device copies.\n"
      "\n"
      "  {\"id\": \"batch\", \"plugin\": \"batch\", \"params\": {\"batch_size\": 128, \"drop_last\": true}}";
  p.role = Role::Ordered;
  p.inputs = {{"in", kImageOrTensorKind, "images (uint8 HWC) or normalized samples (float32 CHW), all one size"}};
  p.outputs = {{"out", kBatchKind, "batches: images, labels, dataset indices"}};
  declare_options<BatchOptions>(p.params);
  // Before the run: normalizing needs both lists, of one length.
  p.check = [](const CheckedNode& node, std::vector<CheckFinding>& findings) {
    const auto o = read_options<BatchOptions>(*node.params);
    if (o.mean.empty() != o.std.empty())  // reported at the one missing
      findings.push_back({o.mean.empty() ? "mean" : "std", "set both mean and std, or neither"});
    else if (o.mean.size() != o.std.size())
      findings.push_back({"std", "mean has " + std::to_string(o.mean.size()) + " values and std " +
                                     std::to_string(o.std.size()) + ": give one per channel in both"});
  };
  p.create = [](const StageArgs& args) { return std::make_unique<BatchStage>(args); };
  return p;
}

}  // namespace flowrun
