// What the checks of batch-consuming plugins ask of the chain upstream of an input
// (PluginInfo::check): does anything there normalize the images, or mix the batches?
// Names of built-in plugins; a plugin pack's stages are not recognized.
#pragma once

#include <string>
#include <vector>

#include "flowrun/plugin.hpp"

namespace flowrun {

using UpstreamChain = std::vector<CheckedNode::Upstream>;

// The nearest node upstream that makes float batches: normalize, batch_normalize, or a
// batch node with mean and std; null when none does (the batches stay uint8).
const CheckedNode::Upstream* normalizing_node(const UpstreamChain& chain);
// The nearest batch node upstream, or null.
const CheckedNode::Upstream* batching_node(const UpstreamChain& chain);
// The nearest mixup, cutmix or mixup_cutmix node upstream, or null.
const CheckedNode::Upstream* mixing_node(const UpstreamChain& chain);

// The check of a node that runs a model it is handed (evaluate, predict) on batches:
// uint8 batches need a normalizer in the chain or a mean on the model's node (a train
// stage or a saved_model source, which normalize on the device), and mixed batches
// have no single label to score. `mixed_why` ends the mixing finding.
void check_model_batches(const CheckedNode& node, int model_port, int batch_port, const std::string& mixed_why,
                         std::vector<CheckFinding>& findings);

}  // namespace flowrun
