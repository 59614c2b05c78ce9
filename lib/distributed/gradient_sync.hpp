// Averages gradients across a data-parallel group during the backward pass, with
// c10d's Reducer (the engine under PyTorch's DistributedDataParallel; the C++ frontend
// has no DDP module): parameters are grouped into buckets of about `bucket_bytes` in
// reverse order of use, and a bucket's all-reduce starts as soon as its last gradient
// is ready, overlapping the rest of the backward pass. Includes LibTorch: include it
// from files that already do.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace c10d {
class Reducer;
}

namespace flowrun {

class DataParallelGroup;

class GradientSync {
 public:
  static constexpr std::int64_t kDefaultBucketBytes = 25 << 20;  // DDP's default

  // `parameters`: the trainable ones, identical in shape and order on every rank.
  GradientSync(DataParallelGroup& group, std::vector<torch::Tensor> parameters,
               std::int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Call before the backward pass whose gradients are to be averaged (the last
  // micro-batch of an accumulated step); a backward pass without it accumulates
  // locally, as DDP's no_sync(). When backward() returns, the gradients are averaged.
  void expect_backward(const torch::Tensor& loss);
  std::size_t buckets() const { return buckets_; }
  const std::vector<torch::Tensor>& parameters() const { return parameters_; }

 private:
  DataParallelGroup& group_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<c10d::Reducer> reducer_;
  std::size_t buckets_ = 0;
};

// Copies rank 0's values into every rank's tensors (parameters and buffers at start):
// flattened into one buffer per dtype, one broadcast each.
void broadcast_from_rank0(DataParallelGroup& group, const std::vector<torch::Tensor>& tensors);

}  // namespace flowrun
