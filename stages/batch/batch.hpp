// Payload kind "batch": samples stacked into tensors, in stream order.
//   images   (N, C, H, W) uint8 (from sample/image) or float32 (from sample/tensor)
//   labels   (N) int64
//   indices  (N) int64 dataset indices of the samples
// Includes only ATen's Tensor class, not <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flowrun/message.hpp"

namespace flowrun {

constexpr const char* kBatchKind = "batch";

struct Batch : Payload {
  at::Tensor images;
  at::Tensor labels;
  at::Tensor indices;
  std::vector<std::string> keys;  // path or member name per sample, for reports
  std::uint64_t epoch = 0;
  std::uint64_t step = 0;         // batch number since the start of the run

  std::string describe() const override;
};

}  // namespace flowrun
