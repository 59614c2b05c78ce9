#include "stages/common/batch_checks.hpp"

#include <algorithm>

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

void check_model_batches(const CheckedNode& node, int model_port, int batch_port, const std::string& mixed_why,
                         std::vector<CheckFinding>& findings) {
  if (node.inputs.size() <= static_cast<std::size_t>(std::max(model_port, batch_port))) return;
  const UpstreamChain& batches = node.inputs[static_cast<std::size_t>(batch_port)];
  const UpstreamChain& model = node.inputs[static_cast<std::size_t>(model_port)];
  const CheckedNode::Upstream* owner = model.empty() ? nullptr : &model.front();
  const bool owner_normalizes = owner && (owner->plugin == "train" || owner->plugin == "saved_model") &&
                                owner->params && !owner->params->number_list("mean").empty();
  const CheckedNode::Upstream* batching = batching_node(batches);
  if (batching && !owner_normalizes && !normalizing_node(batches)) {
    findings.push_back({"", "batches reach input 'batch' as uint8 from node '" + batching->id +
                                "' and nothing normalizes them: set mean and std on node '" + batching->id +
                                "', add a batch_normalize node after it, or set mean and std on the model's node" +
                                (owner ? " '" + owner->id + "'" : std::string())});
  }
  if (const CheckedNode::Upstream* mixing = mixing_node(batches)) {
    findings.push_back({"", "input 'batch' gets batches mixed by node '" + mixing->id + "' (" + mixing->plugin +
                                "): " + mixed_why});
  }
}

}  // namespace flowrun
