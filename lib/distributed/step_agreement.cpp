#include "lib/distributed/step_agreement.hpp"

#include <torch/types.h>

#include "lib/distributed/process_group.hpp"

namespace flowrun {

StepAgreement::StepAgreement(std::shared_ptr<DataParallelGroup> group) : group_(std::move(group)) {}

// One all-reduce of a small vector: each rank's reason at its own index, so every rank
// learns who stops and why (the strongest reason wins: a stop asked beats running out).
StepAgreement::Why StepAgreement::round(Why mine) {
  torch::Tensor reasons = torch::zeros({group_->size()}, torch::kInt32);
  reasons[group_->rank()] = static_cast<int>(mine);
  group_->all_reduce_sum(reasons);
  const auto* r = reasons.data_ptr<std::int32_t>();
  Why strongest = Why::None;
  for (int rank = 0; rank < group_->size(); ++rank) {
    if (r[rank] > static_cast<int>(strongest)) {
      strongest = static_cast<Why>(r[rank]);
      who_ = rank;
    }
  }
  return strongest;
}

bool StepAgreement::go_on() {
  if (stopped_) return false;
  why_ = round(group_->stop_requested() ? Why::AskedToStop : Why::None);
  stopped_ = why_ != Why::None;
  return !stopped_;
}

void StepAgreement::leave() {
  if (stopped_) return;
  why_ = round(group_->stop_requested() ? Why::AskedToStop : Why::OutOfData);
  stopped_ = true;
}

std::string StepAgreement::explanation() const {
  const std::string rank = "rank " + std::to_string(who_);
  switch (why_) {
    case Why::AskedToStop: return rank + " was asked to stop (SIGINT/SIGTERM)";
    case Why::OutOfData: return rank + " has no more training batches";
    case Why::None: break;
  }
  return "every rank goes on";
}

}  // namespace flowrun
