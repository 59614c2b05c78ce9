// Which parameters train, by fine-tuning strategy. Names are the ViT's (timm's).
//
//   linear_probe      only the classifier head; the encoder is frozen
//   full_ft           everything
//   llrd              everything; learning rates decay layer by layer (param_groups.hpp)
//   gradual_unfreeze  the head first; at each boundary of `unfreeze_at` (epochs or
//                     optimizer steps) the last `unfreeze_blocks[k]` blocks join it;
//                     -1 (or >= depth) unfreezes everything, embeddings included
//
// The final LayerNorm trains together with the head whenever the head trains, as in
// timm's layer grouping (it belongs to the head's layer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowrun {

enum class Strategy { LinearProbe, FullFinetune, Llrd, GradualUnfreeze };
Strategy strategy_from_name(const std::string& name);
const char* strategy_name(Strategy strategy);

struct UnfreezePlan {
  bool by_steps = false;                 // boundaries count optimizer steps, not epochs
  std::vector<std::int64_t> at;          // increasing boundaries
  std::vector<std::int64_t> blocks;      // last blocks trainable from each boundary; -1 = all
  // Throws std::invalid_argument when the lists disagree or do not increase.
  void check() const;
};

// How many of the last blocks train at (epoch, step): 0 = head only, -1 = everything.
int unfrozen_blocks(Strategy strategy, const UnfreezePlan& plan, std::int64_t epoch, std::int64_t step);

// Whether parameter `name` trains when the last `blocks` (-1 = all) blocks do.
bool is_trainable(const std::string& name, int depth, int blocks);

}  // namespace flowrun
