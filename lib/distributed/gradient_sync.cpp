#include "lib/distributed/gradient_sync.hpp"

#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "lib/distributed/c10d_group.hpp"

namespace flowrun {

GradientSync::GradientSync(DataParallelGroup& group, std::vector<torch::Tensor> parameters, std::int64_t bucket_bytes)
    : group_(group), parameters_(std::move(parameters)) {
  if (parameters_.empty()) throw std::invalid_argument("GradientSync: no trainable parameters to average");
  const std::vector<bool> sparse(parameters_.size(), false);
  // Buckets in reverse order of the parameter list: the last layers' gradients are
  // ready first in the backward pass. The first bucket is small (1 MB, as DDP's) so
  // communication starts early.
  const std::int64_t first_bucket_bytes = std::min<std::int64_t>(1 << 20, bucket_bytes);
  auto [bucket_indices, limits] = c10d::compute_bucket_assignment_by_size(
      parameters_, {static_cast<std::size_t>(first_bucket_bytes), static_cast<std::size_t>(bucket_bytes)}, sparse);
  // compute_bucket_assignment_by_size fills buckets in parameter order; the backward
  // pass reaches them last to first (DistributedDataParallel reverses them too).
  std::reverse(bucket_indices.begin(), bucket_indices.end());
  std::reverse(limits.begin(), limits.end());
  buckets_ = bucket_indices.size();
  reducer_ = std::make_unique<c10d::Reducer>(
      parameters_, bucket_indices, group_.impl().group, sparse, bucket_bytes,
      /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{},
      first_bucket_bytes, /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
      std::vector<std::int64_t>(limits.begin(), limits.end()));
}

GradientSync::~GradientSync() = default;

void GradientSync::expect_backward(const torch::Tensor& loss) {
  // After the first averaged step the Reducer knows the order gradients really became
  // ready in, and re-buckets once to match it (rank 0's order, broadcast).
  reducer_->rebuild_buckets();
  reducer_->prepare_for_forward();
  reducer_->prepare_for_backward({loss});
}

void broadcast_from_rank0(DataParallelGroup& group, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const torch::Tensor& t : tensors)
    if (t.defined() && t.numel() > 0) by_dtype[t.scalar_type()].push_back(t);
  for (auto& [dtype, same] : by_dtype) {
    std::vector<torch::Tensor> flat_views;
    for (const torch::Tensor& t : same) flat_views.push_back(t.reshape({-1}));
    torch::Tensor flat = torch::cat(flat_views);
    group.broadcast(flat, 0);
    std::int64_t offset = 0;
    for (torch::Tensor& t : same) {
      t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

}  // namespace flowrun
