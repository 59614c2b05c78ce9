// The base of every batch augmentation stage: one batch in, one out, in stream
// order, computing on the batch's own device. It waits for a pending device copy
// (to_device) on the caller's stream, hands the batch to transform(), and passes the
// batch's in-flight lease on, so prefetch keeps bounding what waits for the step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"
#include "stages/messages/batch.hpp"

namespace flowrun {

class BatchTransform : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;

  void process(Message in, Emitter& out) final {
    const auto& batch = in.as<Batch>();
    batch.wait_ready();
    std::shared_ptr<const Payload> result = transform(batch, in.payload);
    out.emit(0, std::move(result), in.epoch, in.index, std::move(in.lease));
  }

 protected:
  // The batch to pass on: `self` (the input payload) when nothing changed.
  virtual std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>& self) = 0;

  // The batch with other images (labels, indices, keys and positions kept).
  static std::shared_ptr<Batch> with_images(const Batch& batch, at::Tensor images) {
    auto out = std::make_shared<Batch>(batch);
    out->images = std::move(images);
    return out;
  }

  // The batch's dataset indices on the host (to_device leaves them there).
  static std::vector<std::int64_t> dataset_indices(const Batch& batch);
};

// A batch plugin's common declaration: ordered, batch in, batch out.
PluginInfo batch_transform_plugin(const std::string& name, const std::string& summary, const std::string& description);

}  // namespace flowrun
