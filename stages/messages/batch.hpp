// Payload kind "batch": samples stacked into tensors, in stream order.
//   images   (N, C, H, W) uint8 (from sample/image) or float32 (from sample/tensor)
//   labels   (N) int64
//   indices  (N) int64 dataset indices of the samples (always on the host)
//   targets  (N, classes) float32 soft targets, when a Mixup/CutMix stage made them;
//            otherwise undefined and `labels` are the targets
// The tensors live on the CPU until a to_device stage moves them; on CUDA its copy
// may still be running when the batch arrives: call wait_ready() before using them.
// Includes only ATen's Tensor class, not <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flowrun/message.hpp"
#include "stages/messages/sample.hpp"

namespace flowrun {

constexpr const char* kBatchKind = "batch";

// A copy queued on another CUDA stream (to_device): wait() makes the calling thread's
// current stream wait for it, without blocking the host. Type-erased so that this
// header needs no CUDA headers.
class TransferFence {
 public:
  virtual ~TransferFence() = default;
  virtual void wait() const = 0;
};

struct Batch : Payload {
  at::Tensor images;
  at::Tensor labels;
  at::Tensor indices;
  at::Tensor targets;
  // The labels on the host when `labels` went to a device (to_device keeps them, as it
  // keeps `indices` there): what the host reads labels from without waiting for the
  // device. Undefined while `labels` is on the CPU.
  at::Tensor host_labels;
  // Likewise the images as they left the host (before any augmentation on the device):
  // what reports take thumbnails from, so that a thumbnail never waits for the device.
  at::Tensor host_images;
  std::vector<std::string> keys;  // path or member name per sample, for reports
  std::uint64_t epoch = 0;
  std::uint64_t step = 0;         // batch number since the start of the run
  std::uint64_t steps_per_epoch = 0;  // batches per epoch; 0 = unknown (samples not from a dataset source)
  std::uint64_t next_position = 0;    // its source's position in `epoch` after the last sample (for resuming)
  std::shared_ptr<const DatasetInfo> dataset;  // of the first sample; may be null
  std::shared_ptr<const TransferFence> fence;  // set while a device copy may be in flight

  // What the host reads without waiting for the device: the host's copies where
  // to_device kept them, else the tensors themselves (on the CPU).
  const at::Tensor& host_side_labels() const { return host_labels.defined() ? host_labels : labels; }
  const at::Tensor& host_side_images() const { return host_images.defined() ? host_images : images; }

  // Orders the caller's work after the copy that filled these tensors (a no-op on the CPU).
  void wait_ready() const {
    if (fence) fence->wait();
  }
  std::string describe() const override;
};

}  // namespace flowrun
