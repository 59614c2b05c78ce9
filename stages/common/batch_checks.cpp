#include "stages/common/batch_checks.hpp"

namespace flowrun {
namespace {

const CheckedNode::Upstream* first_where(const UpstreamChain& chain, bool (*wanted)(const CheckedNode::Upstream&)) {
  for (const CheckedNode::Upstream& u : chain)
    if (wanted(u)) return &u;
  return nullptr;
}

}  // namespace

const CheckedNode::Upstream* normalizing_node(const UpstreamChain& chain) {
  return first_where(chain, [](const CheckedNode::Upstream& u) {
    if (u.plugin == "normalize" || u.plugin == "batch_normalize") return true;
    return u.plugin == "batch" && u.params && !u.params->number_list("mean").empty();
  });
}

const CheckedNode::Upstream* batching_node(const UpstreamChain& chain) {
  return first_where(chain, [](const CheckedNode::Upstream& u) { return u.plugin == "batch"; });
}

const CheckedNode::Upstream* mixing_node(const UpstreamChain& chain) {
  return first_where(chain, [](const CheckedNode::Upstream& u) {
    return u.plugin == "mixup" || u.plugin == "cutmix" || u.plugin == "mixup_cutmix";
  });
}

}  // namespace flowrun
